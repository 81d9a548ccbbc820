"""Hugging Face `tokenizer.json`: write ours so `tokenizers` and `transformers` load it, read theirs back.

- BPE: a byte-level BPE model with a Split + ByteLevel pre-tokenizer and a ByteLevel decoder, loadable by
  `tokenizers.Tokenizer.from_file` and `transformers.PreTrainedTokenizerFast`; GPT-2-style files read back.
- Characters: a WordLevel vocabulary of single characters whose decoder joins them (`Fuse`).
`find_tokenizer` reads whatever a model folder holds: ours, a HF tokenizer.json, or GPT-2's vocab/merges.
Entry points: `write_hf_tokenizer`, `read_hf_tokenizer`, `find_tokenizer`.
"""

import json
from pathlib import Path

import regex

from gptkit.atomic import atomic_write_text
from gptkit.errors import GptkitError
from gptkit.paths import read_json
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.char import CharTokenizer
from gptkit.tokenizer.formats import import_gpt2, merges_from_vocab, to_visible
from gptkit.tokenizer.patterns import GPT2_PATTERN


def write_hf_tokenizer(tok, out_dir, *, chat_template: str | None = None, eos_token: str | None = None) -> list[Path]:
    """Write `tokenizer.json` and `tokenizer_config.json` for a BPE or a char tokenizer into `out_dir`; a chat
    model's export adds its Jinja `chat_template` and the token that ends a reply (`eos_token`)."""
    out = Path(out_dir)
    if isinstance(tok, BPETokenizer):
        data = bpe_tokenizer_json(tok)
        eos_token = eos_token or ("<|endoftext|>" if "<|endoftext|>" in tok.specials else None)
    else:
        data = char_tokenizer_json(tok)
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1 << 30}
    if isinstance(tok, BPETokenizer) or eos_token:
        config |= {"bos_token": eos_token, "eos_token": eos_token, "unk_token": None}
    if chat_template:
        config["chat_template"] = chat_template
    atomic_write_text(out / TOKENIZER_FILE, json.dumps(data, ensure_ascii=False, indent=1))
    atomic_write_text(out / "tokenizer_config.json", json.dumps(config, indent=1))
    return [out / TOKENIZER_FILE, out / "tokenizer_config.json"]


def added_tokens(specials: dict[str, int]) -> list[dict]:
    """HF's entries for special tokens, matched before any other splitting, whole, with nothing stripped."""
    flags = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    return [{"id": i, "content": s, **flags} for s, i in sorted(specials.items(), key=lambda item: item[1])]


def tokenizer_json(specials: dict[str, int], pre_tokenizer: dict, decoder: dict, model: dict) -> dict:
    """HF's `tokenizer.json` layout around the parts that differ between kinds of tokenizer."""
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens(specials),
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": None,
        "decoder": decoder,
        "model": model,
    }


def char_tokenizer_json(tok: CharTokenizer) -> dict:
    """A `tokenizer.json` for a char vocabulary: each character is a token (WordLevel), decoding joins them."""
    return tokenizer_json(
        tok.specials,
        {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": False},
        {"type": "Fuse"},
        {
            "type": "WordLevel",
            "vocab": {c: i for i, c in enumerate(tok.chars)},
            "unk_token": tok.unknown if tok.unknown is not None else "\ufffd",  # not in vocab: unseen chars then fail
        },
    )


def read_hf_tokenizer(path):
    """A HF `tokenizer.json`: byte-level BPE, or a WordLevel vocabulary of characters (as we write them)."""
    path = Path(path)
    data = read_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, dict) and model.get("type") == "WordLevel":
        return _char_from_wordlevel(data, path)
    return read_hf_bpe(path, data)


def _char_from_wordlevel(raw: dict, path: Path) -> CharTokenizer:
    vocab = raw["model"]["vocab"]
    chars = sorted(vocab, key=vocab.get)
    if [vocab[c] for c in chars] != list(range(len(chars))) or any(len(c) != 1 for c in chars):
        raise GptkitError(f"{path}: a WordLevel vocabulary of single characters with ids 0..N-1 is needed")
    unknown = raw["model"].get("unk_token")
    return CharTokenizer(chars, unknown=unknown if unknown in vocab else None)


def find_tokenizer(path):
    """A tokenizer from a folder or file in any format we read: ours, HF tokenizer.json, GPT-2's files;
    None when a folder has no tokenizer files."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = path if path.is_file() else folder / TOKENIZER_FILE
    if file.is_file():
        raw = read_json(file)
        if isinstance(raw, dict) and raw.get("type") in ("char", "bpe"):
            return load_tokenizer(file)  # gptkit's own format
        return read_hf_tokenizer(file)
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return import_gpt2(folder / "vocab.json", folder / "merges.txt")
    return None


def write_hf_bpe(tok: BPETokenizer, out_dir) -> list[Path]:
    """Write a Hugging Face `tokenizer.json` (plus a minimal `tokenizer_config.json` for transformers)."""
    return write_hf_tokenizer(tok, out_dir)


def bpe_tokenizer_json(tok: BPETokenizer) -> dict:
    """A `tokenizer.json` for a byte-level BPE: our regex split, then GPT-2's byte-to-unicode mapping."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    split = {"type": "Split", "pattern": {"Regex": tok.pattern}, "behavior": "Isolated", "invert": False}
    model = {
        "type": "BPE",
        "dropout": None,
        "unk_token": None,
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": False,
        "byte_fallback": False,
        "ignore_merges": False,
        "vocab": {to_visible(data): i for i, data in enumerate(tok.token_bytes)},
        "merges": [[to_visible(tok.token_bytes[a]), to_visible(tok.token_bytes[b])] for a, b in tok.merges],
    }
    return tokenizer_json(tok.specials, {"type": "Sequence", "pretokenizers": [split, byte_level]}, byte_level, model)


def read_hf_bpe(path, data: dict | None = None) -> BPETokenizer:
    """A Hugging Face byte-level BPE `tokenizer.json` (GPT-2 style, or one written by `write_hf_bpe`).

    Parts that would change the ids and that our tokenizer does not model (a normalizer, a Split that removes
    or inverts, `ignore_merges`, added tokens that are not special) are refused rather than ignored.
    """
    path = Path(path)
    data = read_json(path) if data is None else data
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise GptkitError(f"{path}: not a BPE tokenizer.json (model.type must be BPE)")
    if data.get("normalizer") is not None:
        raise GptkitError(
            f"{path}: has a normalizer ({data['normalizer'].get('type')}); only byte-level BPE without one"
        )
    if model.get("ignore_merges"):
        raise GptkitError(f"{path}: model.ignore_merges=true is not supported (it changes the ids)")
    pattern = _hf_pattern(data.get("pre_tokenizer"), path)
    try:
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
        vocab = dict(model.get("vocab", {}))
        for added in data.get("added_tokens") or []:
            if not added.get("special", False):
                raise GptkitError(f"{path}: added token {added.get('content')!r} is not special; not supported")
            vocab.setdefault(added["content"], added["id"])
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise GptkitError(f"{path}: damaged tokenizer.json ({type(err).__name__}: {err})") from None
    return merges_from_vocab(vocab, merges, str(path), pattern)


def _hf_pattern(pre: dict | None, path: Path) -> str:
    """The pre-split regex of a byte-level pre-tokenizer: ByteLevel(use_regex) is GPT-2's, or an explicit Split."""
    if pre is not None and not isinstance(pre, dict):
        raise GptkitError(f"{path}: pre_tokenizer must be an object")
    steps = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else [pre] if pre else []
    for step in steps:
        if step.get("type") == "Split" and "Regex" in step.get("pattern", {}):
            if step.get("behavior") != "Isolated" or step.get("invert"):
                raise GptkitError(f"{path}: only Split with behavior Isolated (not inverted) is supported")
            pattern = step["pattern"]["Regex"]
            try:
                regex.compile(pattern)
            except regex.error as err:
                raise GptkitError(f"{path}: the Split regex does not compile ({err})") from None
            return pattern
        if step.get("type") == "ByteLevel" and step.get("use_regex", True):
            if step.get("add_prefix_space"):
                raise GptkitError(f"{path}: ByteLevel add_prefix_space=true is not supported; it changes the text")
            return GPT2_PATTERN
    raise GptkitError(f"{path}: no byte-level pre-tokenizer found; only byte-level BPE tokenizers can be imported")
