"""Variable-length batches of whole passages, padded, with a key-padding mask.

A prepared split is one token stream. Here it is cut into passages at blank lines and at `<|endoftext|>`,
the way a text file separates paragraphs, speeches or documents (the same text gives the same passages
with a char or a BPE tokenizer); a passage longer than `block_size` is cut into `block_size` pieces. A
batch is B passages, right-padded with `<|pad|>` to the longest, and a (B, T) mask, True on real tokens. Entry point:
`Passages(dataset, split, block_size, tokenizer, unit)` (unit: paragraph or line); `.batch(indices, pad_id)`.
"""

import numpy as np
import torch

from gptkit.data.dataset import TokenDataset
from gptkit.errors import ArgumentError
from gptkit.paths import shown
from gptkit.tokenizer.tables import token_pieces

DOCUMENT_END = "<|endoftext|>"
MIN_LENGTH = 2  # shorter passages give nothing to predict from
PASSAGE_BREAKS = {"paragraph": 2, "line": 1}  # newlines in a row that end a passage


def newline_table(tokenizer, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per token id: how many newlines end its text (in its trailing whitespace; -1 for the document
    separator), and whether its text is whitespace only."""
    trailing = np.zeros(vocab_size, dtype=np.int64)
    blank = np.zeros(vocab_size, dtype=bool)
    specials = getattr(tokenizer, "specials", {})
    for token_id, text in enumerate(token_pieces(tokenizer, vocab_size)):
        if text is None:
            continue
        stripped = text.rstrip()
        trailing[token_id] = text[len(stripped) :].count(b"\n")
        blank[token_id] = not stripped
    if DOCUMENT_END in specials:
        trailing[specials[DOCUMENT_END]] = -1
    return trailing, blank


def passage_spans(tokens: np.ndarray, table: tuple[np.ndarray, np.ndarray], block_size: int, min_newlines: int = 2):
    """(starts, lengths) of the passages of one token array, each at most `block_size` long.

    Passages end at runs of `min_newlines` newlines or more (2: blank lines, paragraphs; 1: lines). A run
    starts with the trailing newlines of a token (".\n\n" in a BPE vocabulary) or a whitespace-only token,
    and goes on over whitespace-only tokens. Those whitespace-only tokens are dropped; a token with text
    before its newlines ends its passage."""
    trailing, blank = table[0][tokens], table[1][tokens]
    whitespace_newline = blank & (trailing > 0)
    text_newline = ~blank & (trailing > 0)
    member = whitespace_newline | text_newline
    previous_member = np.r_[False, member[:-1]]
    run_start = text_newline | (whitespace_newline & ~previous_member)
    run_id = np.cumsum(run_start) * member  # 0 outside runs
    run_newlines = np.bincount(run_id, weights=np.where(member, trailing, 0))
    in_blank_line = member & (run_newlines[run_id] >= min_newlines)
    dropped = (in_blank_line & blank) | (trailing < 0)
    ends_passage = in_blank_line & ~blank
    kept = ~dropped
    edges = np.flatnonzero(np.diff(np.r_[False, kept, False].astype(np.int8)))
    pieces_starts, pieces_lengths = [], []
    for start, end in zip(edges[0::2], edges[1::2]):
        cuts = start + 1 + np.flatnonzero(ends_passage[start:end])  # after each token that ends a passage
        bounds = np.unique(np.r_[start, cuts, end])
        for begin, stop in zip(bounds[:-1], bounds[1:]):
            cut = np.arange(begin, stop, block_size)
            pieces_starts.append(cut)
            pieces_lengths.append(np.minimum(cut + block_size, stop) - cut)
    if not pieces_starts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    all_starts, all_lengths = np.concatenate(pieces_starts), np.concatenate(pieces_lengths)
    usable = all_lengths >= MIN_LENGTH
    return all_starts[usable], all_lengths[usable]


class Passages:
    """The passages of one split of a prepared dataset, for padded batches."""

    def __init__(self, dataset: TokenDataset, split: str, block_size: int, tokenizer, unit: str = "paragraph"):
        table = newline_table(tokenizer, dataset.vocab_size)
        self.shards, where, lengths = [], [], []
        for number, shard in enumerate(dataset.shards[split]):
            starts, sizes = passage_spans(np.asarray(shard), table, block_size, PASSAGE_BREAKS[unit])
            self.shards.append(shard)
            where.append(np.stack([np.full_like(starts, number), starts], 1))  # (shard, start) per passage
            lengths.append(sizes)
        self.where = np.concatenate(where) if where else np.zeros((0, 2), np.int64)
        self.lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        if len(self.lengths) == 0:
            raise ArgumentError(
                "data",
                f"the {split} split has no passage of {MIN_LENGTH} tokens or more; use more text, or prepare again "
                "with another val_fraction (--val-fraction)",
                shown(dataset.path),
            )

    def __len__(self) -> int:
        return len(self.lengths)

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
