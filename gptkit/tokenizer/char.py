"""Character-level tokenizer: one id per distinct character of the training text, sorted by code point.

Decoding is exact. Encoding a character the vocabulary lacks raises a one-line `GptkitError`, unless the
tokenizer was built with an `unknown` replacement character (which is then part of the vocabulary).
Special tokens (`<|mask|>`, `<|pad|>`, ...) get the ids after the characters; `encode` reads their text as
plain characters unless `allowed_special` names them, as the BPE tokenizer does.
Entry points: `CharTokenizer.from_text(text)`, `.encode`, `.decode`, `.save`, `CharTokenizer.from_dict`.
"""

import json
import re

import numpy as np

from gptkit.atomic import atomic_write_text
from gptkit.errors import ArgumentError, GptkitError

FORMAT_VERSION = 1


class UnknownCharacterError(GptkitError):
    """Text holds a character that the vocabulary lacks (`char` is that character)."""

    def __init__(self, message: str, char: str):
        super().__init__(message)
        self.char = char


class CharTokenizer:
    """Maps each character of a fixed alphabet to an id (its rank in code-point order)."""

    def __init__(self, chars: list[str], unknown: str | None = None, specials: list[str] = ()):
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise GptkitError("char tokenizer: `chars` must be distinct single characters")
        if unknown is not None and unknown not in chars:
            raise GptkitError(f"char tokenizer: replacement character {unknown!r} must be in the vocabulary")
        if len(set(specials)) != len(specials) or any(len(s) < 2 for s in specials):
            raise GptkitError("char tokenizer: special tokens must be distinct and longer than one character")
        self.chars = list(chars)
        self.unknown = unknown
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.specials = {text: len(self.chars) + i for i, text in enumerate(specials)}
        self.special_by_id = {i: text for text, i in self.specials.items()}

    @classmethod
    def from_text(cls, text: str, unknown: str | None = None) -> "CharTokenizer":
        """Build the vocabulary from every distinct character in `text` (plus `unknown`, if given)."""
        alphabet = set(text)
        if unknown is not None:
            if len(unknown) != 1:
                raise ArgumentError("unknown", "must be exactly one character", unknown, flag="--unknown-char")
            alphabet.add(unknown)
        if not alphabet:
            raise GptkitError("char tokenizer: the text is empty, so there is no vocabulary to build")
        return cls(sorted(alphabet), unknown=unknown)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(self.specials)

    def encode(self, text: str, *, allowed_special=()) -> list[int]:
        """Text -> ids; the text of the special tokens in `allowed_special` ("all" for every one) -> their ids."""
        allowed = list(self.specials) if allowed_special == "all" else list(allowed_special)
        if unknown := set(allowed) - set(self.specials):
            raise GptkitError(f"allowed_special: {sorted(unknown)} are not special tokens of this tokenizer")
        if allowed:
            ids: list[int] = []
            pattern = "(" + "|".join(re.escape(s) for s in sorted(allowed, key=len, reverse=True)) + ")"
            for i, part in enumerate(re.split(pattern, text)):
                ids.extend([self.specials[part]] if i % 2 else self.encode(part))
            return ids
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
        ids = [int(i) for i in ids]
        if ids and (min(ids) < 0 or max(ids) >= len(self.chars)):  # never Python's negative indexing
            bad = next((i for i in ids if not 0 <= i < self.vocab_size), None)
            if bad is not None:
                raise GptkitError(f"token id {bad} is outside this tokenizer's vocabulary of {self.vocab_size}")
            table = self.chars + [self.special_by_id[len(self.chars) + i] for i in range(len(self.specials))]
            return "".join(table[i] for i in ids)
        chars = self.chars
        return "".join(chars[i] for i in ids)

    def decode_bytes(self, ids) -> bytes:
        return self.decode(ids).encode("utf-8")

    def to_dict(self) -> dict:
        data = {"type": "char", "format_version": FORMAT_VERSION, "chars": self.chars, "unknown": self.unknown}
        if self.specials:  # only when there are some: files without them stay as they were
            data["specials"] = list(self.specials)
        return data

    @classmethod
    def from_dict(cls, raw: dict, *, source: str = "tokenizer") -> "CharTokenizer":
        if raw.get("format_version") != FORMAT_VERSION or not isinstance(raw.get("chars"), list):
            raise GptkitError(f"{source}: unsupported char tokenizer format {raw.get('format_version')!r}")
        chars, unknown, specials = raw["chars"], raw.get("unknown"), raw.get("specials") or []
        if not isinstance(specials, list) or not all(isinstance(x, str) for x in [*chars, *specials]):
            raise GptkitError(f"{source}: `chars` and `specials` must be lists of strings; the file is damaged")
        if unknown is not None and not isinstance(unknown, str):
            raise GptkitError(f"{source}: `unknown` must be a character or null, got {unknown!r}")
        duplicates = sorted({c for c in chars if chars.count(c) > 1}) if len(set(chars)) != len(chars) else []
        if duplicates:
            raise GptkitError(
                f"{source}: the character {duplicates[0]!r} is listed twice in `chars`; the file is damaged"
            )
        try:
            return cls(chars, unknown=unknown, specials=specials)
        except GptkitError as err:
            raise GptkitError(f"{source}: {err}") from None

    def save(self, path) -> None:
        """Write the tokenizer as readable JSON, atomically (temp file + rename)."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))
