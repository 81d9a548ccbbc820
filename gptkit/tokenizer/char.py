"""Character-level tokenizer: one id per distinct character of the training text, sorted by code point.

Decoding is exact. Encoding a character the vocabulary lacks raises a one-line `GptkitError`, unless the
tokenizer was built with an `unknown` replacement character (which is then part of the vocabulary).
Entry points: `CharTokenizer.from_text(text)`, `.encode`, `.decode`, `.save`, `CharTokenizer.from_dict`.
"""

import json

import numpy as np

from gptkit.atomic import atomic_write_text
from gptkit.errors import GptkitError

FORMAT_VERSION = 1


class UnknownCharacterError(GptkitError):
    """Text holds a character that the vocabulary lacks (`char` is that character)."""

    def __init__(self, message: str, char: str):
        super().__init__(message)
        self.char = char


class CharTokenizer:
    """Maps each character of a fixed alphabet to an id (its rank in code-point order)."""

    def __init__(self, chars: list[str], unknown: str | None = None):
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise GptkitError("char tokenizer: `chars` must be distinct single characters")
        if unknown is not None and unknown not in chars:
            raise GptkitError(f"char tokenizer: replacement character {unknown!r} must be in the vocabulary")
        self.chars = list(chars)
        self.unknown = unknown
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str, unknown: str | None = None) -> "CharTokenizer":
        """Build the vocabulary from every distinct character in `text` (plus `unknown`, if given)."""
        alphabet = set(text)
        if unknown is not None:
            if len(unknown) != 1:
                raise GptkitError(f"--unknown-char {unknown!r}: must be exactly one character")
            alphabet.add(unknown)
        if not alphabet:
            raise GptkitError("char tokenizer: the text is empty, so there is no vocabulary to build")
        return cls(sorted(alphabet), unknown=unknown)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        stoi = self.stoi
        try:
            return [stoi[c] for c in text]
        except KeyError:
            pass
        if self.unknown is not None:
            fallback = stoi[self.unknown]
            return [stoi.get(c, fallback) for c in text]
        bad = next(c for c in text if c not in stoi)
        raise UnknownCharacterError(
            f"character {bad!r} (U+{ord(bad):04X}) is not in this char tokenizer's {self.vocab_size}-character "
            "vocabulary; remove it from the text, or prepare the data with --unknown-char to map unseen characters",
            bad,
        )

    def encode_array(self, text: str) -> np.ndarray:
        """`encode` for long texts, vectorised with numpy: int64 ids (B,) of each character."""
        if self.chars != sorted(self.chars):  # a vocabulary from elsewhere, not in code-point order
            return np.array(self.encode(text), dtype=np.int64)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        alphabet = np.array([ord(c) for c in self.chars], dtype=np.uint32)  # sorted: chars are in code-point order
        ids = np.searchsorted(alphabet, codes)
        unseen = (ids >= len(alphabet)) | (alphabet[np.minimum(ids, len(alphabet) - 1)] != codes)
        if unseen.any():
            if self.unknown is None:
                self.encode(text[int(np.argmax(unseen))])  # raises the usual error for that character
            ids[unseen] = self.stoi[self.unknown]
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        chars = self.chars
        try:
            return "".join(chars[int(i)] for i in ids)
        except IndexError:
            bad = next(int(i) for i in ids if not 0 <= int(i) < len(chars))
            raise GptkitError(f"token id {bad} is outside this tokenizer's vocabulary of {len(chars)}") from None

    def decode_bytes(self, ids) -> bytes:
        return self.decode(ids).encode("utf-8")

    def to_dict(self) -> dict:
        return {"type": "char", "format_version": FORMAT_VERSION, "chars": self.chars, "unknown": self.unknown}

    @classmethod
    def from_dict(cls, raw: dict, *, source: str = "tokenizer") -> "CharTokenizer":
        if raw.get("format_version") != FORMAT_VERSION or not isinstance(raw.get("chars"), list):
            raise GptkitError(f"{source}: unsupported char tokenizer format {raw.get('format_version')!r}")
        return cls(raw["chars"], unknown=raw.get("unknown"))

    def save(self, path) -> None:
        """Write the tokenizer as readable JSON, atomically (temp file + rename)."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))
