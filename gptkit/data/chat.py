"""Chat data: conversation files -> token ids with a loss mask beside them, and packed training rows.

`prepare_chat` renders every conversation with the chat template (`gptkit.chat.template`) and writes, per
split, the ids (`train-00000.bin`, as `prepare` does, so the folder is also an ordinary dataset), the loss
mask (`train.mask.bin`, one uint8 per token) and where each conversation starts (`train.conversations.bin`,
int64 offsets, one more than there are conversations). Conversations are held in memory while rendered:
chat corpora are small next to pretraining text. Val conversations are a seeded random share of them.
`ChatRows` packs whole conversations into rows of `block_size + 1` tokens for training (a conversation
longer than a row is cut to the row, and counted); padding and everything outside assistant replies gets
target -1, which the loss ignores. Entry points: `prepare_chat`, `ChatRows`, `is_chat_data`.
"""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from gptkit.atomic import atomic_write_text
from gptkit.chat.conversations import read_conversations
from gptkit.chat.template import IM_END, chat_tokenizer, render
from gptkit.data.dataset import TokenDataset
from gptkit.data.prepare import FORMAT_VERSION, META_FILE, move_into
from gptkit.data.shards import ShardWriter, token_dtype
from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import input_problem, read_json, shown
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.tokenizer.char import CharTokenizer

SPLITS = ("train", "val")


def conversation_files(paths) -> list[Path]:
    """The .jsonl/.json files among `paths` (folders searched recursively, hidden files skipped)."""
    files = []
    for arg in paths:
        path = Path(arg)
        if problem := input_problem(path):
            raise ArgumentError("paths", f"{problem}; pass conversation files (.jsonl, .json) or folders", shown(path))
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in (".jsonl", ".json") and not p.name.startswith(".")
            )
            if not found:
                raise ArgumentError("paths", "a folder with no .jsonl or .json files", shown(path))
            files += found
        else:
            files.append(path)
    return files


def _base_tokenizer(tokenizer, conversations: list) -> object:
    if tokenizer != "char":
        return load_tokenizer(tokenizer)
    text = "".join(m.content for _, _, messages in conversations for m in messages)
    return CharTokenizer.from_text(text + "systemuserassistant\n")  # the template's own words, always


def prepare_chat(
    paths,
    out_dir,
    *,
    tokenizer="char",
    val_fraction: float = 0.1,
    skip_invalid: bool = False,
    seed: int = 0,
    block_size: int | None = None,
) -> dict:
    """Render the conversations in `paths` into a chat dataset in `out_dir`; returns its manifest. With the
    `block_size` it will train at, the manifest counts the conversations too long for a row (they will be cut)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ArgumentError("val_fraction", "must be in [0, 1), e.g. 0.1", val_fraction)
    counts: dict = {"skipped": 0}
    files = conversation_files(paths)
    conversations = [
        (file, line, messages)
        for file in files
        for line, messages in read_conversations(file, skip_invalid=skip_invalid, counts=counts)
    ]
    tok = chat_tokenizer(_base_tokenizer(tokenizer, conversations))
    rendered = []
    for file, line, messages in conversations:
        try:
            rendered.append(render(messages, tok))
        except GptkitError as err:  # e.g. a character the vocabulary lacks
            if not skip_invalid:
                raise GptkitError(f"{shown(file)}:{line}: {err}; fix it or pass --skip-invalid") from None
            counts["skipped"] += 1
    if not rendered:
        raise ArgumentError("paths", f"no usable conversation in {len(files)} file(s) ({counts['skipped']} skipped)")
    order = np.random.default_rng(seed).permutation(len(rendered))
    val_count = min(len(rendered) - 1, round(len(rendered) * val_fraction)) if val_fraction else 0
    chosen = {"val": sorted(order[:val_count]), "train": sorted(order[val_count:])}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".preparing-", dir=out))
    try:
        splits = {split: _write_split(staging, split, [rendered[i] for i in chosen[split]], tok) for split in SPLITS}
        meta = _manifest(tok, splits, files, counts["skipped"], val_fraction, rendered)
        if block_size is not None:
            too_long = sum(len(ids) > block_size + 1 for ids, _ in rendered)
            meta["chat"]["too_long"] = {"block_size": block_size, "conversations": too_long}
        tok.save(staging / TOKENIZER_FILE)
        atomic_write_text(staging / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False))
        move_into(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return meta


def _write_split(folder: Path, split: str, rendered: list, tok) -> dict:
    writer = ShardWriter(folder, split, token_dtype(tok.vocab_size), shard_tokens=2**62)  # one shard per split
    try:
        for ids, _ in rendered:
            writer.write(np.asarray(ids))
        shards = writer.close()
    finally:
        writer.abort()
    mask = np.concatenate([np.asarray(m, dtype=np.uint8) for _, m in rendered]) if rendered else np.zeros(0, np.uint8)
    starts = np.cumsum([0] + [len(ids) for ids, _ in rendered], dtype=np.int64)
    (folder / f"{split}.mask.bin").write_bytes(mask.tobytes())
    (folder / f"{split}.conversations.bin").write_bytes(starts.tobytes())
    return {"shards": shards, "conversations": len(rendered), "supervised_tokens": int(mask.sum())}


def _manifest(tok, splits: dict, files: list[Path], skipped: int, val_fraction: float, rendered: list) -> dict:
    tokens = {split: sum(s["tokens"] for s in splits[split]["shards"]) for split in SPLITS}
    return {
        "format_version": FORMAT_VERSION,
        "kind": "chat",
        "tokenizer": TOKENIZER_FILE,
        "vocab_size": tok.vocab_size,
        "dtype": token_dtype(tok.vocab_size).name,
        "train_tokens": tokens["train"],
        "val_tokens": tokens["val"],
        "val_fraction": val_fraction,
        "splits": {split: splits[split]["shards"] for split in SPLITS},
        "chat": {
            "template": "chatml",
            "conversations": {split: splits[split]["conversations"] for split in SPLITS},
            "supervised_tokens": {split: splits[split]["supervised_tokens"] for split in SPLITS},
            "skipped": skipped,
            "longest": max((len(ids) for ids, _ in rendered), default=0),
        },
        "sources": [shown(f) for f in files],
    }


def is_chat_data(path) -> bool:
    """Whether `path` is a dataset written by `prepare --chat`."""
    meta = Path(path) / META_FILE
    return meta.is_file() and read_json(meta).get("kind") == "chat"


class ChatRows:
    """Training rows of whole conversations, with the same `draw_starts` / `read_windows` / `get_batch` as a
    `TokenDataset`, so a `Mixture` can mix chat data with plain text (whose every token is learned)."""

    def __init__(self, dataset: TokenDataset, block_size: int):
        self.dataset, self.path, self.name = dataset, dataset.path, dataset.name
        self.vocab_size = dataset.vocab_size
        pad = load_tokenizer(dataset.path).specials[IM_END]  # any id: padding is never a target
        self.rows, self.truncated, self.empty = {}, {}, {}
        for split in SPLITS:
            if dataset.num_tokens(split):
                self.rows[split], self.truncated[split] = self._pack(split, block_size + 1, pad)

    def _pack(self, split: str, width: int, pad: int) -> tuple[tuple[np.ndarray, np.ndarray], int]:
        """(ids, mask) arrays of shape (rows, width), filled greedily with whole conversations in order."""
        ids = np.concatenate([np.asarray(s) for s in self.dataset.shards[split]]).astype(np.int64)
        mask = np.fromfile(self.path / f"{split}.mask.bin", dtype=np.uint8)
        starts = np.fromfile(self.path / f"{split}.conversations.bin", dtype=np.int64)
        if len(mask) != len(ids) or starts[-1] != len(ids):
            raise ArgumentError("data", "its mask or conversation files do not match its tokens; prepare it again")
        rows, row, used, truncated = [], [], 0, 0
        for start, end in zip(starts[:-1], starts[1:]):
            length = min(end - start, width)
            truncated += end - start > width
            if used + length > width:
                rows.append(row)
                row, used = [], 0
            row.append((start, start + length))
            used += length
        if row:
            rows.append(row)
        packed_ids = np.full((len(rows), width), pad, dtype=np.int64)
        packed_mask = np.zeros((len(rows), width), dtype=bool)
        for r, spans in enumerate(rows):
            at = 0
            for start, end in spans:
                packed_ids[r, at : at + end - start] = ids[start:end]
                packed_mask[r, at : at + end - start] = mask[start:end]
                at += end - start
        learns = packed_mask[:, 1:].any(axis=1)  # a row cut before any reply teaches nothing (and its loss is 0/0)
        self.empty[split] = int((~learns).sum())
        packed_ids, packed_mask = packed_ids[learns], packed_mask[learns]
        return (packed_ids, packed_mask), truncated

    def has_windows(self, split: str, block_size: int) -> bool:
        return split in self.rows and len(self.rows[split][0]) > 0

    def check_block_size(self, split: str, block_size: int) -> None:
        if not self.has_windows(split, block_size):
            raise ArgumentError("data", f"no {split} conversations", shown(self.path))

    def num_rows(self, split: str) -> int:
        return len(self.rows[split][0]) if split in self.rows else 0

    def draw_starts(self, split: str, batch_size: int, block_size: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(self.num_rows(split), (batch_size,), generator=generator)

    def read_windows(self, split, rows: torch.Tensor, block_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.rows[split]
        chosen = rows.numpy()
        x = torch.from_numpy(ids[chosen, :-1])
        y = torch.from_numpy(np.where(mask[chosen, 1:], ids[chosen, 1:], -1))  # learned tokens only
        return x.to(device), y.to(device)

    def get_batch(self, split, batch_size, block_size, generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        return self.read_windows(split, self.draw_starts(split, batch_size, block_size, generator), block_size, device)

    def all_rows(self, split: str, batch_size: int, device):
        """Every row of `split` once, in batches: for evaluation."""
        for first in range(0, self.num_rows(split), batch_size):
            rows = torch.arange(first, min(first + batch_size, self.num_rows(split)))
            yield self.read_windows(split, rows, 0, device)

    def describe(self) -> str:
        rows = ", ".join(f"{self.num_rows(s):,} {s}" for s in SPLITS if s in self.rows)
        cut, empty = sum(self.truncated.values()), sum(self.empty.values())
        return (
            f"chat {self.name}: {rows} rows of whole conversations"
            + (f"; {cut} conversation(s) longer than a row were cut to it" if cut else "")
            + (f", {empty} of them before any reply, so left out" if empty else "")
        )
