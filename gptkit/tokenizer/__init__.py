"""Tokenizers: the shared interface and `load_tokenizer`, which reads any saved tokenizer JSON.

Every tokenizer has `vocab_size`, `encode(text) -> list[int]`, `decode(ids) -> str`,
`decode_bytes(ids) -> bytes` (for streaming UTF-8 that spans tokens) and `save(path)`. The JSON file names
its `type` and `format_version`, so `load_tokenizer` picks the class. Training lives in each tokenizer's module.
"""

from pathlib import Path
from typing import Protocol

from gptkit.errors import GptkitError
from gptkit.paths import file_problem, read_json, shown
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.char import CharTokenizer

TOKENIZER_FILE = "tokenizer.json"


class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids) -> str: ...

    def decode_bytes(self, ids) -> bytes: ...

    def save(self, path) -> None: ...


_TYPES = {"char": CharTokenizer, "bpe": BPETokenizer}


def load_tokenizer(path) -> Tokenizer:
    """Load a tokenizer from a JSON file, or from a directory (data or run dir) that has `tokenizer.json`."""
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise GptkitError(
            f"{shown(path)}: no tokenizer file here ({file_problem(path)}); pass a tokenizer .json or a prepared "
            "data/run directory"
        )
    raw = read_json(path, what="not a tokenizer file; pass a tokenizer .json or a prepared data/run directory")
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in _TYPES:
        raise GptkitError(f"{path}: unknown tokenizer type {kind!r}; expected one of {', '.join(_TYPES)}")
    return _TYPES[kind].from_dict(raw, source=str(path))


MASK_TOKEN = "<|mask|>"
PAD_TOKEN = "<|pad|>"


def with_specials(tokenizer: Tokenizer, names: list[str]) -> Tokenizer:
    """The same tokenizer with the special tokens `names` it lacks added after its last id (ids of
    everything else unchanged); `tokenizer` itself when it has them all."""
    missing = [name for name in names if name not in tokenizer.specials]
    if not missing:
        return tokenizer
    raw = tokenizer.to_dict()
    if isinstance(tokenizer, CharTokenizer):
        raw["specials"] = [*tokenizer.specials, *missing]
    else:
        raw["specials"] = {**tokenizer.specials, **{n: tokenizer.vocab_size + i for i, n in enumerate(missing)}}
    return type(tokenizer).from_dict(raw)
