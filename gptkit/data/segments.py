"""Variable-length batches of whole passages, padded, with a key-padding mask.

A prepared split is one token stream. Here it is cut into passages at blank lines (a run of newline tokens
holding two or more newlines) and at `<|endoftext|>`, the way a text file separates paragraphs, speeches or
documents; a passage longer than `block_size` is cut into `block_size` pieces. A batch is B passages,
right-padded with `<|pad|>` to the longest, and a (B, T) mask that is True on real tokens. Entry point:
`Passages(dataset, split, block_size, tokenizer)`; `.batch(indices, pad_id)`.
"""

import numpy as np
import torch

from gptkit.data.dataset import TokenDataset
from gptkit.errors import GptkitError

DOCUMENT_END = "<|endoftext|>"
MIN_LENGTH = 2  # shorter passages give nothing to predict from


def newline_counts(tokenizer, vocab_size: int) -> np.ndarray:
    """For every token id, how many newlines its text holds (-1 for the document separator)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for token_id in range(vocab_size):
        counts[token_id] = tokenizer.decode_bytes([token_id]).count(b"\n")
    specials = getattr(tokenizer, "specials", {})
    if DOCUMENT_END in specials:
        counts[specials[DOCUMENT_END]] = -1
    return counts


def passage_spans(tokens: np.ndarray, counts: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of the passages of one token array, each at most `block_size` long."""
    per_token = counts[tokens]
    newline = per_token > 0
    # Runs of consecutive newline tokens; a run with two newlines or more is a blank line: a break.
    run_start = newline & ~np.r_[False, newline[:-1]]
    run_id = np.cumsum(run_start) * newline  # 0 outside runs
    run_newlines = np.bincount(run_id, weights=np.where(newline, per_token, 0))
    is_break = (newline & (run_newlines[run_id] >= 2)) | (per_token < 0)
    # Passages are the stretches between breaks.
    kept = ~is_break
    edges = np.flatnonzero(np.diff(np.r_[False, kept, False].astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    pieces_starts, pieces_lengths = [], []
    for start, end in zip(starts, ends):
        cut = np.arange(start, end, block_size)
        pieces_starts.append(cut)
        pieces_lengths.append(np.minimum(cut + block_size, end) - cut)
    if not pieces_starts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    all_starts, all_lengths = np.concatenate(pieces_starts), np.concatenate(pieces_lengths)
    usable = all_lengths >= MIN_LENGTH
    return all_starts[usable], all_lengths[usable]


class Passages:
    """The passages of one split of a prepared dataset, for padded batches."""

    def __init__(self, dataset: TokenDataset, split: str, block_size: int, tokenizer):
        counts = newline_counts(tokenizer, dataset.vocab_size)
        self.shards, self.starts, self.lengths = [], [], []
        for number, shard in enumerate(dataset.shards[split]):
            starts, lengths = passage_spans(np.asarray(shard), counts, block_size)
            self.shards.append(shard)
            self.starts.append(np.stack([np.full_like(starts, number), starts], 1))
            self.lengths.append(lengths)
        self.where = np.concatenate(self.starts) if self.starts else np.zeros((0, 2), np.int64)
        self.lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
        if len(self.lengths) == 0:
            raise GptkitError(
                f"--data {dataset.path}: the {split} split has no passage of {MIN_LENGTH} tokens or more; "
                "use more text or another --val-fraction"
            )

    def __len__(self) -> int:
        return len(self.lengths)

    def num_tokens(self) -> int:
        return int(self.lengths.sum())

    def batch(self, indices, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) int64 ids of the passages `indices`, right-padded with `pad_id`, and (B, T) bool: real tokens."""
        lengths = self.lengths[indices]
        width = int(lengths.max())
        ids = np.full((len(indices), width), pad_id, dtype=np.int64)
        for row, index in enumerate(indices):
            shard, start = self.where[index]
            ids[row, : lengths[row]] = self.shards[shard][start : start + lengths[row]]
        real = np.arange(width)[None, :] < lengths[:, None]
        return torch.from_numpy(ids), torch.from_numpy(real)
