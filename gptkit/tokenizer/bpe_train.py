"""Byte-level BPE training: learn merges from text, fast enough for real corpora.

Reads what `gptkit prepare` reads (`gptkit.sources`: files, folders, `.jsonl` records, `.gz`, bundled names).

1. Count each distinct pre-split chunk once, with its frequency (text is streamed in blocks, never whole;
   big corpora are counted on every core: `gptkit.tokenizer.counting`).
2. Count adjacent token pairs over the distinct chunks (weighted by frequency), remembering which chunks
   hold each pair.
3. Repeatedly merge the most frequent pair: only the chunks that contain it are rewritten, and only the
   counts of pairs in those chunks change. A heap with lazy invalidation finds the next pair.
Ties between equally frequent pairs go to the smaller (left id, right id): byte values for the first
merges, earlier-made tokens after that, so training is deterministic. Entry point: `train_bpe`.
"""

import heapq
import warnings
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from gptkit.errors import ArgumentError, GptkitError
from gptkit.sources import Source, iter_documents, resolve_sources
from gptkit.tokenizer.bpe import BPETokenizer, gpt2_byte_ids
from gptkit.tokenizer.counting import count_chunks, default_workers
from gptkit.tokenizer.patterns import resolve_pattern


def learn_merges(chunk_counts: dict[bytes, int], num_merges: int, progress: bool | None = None) -> list[tuple]:
    """The BPE merges, as (left id, right id) pairs in order; merge i makes token 256 + i.

    Args:
        chunk_counts: frequency of each distinct chunk.
        num_merges: how many merges to learn (fewer when every chunk has become a single token).
    """
    words = [list(chunk) for chunk in chunk_counts]  # byte values are the first 256 token ids
    freqs = list(chunk_counts.values())
    pair_counts: defaultdict[tuple[int, int], int] = defaultdict(int)
    where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)  # may list chunks that lost the pair
    for index, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int]] = []
    bar = tqdm(total=num_merges, desc="merges", unit="merge", disable=None if progress is None else not progress)
    while len(merges) < num_merges and heap:
        negative, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -negative:  # stale entry: its count dropped since it was pushed
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        if count < 1:
            break
        new_id = 256 + len(merges)
        merges.append(pair)
        bar.update(1)
        left, right = pair
        made = set()  # pairs holding new_id, pushed on the heap once their counts are final
        # Rewrite each chunk holding the pair (non-overlapping, left to right), changing only the counts of the
        # pairs beside each occurrence rather than recounting the chunk: this loop is where training spends
        # its time, so it is written inline, without a call per chunk.
        for index in where.pop(pair):
            word, freq = words[index], freqs[index]
            n = len(word)
            merged: list[int] = []
            start = 0  # word[start:] is not copied into `merged` yet
            try:
                i = word.index(left)
                while i < n - 1:
                    if word[i + 1] != right:
                        i = word.index(left, i + 1)
                        continue
                    merged.extend(word[start:i])
                    if merged:  # (before, left) -> (before, new); before is new_id if an occurrence ends here
                        before = merged[-1]
                        pair_counts[(right if before == new_id else before, left)] -= freq
                        new = (before, new_id)
                        pair_counts[new] += freq
                        where[new].add(index)
                        made.add(new)
                    if i + 2 < n:  # (right, after) -> (new, after), unless `after` starts the next occurrence
                        after = word[i + 2]
                        if not (after == left and i + 3 < n and word[i + 3] == right):
                            pair_counts[(right, after)] -= freq
                            new = (new_id, after)
                            pair_counts[new] += freq
                            where[new].add(index)
                            made.add(new)
                    merged.append(new_id)
                    start = i + 2
                    i = word.index(left, start)
            except ValueError:  # no `left` after i: no more occurrences
                pass
            if start:
                merged.extend(word[start:])
                words[index] = merged
        del pair_counts[pair]
        for new in made:
            heapq.heappush(heap, (-pair_counts[new], new))
    bar.close()
    return merges


def train_bpe(
    paths: list[str | Path],
    vocab_size: int,
    *,
    pattern: str = "gpt4",
    specials: list[str] = (),
    text_field: str = "text",
    progress: bool | None = None,
) -> BPETokenizer:
    """Train a byte-level BPE tokenizer of `vocab_size` tokens (256 bytes + merges + `specials`) on `paths`:
    text files, folders, `.jsonl` files (their `text_field`), `.gz` of either, or a bundled name."""
    specials = list(dict.fromkeys(specials))
    if vocab_size < 256 + len(specials) + 1:
        raise ArgumentError(
            "vocab_size",
            f"must exceed 256 bytes + {len(specials)} special token(s), i.e. be at least {257 + len(specials)}",
            vocab_size,
        )
    if any(not s for s in specials):
        raise ArgumentError("specials", "a special token cannot be the empty string", flag="--special")
    regex_pattern = resolve_pattern(pattern)
    sources = resolve_sources([str(p) for p in paths])
    total = sum(source.path.stat().st_size for source in sources)
    with tqdm(
        total=total, desc="counting", unit="B", unit_scale=True, disable=None if progress is None else not progress
    ) as bar:
        documents = (doc for source in sources for doc in _read_counting(source, text_field, bar.update))
        chunk_counts = count_chunks(documents, regex_pattern, specials, workers=default_workers(total))
    if not chunk_counts:
        raise GptkitError("tokenizer train: the corpus has no text outside special tokens; pass real text")
    wanted = vocab_size - 256 - len(specials)
    merges = learn_merges(chunk_counts, wanted, progress)
    if len(merges) < wanted:
        warnings.warn(
            f"the corpus has only {len(merges)} distinct pairs left to merge, so the vocabulary has "
            f"{256 + len(merges) + len(specials)} tokens instead of {vocab_size}; train on more text",
            stacklevel=2,
        )
    special_ids = {s: 256 + len(merges) + i for i, s in enumerate(specials)}
    # Learning used byte values as the first 256 ids; renumber them in GPT-2's byte order so that the GPT-2
    # file format (and tiktoken's loader for it) holds our ids unchanged.
    byte_ids = gpt2_byte_ids()
    renumbered = [tuple(byte_ids[i] if i < 256 else i for i in pair) for pair in merges]
    return BPETokenizer(renumbered, pattern=regex_pattern, specials=special_ids, byte_ids=byte_ids)


def _read_counting(source: Source, text_field: str, on_bytes) -> Iterable[Iterable[str]]:
    """The documents of `source`, calling `on_bytes(n)` as its raw bytes are read (for the progress bar)."""
    done = 0
    for document in iter_documents(source, text_field):

        def blocks(document=document):
            nonlocal done
            for block in document:
                yield block
                on_bytes(source.num_bytes - done)
                done = source.num_bytes

        yield blocks()
