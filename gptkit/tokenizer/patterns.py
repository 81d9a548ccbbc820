"""Pre-splitting: the regex patterns that cut text into chunks before BPE, and chunked reading of big inputs.

BPE merges never cross a chunk boundary, so words, numbers, punctuation and whitespace are learned apart.
`gpt2` is GPT-2's pattern (from OpenAI's `encoder.py`), `gpt4` is cl100k_base's (from tiktoken's
`tiktoken_ext/openai_public.py`); `none` keeps the text whole (small inputs only). Any other string is used
as a custom pattern (`regex` module syntax). Entry points: `resolve_pattern`, `iter_chunks`.
"""

from collections.abc import Iterable, Iterator
from pathlib import Path

import regex

from gptkit.errors import GptkitError

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)
NONE_PATTERN = r"[\s\S]+"
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "none": NONE_PATTERN}
BLOCK_CHARS = 1 << 20  # characters read at a time: memory stays bounded whatever the corpus size
LOOKAHEAD_CHARS = 256


def resolve_pattern(name_or_regex: str) -> str:
    """A named pattern's regex, or a custom regex after checking that it compiles."""
    if name_or_regex in PATTERNS:
        return PATTERNS[name_or_regex]
    try:
        regex.compile(name_or_regex)
    except regex.error as err:
        raise GptkitError(f"--pattern {name_or_regex!r}: not a valid regex ({err}); or use gpt2, gpt4, none") from None
    return name_or_regex


def pattern_name(pattern: str) -> str | None:
    return next((name for name, value in PATTERNS.items() if value == pattern), None)


def iter_file_blocks(path: Path) -> Iterator[str]:
    """A UTF-8 file as blocks of about BLOCK_CHARS characters, with a clear error for non-UTF-8 input."""
    with open(path, encoding="utf-8", newline="") as f:
        offset = 0
        while True:
            try:
                block = f.read(BLOCK_CHARS)
            except UnicodeDecodeError as err:
                raise GptkitError(
                    f"{path}: not UTF-8 text (invalid byte near offset {offset + err.start}); convert it to UTF-8"
                ) from None
            if not block:
                return
            offset += len(block.encode("utf-8"))
            yield block


def iter_chunks(documents: Iterable[Iterable[str]], pattern: str, specials: Iterable[str] = ()) -> Iterator[list[str]]:
    """Pre-split chunks of each document (given as a stream of text blocks), a list of chunks at a time.

    A block boundary can fall inside a chunk (or a special token), so the last LOOKAHEAD_CHARS or more of
    each block, from a chunk start on, are carried into the next: chunks come out exactly as if each
    document were split whole.
    Special-token strings are cut out first and never become part of a chunk; no chunk spans two documents.
    """
    compiled = regex.compile(pattern)
    specials = sorted(specials, key=len, reverse=True)
    special_split = regex.compile("|".join(regex.escape(s) for s in specials)) if specials else None
    # Matches that end this far before a block's end are final: deciding a match looks only a few characters
    # past it (a contraction, a lookahead), and a special token may straddle the block end.
    margin = max([LOOKAHEAD_CHARS, *(len(s) for s in specials)])
    for blocks in documents:
        carry = ""
        for block in blocks:
            segments = special_split.split(carry + block) if special_split else [carry + block]
            carry = segments.pop()
            for segment in segments:
                yield compiled.findall(segment)
            if pattern == NONE_PATTERN:
                continue
            matches = list(compiled.finditer(carry))
            limit = len(carry) - margin
            last = max((i for i, m in enumerate(matches) if 0 < m.start() <= limit), default=0)
            if last:  # matches before `last` are final; re-splitting a prefix instead could change its end
                yield [m.group() for m in matches[:last]]
                carry = carry[matches[last].start() :]
        if carry:
            yield compiled.findall(carry)
