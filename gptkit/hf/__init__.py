"""Hugging Face `transformers` folders: export a run as a GPT-2 or Llama checkpoint folder, import one back.

The name and config maps live in `convert.py`, weights files and folder replacement in `folder.py`, the
tokenizer formats in `gptkit.tokenizer.hf_json`; this module puts them together. Exporting needs
`transformers` for the config classes (`pip install gptkit[hf]`); importing does not, and never reaches the
network. Entry points: `export_hf`, `import_hf`.
"""

import json
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from gptkit.atomic import new_folder
from gptkit.chat.template import IM_END, IM_START, JINJA_TEMPLATE, is_chat_tokenizer
from gptkit.checkpoint import (
    WEIGHTS_FILE,
    load_model,
    load_weights_state,
    read_run_config,
    save_weights,
    write_run_config,
)
from gptkit.config import RunConfig
from gptkit.errors import ArgumentError, GptkitError
from gptkit.hf.convert import check_hf_tensors, config_from_hf, from_hf_state, hf_architecture, hf_config, to_hf_state
from gptkit.hf.folder import check_export_target, out_dir_error, read_hf_weights, replace_folder
from gptkit.lora import merge_lora
from gptkit.memory import check_model_fits
from gptkit.model import GPT
from gptkit.paths import folder_problem, read_json, shown
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.hf_json import find_tokenizer, write_hf_tokenizer


def export_hf(run_dir, out_dir, *, weights: str = "last", echo=print) -> Path:
    """Write `out_dir` as a transformers checkpoint folder (config, weights, generation config, tokenizer)."""
    from gptkit.run import WEIGHT_CHOICES

    run_dir, out = Path(run_dir), Path(out_dir)
    config = read_run_config(run_dir)
    arch = hf_architecture(config.model)
    check_export_target(out, run_dir)
    tokenizer = load_tokenizer(run_dir) if (run_dir / TOKENIZER_FILE).exists() else None
    chat = tokenizer is not None and is_chat_tokenizer(tokenizer)  # a reply ends with <|im_end|>, not the text
    eos = tokenizer.specials.get("<|endoftext|>") if isinstance(tokenizer, BPETokenizer) else None
    eos = tokenizer.specials[IM_END] if chat else eos
    model = load_model(run_dir, config, WEIGHT_CHOICES[weights])
    if config.lora.r:  # the whole model: adapters merged in (`--format peft` writes them alone)
        model = merge_lora(model)
    hf_conf = hf_config(model.config, arch, eos)  # after a merge: an adapted head is untied
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        hf_conf.save_pretrained(staging)
        save_file(to_hf_state(model, arch), str(staging / "model.safetensors"), metadata={"format": "pt"})
        generation = {"do_sample": False, **({"bos_token_id": eos, "eos_token_id": eos} if eos is not None else {})}
        if chat:  # a reply ends where the model closes its turn or starts another, as in gptkit
            generation["eos_token_id"] = [eos, tokenizer.specials[IM_START]]
        (staging / "generation_config.json").write_text(json.dumps(generation, indent=1))
        if tokenizer is not None:
            template = {"chat_template": JINJA_TEMPLATE, "eos_token": IM_END} if chat else {}
            write_hf_tokenizer(tokenizer, staging, **template)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if tokenizer is None:
        echo(f"note: {run_dir} has no tokenizer (its weights were imported alone); exported the model without one")
    return out


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
        raise out_dir_error(out, "exists and is not an empty folder; choose a new folder")
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
        sizes = f"has {tok.vocab_size} tokens but the model in {shown(src)} only {model_config.vocab_size}"
        if tokenizer:
            raise ArgumentError("tokenizer", f"it {sizes}", shown(tokenizer))
        raise GptkitError(
            f"{shown(src)}: its tokenizer {sizes}; attach a matching one with tokenizer=PATH (--tokenizer PATH)"
        )
    with new_folder(out) as staging:  # a non-empty `out` was refused above
        write_run_config(staging, RunConfig(model=model_config, preset=f"imported:{arch}"))
        save_weights(model, staging / WEIGHTS_FILE, {"imported_from": str(src)})
        if tok is not None:
            tok.save(staging / TOKENIZER_FILE)
    if note:
        echo(note)
    return out


def _tokenizer_for_import(src: Path, tokenizer) -> tuple:
    """(tokenizer or None, a note to show or "") for an import."""
    if tokenizer:
        tok = find_tokenizer(Path(tokenizer))
        if tok is None:
            raise ArgumentError("tokenizer", "no tokenizer files there", shown(tokenizer))
        return tok, ""
    try:
        tok = find_tokenizer(src)
    except GptkitError as err:  # e.g. a SentencePiece-style tokenizer.json: keep the weights, say why
        return (
            None,
            f"note: imported the weights alone; the tokenizer could not be read ({err}). Attach one "
            "with tokenizer=PATH (--tokenizer PATH)",
        )
    if tok is None:
        return (
            None,
            f"note: {src} has no tokenizer files; imported the weights alone. Attach one with tokenizer=PATH "
            "(--tokenizer PATH)",
        )
    return tok, ""
