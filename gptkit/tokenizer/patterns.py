"""Pre-splitting: the regex patterns that cut text into chunks before BPE, and chunked reading of big inputs.

BPE merges never cross a chunk boundary, so words, numbers, punctuation and whitespace are learned apart.
`gpt2` is GPT-2's pattern and `gpt4` cl100k_base's, both as tiktoken 0.14 ships them (`r50k_pat_str` and
cl100k's `pat_str` in `tiktoken_ext/openai_public.py`: possessive forms, same splits as the originals).
`none` keeps each document whole (in memory: small inputs only). Any other string is a custom pattern
(`regex` syntax); text it matches nowhere is dropped, so make it cover everything.
Entry points: `resolve_pattern`, `iter_chunks`.
"""

from collections.abc import Iterable, Iterator

import regex

from gptkit.errors import ArgumentError

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""  # words, numbers
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""  # whitespace
)
NONE_PATTERN = r"[\s\S]+"
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "none": NONE_PATTERN}
LOOKAHEAD_CHARS = 256


def resolve_pattern(name_or_regex: str) -> str:
    """A named pattern's regex, or a custom regex after checking that it compiles."""
    if name_or_regex in PATTERNS:
        return PATTERNS[name_or_regex]
    try:
        regex.compile(name_or_regex)
    except regex.error as err:
        problem = f"not a valid regex ({err}); or use gpt2, gpt4, none"
        raise ArgumentError("pattern", problem, name_or_regex) from None
    return name_or_regex


def pattern_name(pattern: str) -> str | None:
    return next((name for name, value in PATTERNS.items() if value == pattern), None)


def iter_chunks(documents: Iterable[Iterable[str]], pattern: str, specials: Iterable[str] = ()) -> Iterator[list[str]]:
    """Pre-split chunks of each document (given as a stream of text blocks), a list of chunks at a time.

    A block boundary can fall inside a chunk (or a special token), so the end of each block is carried into
    the next: only chunks that end in a non-space character at least LOOKAHEAD_CHARS before the block's end
    are emitted. For the gpt2 and gpt4 patterns such a chunk cannot change with more text (whitespace runs,
    whose matching looks far ahead, always end before it), so chunks come out exactly as if each document
    were split whole. Special-token strings are cut out first and never become part of a chunk.
    """
    compiled = regex.compile(pattern)
    specials = sorted(specials, key=len, reverse=True)
    special_re = regex.compile("|".join(regex.escape(s) for s in specials)) if specials else None
    longest_special = max((len(s) for s in specials), default=0)
    for blocks in documents:
        carry = ""
        for block in blocks:
            text = carry + block
            if special_re is not None:  # text before a special that cannot grow with more text is final
                final_end = 0
                for match in special_re.finditer(text):
                    if match.start() > len(text) - longest_special:
                        break
                    yield compiled.findall(text[final_end : match.start()])
                    final_end = match.end()
                text = text[final_end:]
            if pattern == NONE_PATTERN:
                carry = text
                continue
            matches = list(compiled.finditer(text))
            limit = len(text) - max(LOOKAHEAD_CHARS, longest_special)  # a special may straddle the end
            cut = 0
            for i in range(len(matches) - 1, 0, -1):
                previous = matches[i - 1].group()
                if matches[i].start() <= limit and previous and not previous[-1].isspace():
                    cut = i
                    break
            if cut:  # matches before `cut` are final; re-splitting a prefix instead could change its end
                yield [m.group() for m in matches[:cut]]
                text = text[matches[cut].start() :]
            carry = text
        if carry:
            parts = special_re.split(carry) if special_re is not None else [carry]
            for part in parts:
                yield compiled.findall(part)
