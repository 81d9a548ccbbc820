"""Counting pre-split chunks for BPE training, on every core for big corpora.

The reading process cuts the text stream into pieces of about `piece_chars` characters at places where
the named patterns (gpt2, gpt4) are known to start a chunk: before a space that follows a non-space
character and precedes a letter, or after a newline between two non-space characters. No chunk of those
patterns runs from a non-space character into a space, and a lone newline there is a chunk of its own (or
ends a punctuation chunk) whether or not text follows, so every piece splits exactly as it would inside the
whole text, and worker processes can count pieces independently. Custom
patterns, and special tokens that hold whitespace (a cut could fall inside one), are counted in one process.
Workers are forked (Linux only), since spawned ones would re-import the caller's script.
Small documents travel in batches; at most two batches per worker are in flight, and a document with no
safe place to cut for long is counted by the reader itself, streaming, so memory stays bounded for corpora
larger than RAM.
Entry point: `count_chunks`.
"""

import itertools
import os
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

import regex

from gptkit.tokenizer.patterns import GPT2_PATTERN, GPT4_PATTERN, iter_chunks

PARALLEL_PATTERNS = (GPT2_PATTERN, GPT4_PATTERN)
SAFE_CUT = regex.compile(r"(?<=\S)(?= \p{L})|(?<=\S\n)(?=\S)")
PIECE_CHARS = 1 << 20
MAX_UNCUT_PIECES = 8  # memory bound: a reader holds at most about this many pieces of one document


def count_chunks(
    documents: Iterable[Iterable[str]],
    pattern: str,
    specials: list[str],
    *,
    workers: int = 1,
    piece_chars: int = PIECE_CHARS,
) -> Counter:
    """Frequency of each distinct chunk (as UTF-8 bytes) over all documents (each a stream of text blocks)."""
    if workers > 1 and pattern in PARALLEL_PATTERNS and not any(regex.search(r"\s", s) for s in specials):
        counts = _count_in_workers(documents, pattern, specials, workers, piece_chars)
    else:
        counts = _count_pieces([documents], pattern, specials)
    return Counter({chunk.encode("utf-8"): n for chunk, n in counts.items()})


def default_workers(num_bytes: int) -> int:
    """Worker processes worth starting for a corpus of `num_bytes`: none below a few MB (start-up costs more),
    and none where processes cannot be forked (spawned ones would re-run the caller's script)."""
    if num_bytes < 4 * PIECE_CHARS or sys.platform != "linux":
        return 1
    return min(len(os.sched_getaffinity(0)), 8)


def _count_pieces(groups: Iterable[Iterable[Iterable[str]]], pattern: str, specials: list[str]) -> Counter:
    counts: Counter = Counter()
    for documents in groups:
        for chunks in iter_chunks(documents, pattern, specials):
            counts.update(chunks)
    return counts


def _count_batch(pieces: list[str], pattern: str, specials: list[str]) -> Counter:
    return _count_pieces([[[piece] for piece in pieces]], pattern, specials)  # each piece splits on its own


def _count_in_workers(documents, pattern, specials, workers, piece_chars) -> Counter:
    counts: Counter = Counter()
    pending: set = set()

    def count_here(blocks: Iterable[str]) -> None:  # a document with no safe cut in sight: streamed here
        counts.update(_count_pieces([[blocks]], pattern, specials))

    # The workers only run regex on text, so forking beside the caller's threads is safe here.
    with warnings.catch_warnings(), ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
        for batch in _batches(_pieces(documents, piece_chars, count_here), piece_chars):
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    counts.update(future.result())
            pending.add(pool.submit(_count_batch, batch, pattern, specials))
        for future in pending:
            counts.update(future.result())
    return counts


def _batches(pieces: Iterable[str], piece_chars: int) -> Iterator[list[str]]:
    """Consecutive pieces grouped into batches of at least `piece_chars` characters (the last one may be
    smaller), so that many small documents (JSONL records) travel to the workers together."""
    batch, size = [], 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= piece_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _pieces(documents: Iterable[Iterable[str]], piece_chars: int, count_here) -> Iterator[str]:
    """The text of all documents, cut at the first safe place after every `piece_chars` characters (a
    document's end is a cut too). Where no safe place turns up within MAX_UNCUT_PIECES pieces' worth of text
    (a long line of text without spaces), the rest of that document goes to `count_here` as a stream."""
    for document in documents:
        blocks = iter(document)
        buffer = ""
        for block in blocks:
            searched = max(len(buffer) - 2, piece_chars)  # no cut lies before `searched` in the old buffer
            buffer += block
            while len(buffer) > piece_chars:
                match = SAFE_CUT.search(buffer, searched)
                if match is None:
                    break  # no safe place yet: read on
                yield buffer[: match.start()]
                buffer = buffer[match.start() :]
                searched = piece_chars
            if len(buffer) > MAX_UNCUT_PIECES * piece_chars:
                count_here(itertools.chain([buffer], blocks))  # `buffer` starts where a chunk starts
                buffer = ""
                break
        if buffer:
            yield buffer
