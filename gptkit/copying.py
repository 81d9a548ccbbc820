"""Memorised, not learned: how much of what a model writes is copied from its training text, and how repetitive.

Measures, for a set of texts (a model's samples, or real held-out text as the yardstick):
- the share of their n-grams (n = 8, 16, 32 tokens; and the same in characters) that occur verbatim in the
  training split;
- the longest span of them that occurs verbatim there (tokens and characters);
- distinct-1/2/3: unique n-grams over all n-grams of the texts (Li et al. 2016), low when a model repeats itself.

The training split is never loaded: it is streamed from its memory-mapped shards a few million tokens at a
time, and only the texts' own n-grams are held, as a sorted array of 64-bit hashes. Each chunk's n-gram hashes
are computed with numpy by doubling (a 2m-gram's hash from two m-grams', with wrap-around arithmetic), and
looked up with a binary search. So memory stays bounded however large the corpus is, and one pass answers one
n-gram length. The longest span is found by a binary search over lengths, a pass per step. Hash collisions
(2^-64 per pair) are ignored. Characters are the corpus decoded chunk by chunk (a char tokenizer's ids map to
characters directly). Entry points: `copy_measures`, `CopyReport`.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

NGRAMS = (8, 16, 32)
CHUNK = 1 << 22  # corpus items hashed at a time: about 100 MB of working arrays
BASE = np.uint64(0x9E3779B97F4A7C15)  # an odd 64-bit multiplier


def ngram_hashes(seq: np.ndarray, n: int) -> np.ndarray:
    """uint64 hash of every window of `n` items of `seq` (len(seq) - n + 1 of them; none if shorter)."""
    if len(seq) < n:
        return np.zeros(0, dtype=np.uint64)
    hashes = seq.astype(np.uint64) + np.uint64(1)  # +1: a run of id 0 still hashes apart from shorter runs
    width, power, result, result_width = 1, BASE, None, 0
    with np.errstate(over="ignore"):
        while True:  # binary decomposition of n over the doubled hashes
            if n & width:
                if result is None:
                    result, result_width = hashes, width
                else:  # append `width` more items: shift the earlier part left by them
                    count = len(seq) - (result_width + width) + 1
                    result = result[:count] * power + hashes[result_width : result_width + count]
                    result_width += width
            if width * 2 > n:
                break
            hashes = hashes[:-width] * power + hashes[width:]
            power = power * power
            width *= 2
    return result[: len(seq) - n + 1]


def found_in_corpus(queries: np.ndarray, chunks: Callable[[], Iterable[np.ndarray]], n: int) -> np.ndarray:
    """For sorted unique uint64 `queries` (n-gram hashes): which occur among the corpus's n-grams."""
    found = np.zeros(len(queries), dtype=bool)
    if not len(queries):
        return found
    for hashes in _corpus_hashes(chunks, n):
        at = np.searchsorted(queries, hashes)
        hit = at < len(queries)
        hit[hit] = queries[at[hit]] == hashes[hit]
        found[at[hit]] = True
        if found.all():
            break
    return found


def _corpus_hashes(chunks: Callable[[], Iterable[np.ndarray]], n: int) -> Iterator[np.ndarray]:
    """The n-gram hashes of the corpus, chunk by chunk, the n - 1 items across each boundary included."""
    tail = np.zeros(0, dtype=np.uint32)
    for chunk in chunks():
        seq = np.concatenate([tail, np.asarray(chunk, dtype=np.uint32)])
        yield ngram_hashes(seq, n)
        tail = seq[max(0, len(seq) - (n - 1)) :] if n > 1 else seq[:0]  # a first chunk may be shorter


@dataclass
class CopyReport:
    """What `copy_measures` found for one set of texts in one unit (tokens or characters)."""

    copied: dict[int, float] = field(default_factory=dict)  # n -> share of the texts' n-grams found verbatim
    longest: int = 0  # the longest span found verbatim
    distinct: dict[int, float] = field(default_factory=dict)  # n -> unique n-grams / n-grams

    def to_dict(self) -> dict:
        return {
            "copied": {str(n): _number(share) for n, share in self.copied.items()},
            "longest_copied_span": self.longest,
            "distinct": {str(n): _number(share) for n, share in self.distinct.items()},
        }


def _number(value: float) -> float | None:
    """None for NaN (texts shorter than n have no n-grams): JSON has no NaN."""
    return None if value != value else value


def copy_measures(texts: list[np.ndarray], chunks: Callable[[], Iterable[np.ndarray]]) -> CopyReport:
    """The copy rates, longest copied span and distinct-n of `texts` (sequences of ids or code points) against
    the corpus that `chunks()` streams (a fresh iterator of uint32 arrays at each call)."""
    report = CopyReport()
    texts = [np.asarray(t, dtype=np.uint32) for t in texts]
    for n in NGRAMS:
        per_text = [ngram_hashes(t, n) for t in texts]
        total = sum(len(h) for h in per_text)
        if not total:
            report.copied[n] = float("nan")
            continue
        queries = np.unique(np.concatenate(per_text))
        found = found_in_corpus(queries, chunks, n)
        report.copied[n] = sum(int(found[np.searchsorted(queries, h)].sum()) for h in per_text) / total
    known = max((n for n in NGRAMS if report.copied[n] > 0), default=0)  # a copied n-gram: a span at least n long
    bigger = [n - 1 for n in NGRAMS if report.copied[n] == 0 and n > known]  # none copied: every span is shorter
    report.longest = longest_copied(texts, chunks, at_least=known, at_most=min(bigger, default=None))
    for n in (1, 2, 3):
        grams = [ngram_hashes(t, n) for t in texts]
        count = sum(len(g) for g in grams)
        report.distinct[n] = len(np.unique(np.concatenate(grams))) / count if count else float("nan")
    return report


def longest_copied(
    texts: list[np.ndarray], chunks: Callable[[], Iterable[np.ndarray]], at_least: int = 0, at_most: int | None = None
) -> int:
    """The longest span of any text that occurs verbatim in the corpus: a binary search over its length (a span
    of length L occurs only if every shorter one in it does), one pass over the corpus per step, between what
    is already known to occur (`at_least`) and what cannot (`at_most`)."""
    high = max((len(t) for t in texts), default=0)
    low, high = at_least, high if at_most is None else min(high, at_most)
    while low < high:
        length = (low + high + 1) // 2
        queries = np.unique(np.concatenate([ngram_hashes(t, length) for t in texts]))
        if len(queries) and found_in_corpus(queries, chunks, length).any():
            low = length
        else:
            high = length - 1
    return low


def split_chunks(shards: list[np.ndarray], size: int = CHUNK) -> Callable[[], Iterator[np.ndarray]]:
    """A corpus of shards (one token stream) as a re-startable stream of uint32 chunks. A memory-mapped shard
    is read from its file, not through the mapping, whose touched pages would stay in this process's memory."""

    def read(shard: np.ndarray, start: int, count: int) -> np.ndarray:
        if isinstance(shard, np.memmap) and shard.filename:
            offset = shard.offset + start * shard.itemsize
            return np.fromfile(shard.filename, dtype=shard.dtype, count=count, offset=offset).astype(np.uint32)
        return np.asarray(shard[start : start + count], dtype=np.uint32)

    def chunks() -> Iterator[np.ndarray]:
        for shard in shards:
            for start in range(0, len(shard), size):
                yield read(shard, start, min(size, len(shard) - start))

    return chunks


DECODE_TOKENS = 1 << 18  # tokens decoded to text at a time: a few MB of Python strings


def character_chunks(token_chunks: Callable[[], Iterable[np.ndarray]], tokenizer) -> Callable[[], Iterator]:
    """The same corpus as Unicode code points, decoded a quarter-million tokens at a time (a character cut
    between two pieces' bytes is carried over to the next)."""
    import codecs

    def chunks() -> Iterator[np.ndarray]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for ids in token_chunks():
            for start in range(0, len(ids), DECODE_TOKENS):
                text = decoder.decode(tokenizer.decode_bytes(ids[start : start + DECODE_TOKENS].tolist()))
                yield code_points(text)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield code_points(tail)

    return chunks


def code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
