"""Byte-level BPE tokenizer: encode text to ids by pre-splitting and applying merges by rank, and back.

Ids 0..255 stand for single bytes (in GPT-2's order for trained ones; any order is allowed), merge i makes id 256 + i,
and special tokens such as `<|endoftext|>` get the ids after that. Encoding pre-splits with the regex
pattern, then in each chunk repeatedly merges the adjacent pair with the lowest merge rank (a cache keeps
each distinct chunk's ids). Special tokens follow tiktoken's rules: their text in user data is an error
unless allowed. Where `tiktoken` is installed, it runs the same merges as a faster backend (tests check
that both give identical ids). Training lives in `bpe_train.py`, file formats in `formats.py`.
"""

import json
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import regex

from gptkit.atomic import atomic_write_text
from gptkit.errors import GptkitError
from gptkit.tokenizer.patterns import pattern_name

FORMAT_VERSION = 1
CACHE_LIMIT = 1 << 18  # distinct chunks remembered; cleared when full
MAX_TOKEN_ID = 1 << 31  # ids are stored as (u)int32 at most


class BPETokenizer:
    """Byte-level BPE: `encode(text) -> ids`, `decode(ids) -> text`, with special tokens."""

    def __init__(
        self,
        merges: Sequence[tuple[int, int]],
        *,
        pattern: str,
        specials: dict[str, int] | None = None,
        byte_ids: Sequence[int] | None = None,
        rank_consistent: bool = True,
    ):
        self.pattern = pattern
        try:
            self.compiled = regex.compile(pattern)
        except (regex.error, TypeError) as err:
            raise GptkitError(f"BPE tokenizer: the pre-split pattern is not a valid regex ({err})") from None
        self.byte_ids = list(byte_ids) if byte_ids is not None else list(range(256))
        if sorted(self.byte_ids) != list(range(256)):
            raise GptkitError("BPE tokenizer: `byte_ids` must be a permutation of 0..255")
        self.merges = [tuple(pair) for pair in merges]
        self.token_bytes: list[bytes] = [b""] * 256
        for byte, token_id in enumerate(self.byte_ids):
            self.token_bytes[token_id] = bytes([byte])
        self.merge_ranks: dict[tuple[int, int], int] = {}
        for rank, (left, right) in enumerate(self.merges):
            new_id = 256 + rank
            if not (0 <= left < new_id and 0 <= right < new_id):
                raise GptkitError(f"BPE tokenizer: merge {rank} ({left}, {right}) refers to a token made later")
            if (left, right) in self.merge_ranks:
                earlier = self.merge_ranks[(left, right)] - 256
                raise GptkitError(f"BPE tokenizer: merge {rank} ({left}, {right}) repeats merge {earlier}")
            self.token_bytes.append(self.token_bytes[left] + self.token_bytes[right])
            self.merge_ranks[(left, right)] = new_id
        self.specials = dict(specials or {})
        for text, token_id in self.specials.items():
            if not isinstance(token_id, int) or isinstance(token_id, bool) or token_id >= MAX_TOKEN_ID:
                raise GptkitError(f"BPE tokenizer: special token {text!r} has id {token_id!r}, not an id below 2**31")
            if token_id < len(self.token_bytes):
                raise GptkitError(f"BPE tokenizer: special token {text!r} has id {token_id}, already a byte or merge")
            if not text:
                raise GptkitError("BPE tokenizer: a special token cannot be the empty string")
        if len(set(self.specials.values())) != len(self.specials):
            raise GptkitError("BPE tokenizer: two special tokens share an id")
        self.special_by_id = {i: s for s, i in self.specials.items()}
        self._cache: dict[str, list[int]] = {}
        self._tiktoken = None
        # tiktoken merges by the rank of a pair's joined bytes, we by the rank of the pair: the same ids only when
        # every token is reachable through its own merge (`check_rank_consistent`; trained and GPT-2 vocabularies
        # are) and no two tokens share bytes. And its regex engine is checked against ours on the named patterns
        # only, so custom patterns use our encoder.
        self.rank_consistent = rank_consistent
        unique = len(set(self.token_bytes)) == len(self.token_bytes)
        same_regex = pattern_name(pattern) is not None
        self.backend = "tiktoken" if unique and rank_consistent and same_regex and _tiktoken_available() else "python"

    @property
    def vocab_size(self) -> int:
        return max([len(self.token_bytes) - 1, *self.specials.values()]) + 1

    # -- encoding ---------------------------------------------------------------------------------------

    def encode(
        self,
        text: str,
        *,
        allowed_special: Collection[str] | str = (),
        disallowed_special: Collection[str] | str = "all",
    ) -> list[int]:
        """Text -> ids. A special token's text is an error unless in `allowed_special` ("all" for every one);
        listing it in neither (with `disallowed_special=()`) encodes it as ordinary text."""
        check_text(text)
        allowed = set(self.specials) if allowed_special == "all" else set(allowed_special)
        unknown = allowed - set(self.specials)
        if unknown:
            raise GptkitError(f"allowed_special: {sorted(unknown)} are not special tokens of this tokenizer")
        disallowed = set(self.specials) - allowed if disallowed_special == "all" else set(disallowed_special)
        for special in disallowed:
            at = text.find(special)
            if at >= 0:
                raise GptkitError(
                    f"the text contains the special token {special!r} at character {at}; allow it (allowed_special, "
                    "--allow-special) to encode it as one, or pass disallowed_special=() to encode it as plain text"
                )
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        splitter = regex.compile("(" + "|".join(regex.escape(s) for s in sorted(allowed, key=len, reverse=True)) + ")")
        for i, part in enumerate(splitter.split(text)):
            if i % 2:
                ids.append(self.specials[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Text -> ids, treating special tokens' text as plain text."""
        check_text(text)
        if self.backend == "tiktoken":
            return self._tiktoken_encoding().encode_ordinary(text)
        return self.encode_python(text)

    def encode_python(self, text: str) -> list[int]:
        """Our own encoder (no special-token handling), used when tiktoken is absent and as its reference."""
        ids: list[int] = []
        cache = self._cache
        for chunk in self.compiled.findall(text):
            chunk_ids = cache.get(chunk)
            if chunk_ids is None:
                chunk_ids = self._bpe(chunk.encode("utf-8"))
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                cache[chunk] = chunk_ids
            ids.extend(chunk_ids)
        return ids

    def _bpe(self, data: bytes) -> list[int]:
        """Merge the lowest-ranked adjacent pair until none of the pairs is a merge."""
        byte_ids, ranks = self.byte_ids, self.merge_ranks
        ids = [byte_ids[b] for b in data]
        while len(ids) > 1:
            best = min(zip(ids, ids[1:]), key=lambda pair: ranks.get(pair, 1 << 62))
            new_id = ranks.get(best)
            if new_id is None:
                break
            ids = merge_pair(ids, best[0], best[1], new_id)
        return ids

    def encode_batch(self, texts: Iterable[str], *, workers: int = 2, **special_options) -> list[list[int]]:
        """Encode many texts with a thread pool (tiktoken releases the GIL, so threads run in parallel)."""
        texts = list(texts)
        if workers <= 1 or len(texts) < 2:
            return [self.encode(t, **special_options) for t in texts]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda t: self.encode(t, **special_options), texts))

    def _tiktoken_encoding(self):
        if self._tiktoken is None:
            import tiktoken

            ranks = {token: token_id for token_id, token in enumerate(self.token_bytes)}
            self._tiktoken = tiktoken.Encoding(
                name="gptkit-bpe", pat_str=self.pattern, mergeable_ranks=ranks, special_tokens=self.specials
            )
        return self._tiktoken

    # -- decoding ---------------------------------------------------------------------------------------

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The exact bytes that `ids` stand for (special tokens as their text)."""
        token_bytes, special_by_id, n = self.token_bytes, self.special_by_id, len(self.token_bytes)
        parts = []
        for token_id in ids:
            token_id = int(token_id)
            if 0 <= token_id < n:
                parts.append(token_bytes[token_id])
            elif token_id in special_by_id:
                parts.append(special_by_id[token_id].encode("utf-8"))
            else:
                raise GptkitError(f"token id {token_id} is not in this tokenizer's vocabulary of {self.vocab_size}")
        return b"".join(parts)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; bytes that do not form valid UTF-8 (a partial character) become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # -- saving -----------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        data = {
            "type": "bpe",
            "format_version": FORMAT_VERSION,
            "pattern_name": pattern_name(self.pattern),
            "pattern": self.pattern,
            "specials": self.specials,
            "merges": [list(pair) for pair in self.merges],
        }
        if self.byte_ids != list(range(256)):
            data["byte_ids"] = self.byte_ids
        if not self.rank_consistent:
            data["rank_consistent"] = False
        return data

    @classmethod
    def from_dict(cls, raw: dict, *, source: str = "tokenizer") -> "BPETokenizer":
        if raw.get("format_version") != FORMAT_VERSION:
            raise GptkitError(f"{source}: unsupported BPE tokenizer format {raw.get('format_version')!r}")
        try:
            merges = [(_token_id(a), _token_id(b)) for a, b in raw["merges"]]
            specials = {str(k): _token_id(v) for k, v in (raw.get("specials") or {}).items()}
            if not isinstance(raw["pattern"], str):
                raise TypeError("`pattern` must be a string")
            return cls(
                merges,
                pattern=raw["pattern"],
                specials=specials,
                byte_ids=raw.get("byte_ids"),
                rank_consistent=bool(raw.get("rank_consistent", True)),
            )
        except GptkitError as err:
            raise GptkitError(f"{source}: {err}") from None
        except (KeyError, TypeError, ValueError, AttributeError, regex.error) as err:
            raise GptkitError(f"{source}: damaged BPE tokenizer file ({type(err).__name__}: {err})") from None

    def save(self, path) -> None:
        """Write the tokenizer as JSON (merges as id pairs), atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))


def _token_id(value) -> int:
    """An id as a file gives it: an integer below 2**31, not a float, a bool or a 5,000-digit number."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_TOKEN_ID:
        raise ValueError(f"{value!r} is not a token id (an integer in 0..2**31-1)")
    return value


def merge_pair(ids: list[int], left: int, right: int, new_id: int) -> list[int]:
    """`ids` with every non-overlapping (left, right), scanned left to right, replaced by `new_id`."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == left and ids[i + 1] == right:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def check_text(text: str) -> None:
    """Refuse text that is not valid Unicode (a lone surrogate), which no byte-level tokenizer can encode."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise GptkitError(
                f"the text holds a lone surrogate (U+{ord(text[err.start]):04X}) at character {err.start}, which is "
                "not valid Unicode; remove it or decode the source with errors='replace'"
            ) from None


def check_rank_consistent(tok: "BPETokenizer") -> bool:
    """True when every merged token encodes to itself through the merges (then tiktoken gives our ids)."""
    return all(tok._bpe(tok.token_bytes[256 + i]) == [256 + i] for i in range(len(tok.merges)))


def gpt2_byte_ids() -> list[int]:
    """GPT-2's ids for the 256 bytes: printable ones first (ascending), then the rest (ascending)."""
    order = [b for b in range(256) if chr(b).isprintable() and b != ord(" ")]
    order += [b for b in range(256) if b not in order]
    ids = [0] * 256
    for token_id, byte in enumerate(order):
        ids[byte] = token_id
    return ids


def _tiktoken_available() -> bool:
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        return False
    return True
