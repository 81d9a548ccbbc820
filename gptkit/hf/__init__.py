"""Hugging Face `transformers` folders: export a run as a GPT-2 or Llama checkpoint folder, import one back.

The name and config maps live in `hf_convert.py`; this module handles folders, weights files and
tokenizers. Importing reads `config.json` and `model.safetensors` (sharded too) or
`pytorch_model.bin` (with `weights_only=True`), never the network. Exporting needs `transformers` for the
config classes (`pip install gptkit[hf]`); importing does not. Entry points: `export_hf`, `import_hf`.
"""

import json
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gptkit.checkpoint import (
    WEIGHTS_FILE,
    load_model,
    load_weights_state,
    read_json,
    read_run_config,
    save_weights,
    write_run_config,
)
from gptkit.config import RunConfig
from gptkit.errors import GptkitError
from gptkit.hf_convert import (
    check_hf_tensors,
    config_from_hf,
    from_hf_state,
    hf_architecture,
    hf_config,
    to_hf_state,
)
from gptkit.memory import check_model_fits
from gptkit.model import GPT
from gptkit.paths import folder_problem, shown
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.char import CharTokenizer

# -- export ------------------------------------------------------------------------------------------------


def char_tokenizer_json(tok: CharTokenizer) -> dict:
    """A `tokenizer.json` for a char vocabulary: each character is a token (WordLevel), decoding joins them."""
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": False},
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {
            "type": "WordLevel",
            "vocab": {c: i for i, c in enumerate(tok.chars)},
            "unk_token": tok.unknown if tok.unknown is not None else "\ufffd",  # not in vocab: unseen chars then fail
        },
    }


def _check_export_target(out: Path, run_dir: Path) -> None:
    """`--out` may be new, empty, or an earlier export; never the run itself or a folder holding it."""
    if out.resolve() == run_dir.resolve() or out.resolve() in run_dir.resolve().parents:
        raise GptkitError(f"--out {out}: would replace the run {run_dir} itself; choose another folder")
    if out.exists() and not out.is_dir():
        raise GptkitError(f"--out {out}: is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()):
        config = out / "config.json"
        earlier = config.is_file() and "model_type" in json.loads(config.read_text(encoding="utf-8") or "{}")
        if not earlier:
            raise GptkitError(f"--out {out}: not empty and not an earlier export; choose a new folder")


def _replace_folder(staging: Path, out: Path) -> None:
    """Put `staging` at `out`; an earlier `out` is moved aside first and removed only afterwards."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_hf(run_dir, out_dir, *, weights: str = "last", echo=print) -> Path:
    """Write `out_dir` as a transformers checkpoint folder (config, weights, generation config, tokenizer)."""
    from gptkit.run import WEIGHT_CHOICES

    run_dir, out = Path(run_dir), Path(out_dir)
    config = read_run_config(run_dir)
    arch = hf_architecture(config.model)
    _check_export_target(out, run_dir)
    tokenizer = load_tokenizer(run_dir) if (run_dir / TOKENIZER_FILE).exists() else None
    eos = tokenizer.specials.get("<|endoftext|>") if isinstance(tokenizer, BPETokenizer) else None
    hf_conf = hf_config(config.model, arch, eos)
    model = load_model(run_dir, config, WEIGHT_CHOICES[weights])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        hf_conf.save_pretrained(staging)
        save_file(to_hf_state(model, arch), str(staging / "model.safetensors"), metadata={"format": "pt"})
        generation = {"do_sample": False, **({"bos_token_id": eos, "eos_token_id": eos} if eos is not None else {})}
        (staging / "generation_config.json").write_text(json.dumps(generation, indent=1))
        if tokenizer is not None:
            _export_tokenizer(tokenizer, staging)
        _replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if tokenizer is None:
        echo(f"note: {run_dir} has no tokenizer (its weights were imported alone); exported the model without one")
    return out


def _export_tokenizer(tokenizer, folder: Path) -> None:
    if isinstance(tokenizer, BPETokenizer):
        from gptkit.tokenizer.formats import export_hf as export_bpe

        export_bpe(tokenizer, folder)
    else:
        (folder / "tokenizer.json").write_text(json.dumps(char_tokenizer_json(tokenizer), ensure_ascii=False))
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1 << 30}
        (folder / "tokenizer_config.json").write_text(json.dumps(config))


# -- import ------------------------------------------------------------------------------------------------


def read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder: model.safetensors, its shards, or pytorch_model.bin (tensors only)."""
    index = folder / "model.safetensors.index.json"
    try:
        if (folder / "model.safetensors").is_file():
            return load_file(str(folder / "model.safetensors"))
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            tensors = {}
            for shard in shards:
                if Path(shard).name != shard:
                    raise GptkitError(f"{index}: shard {shard!r} is not a file in this folder")
                tensors.update(load_file(str(folder / shard)))
            return tensors
    except (SafetensorError, OSError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as err:
        raise GptkitError(f"{folder}: unreadable safetensors checkpoint ({type(err).__name__}: {err})") from None
    binary = folder / "pytorch_model.bin"
    if binary.is_file():
        try:
            state = torch.load(binary, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
        except Exception as err:  # noqa: BLE001 - any failure here means "not plain tensors"
            raise GptkitError(
                f"{binary}: not a plain-tensor checkpoint ({type(err).__name__}); refusing to load it"
            ) from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise GptkitError(f"{binary}: does not hold a dict of tensors; refusing to load it")
        return state
    raise GptkitError(f"{folder}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin")


def _char_from_wordlevel(raw: dict, path: Path) -> CharTokenizer:
    """A char vocabulary from a WordLevel tokenizer.json (as `export_hf` writes one)."""
    vocab = raw["model"]["vocab"]
    chars = sorted(vocab, key=vocab.get)
    if [vocab[c] for c in chars] != list(range(len(chars))) or any(len(c) != 1 for c in chars):
        raise GptkitError(f"{path}: a WordLevel vocabulary of single characters with ids 0..N-1 is needed")
    unknown = raw["model"].get("unk_token")
    return CharTokenizer(chars, unknown=unknown if unknown in vocab else None)


def read_tokenizer(path: Path):
    """A tokenizer from a folder or file in any format we read: ours, HF tokenizer.json, GPT-2's files;
    None when a folder has no tokenizer files."""
    from gptkit.tokenizer.formats import import_gpt2
    from gptkit.tokenizer.formats import import_hf as import_bpe

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = path if path.is_file() else folder / "tokenizer.json"
    if file.is_file():
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise GptkitError(f"{file}: not valid JSON ({err})") from None
        if isinstance(raw, dict) and raw.get("type") in ("char", "bpe"):
            return load_tokenizer(file)  # gptkit's own format
        if isinstance(raw, dict) and isinstance(raw.get("model"), dict) and raw["model"].get("type") == "WordLevel":
            return _char_from_wordlevel(raw, file)
        return import_bpe(file)
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return import_gpt2(folder / "vocab.json", folder / "merges.txt")
    return None


def import_hf(src_dir, out_dir, *, tokenizer=None, echo=print, check_memory: bool = True) -> Path:
    """Turn a local transformers folder into a gptkit run directory (nothing is written on any error).

    The config is checked against the weights' shapes and dtypes, and (unless `check_memory` is False) against
    the free memory, before the model is built."""
    src, out = Path(src_dir), Path(out_dir)
    if not src.is_dir():
        raise GptkitError(f"{shown(src)}: {folder_problem(src)}; pass a local transformers checkpoint folder")
    if not (src / "config.json").is_file():
        raise GptkitError(f"{src}: no config.json; pass a local transformers checkpoint folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GptkitError(f"--out {out}: exists and is not an empty folder; choose a new folder")
    raw = read_json(src / "config.json", what="not a transformers config")
    model_config, arch = config_from_hf(raw, str(src / "config.json"))
    hf_state = read_hf_weights(src)
    check_hf_tensors(hf_state, model_config, arch, src)  # dtypes, layer count and embedding, before anything else
    ours = from_hf_state(hf_state, model_config, arch)  # names and shapes, against a model on the meta device
    if check_memory:
        check_model_fits(model_config, torch.device("cpu"), str(src / "config.json"))  # e.g. RoPE tables
    model = GPT(model_config)
    load_weights_state(model, ours, str(src))
    tok, note = _tokenizer_for_import(src, tokenizer)
    if tok is not None and tok.vocab_size > model_config.vocab_size:
        raise GptkitError(
            f"--tokenizer: it has {tok.vocab_size} tokens but the model in {src} only {model_config.vocab_size}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_run_config(staging, RunConfig(model=model_config, preset=f"imported:{arch}"))
        save_weights(model, staging / WEIGHTS_FILE, {"imported_from": str(src)})
        if tok is not None:
            tok.save(staging / TOKENIZER_FILE)
        if out.exists():
            out.rmdir()  # an empty folder the user made; a non-empty one was refused above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if note:
        echo(note)
    return out


def _tokenizer_for_import(src: Path, tokenizer) -> tuple:
    """(tokenizer or None, a note to show or "") for an import."""
    if tokenizer:
        tok = read_tokenizer(Path(tokenizer))
        if tok is None:
            raise GptkitError(f"--tokenizer {tokenizer}: no tokenizer files there")
        return tok, ""
    try:
        tok = read_tokenizer(src)
    except GptkitError as err:  # e.g. a SentencePiece-style tokenizer.json: keep the weights, say why
        return (
            None,
            f"note: imported the weights alone; the tokenizer could not be read ({err}). Attach one "
            "with --tokenizer PATH",
        )
    if tok is None:
        return None, f"note: {src} has no tokenizer files; imported the weights alone. Attach one with --tokenizer PATH"
    return tok, ""
