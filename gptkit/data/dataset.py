"""Random training windows from prepared token shards, memory-mapped (never loaded whole).

`TokenDataset(path)` opens a folder written by `gptkit prepare` (its shards, or the single `train.bin` /
`val.bin` of format 1); `get_batch(split, ...)` draws `batch_size` windows of `block_size + 1` tokens at
offsets from a caller-owned `torch.Generator`, uniformly over all windows of all shards, so the batch stream
is deterministic per seed and resumable by saving that generator's state. Targets are inputs shifted by one.
`draw_starts` and `read_windows` are its two halves, for callers that draw batches they do not read (ranks).
`windows(split, block_size)` walks a split in order, for evaluation. Errors name the dataset as the argument
`data` (`--data`); `open_dataset(path, argument)` opens one under another argument's name.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import folder_problem, read_json, shown

SPLITS = ("train", "val")


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


class TokenDataset:
    """A prepared dataset folder: token shards per split, `meta.json`, `tokenizer.json`."""

    def __init__(self, path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.name
        meta_path = self.path / "meta.json"
        if not self.path.is_dir():
            problem = f"{folder_problem(self.path)}; pass a folder from `gptkit prepare`"
            raise ArgumentError("data", problem, shown(self.path))
        if not meta_path.is_file():
            raise ArgumentError(
                "data",
                f"not a prepared dataset (no meta.json); run `gptkit prepare YOUR_TEXT --out {shown(self.path)}` first",
                shown(self.path),
            )
        self.meta = read_json(meta_path, what="run `gptkit prepare` again")
        try:
            dtype = np.dtype(self.meta["dtype"])
            int(self.meta["vocab_size"])
            listed = self.meta.get("splits") or {
                split: [{"file": f"{split}.bin", "tokens": int(self.meta[f"{split}_tokens"])}] for split in SPLITS
            }
            listed = {split: [(s["file"], int(s["tokens"])) for s in listed[split]] for split in SPLITS}
        except (ValueError, KeyError, TypeError) as err:
            raise GptkitError(
                f"{meta_path}: damaged ({type(err).__name__}: {err}); run `gptkit prepare` again"
            ) from None
        self.shards: dict[str, list[np.ndarray]] = {}
        for split in SPLITS:
            self.shards[split] = []
            for file_name, tokens in listed[split]:
                file = self.path / file_name
                if not file.is_file():
                    problem = f"{file_name} is missing; run `gptkit prepare` again"
                    raise ArgumentError("data", problem, shown(self.path))
                count = file.stat().st_size // dtype.itemsize
                if count != tokens:
                    raise ArgumentError(
                        "data",
                        f"{file_name} has {count} tokens but meta.json says {tokens}; the shard is incomplete or "
                        "damaged; run `gptkit prepare` again",
                        shown(self.path),
                    )
                if count:
                    self.shards[split].append(np.memmap(file, dtype=dtype, mode="r"))

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    def num_tokens(self, split: str) -> int:
        return sum(len(shard) for shard in self.shards[split])

    def has_windows(self, split: str, block_size: int) -> bool:
        return any(len(shard) > block_size for shard in self.shards[split])

    def check_block_size(self, split: str, block_size: int) -> None:
        """Refuse a split too short to hold one window, naming the setting to change."""
        if not self.has_windows(split, block_size):
            raise ArgumentError(
                "data",
                f"the {split} split has no shard longer than `model.block_size`={block_size} "
                f"({self.num_tokens(split)} tokens); use more text, a smaller block_size, or prepare again with "
                "another val_fraction (--val-fraction)",
                shown(self.path),
            )

    def draw_starts(self, split: str, batch_size: int, block_size: int, generator: torch.Generator) -> torch.Tensor:
        """`batch_size` window starts, uniform over all windows of all shards; `generator` decides them."""
        counts = [len(s) - block_size for s in self.shards[split] if len(s) > block_size]
        return torch.randint(sum(counts), (batch_size,), generator=generator)

    def read_windows(
        self, split: str, starts: torch.Tensor, block_size: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets, both (B, T) int64 on `device`, for starts from `draw_starts`."""
        shards = [s for s in self.shards[split] if len(s) > block_size]
        if len(shards) == 1:
            rows = starts[:, None].numpy() + np.arange(block_size + 1)  # (B, T+1) indices into the shard
            window = torch.from_numpy(shards[0][rows].astype(np.int64))  # one gather, one copy
        else:
            counts = np.array([len(s) - block_size for s in shards])
            starts = starts.numpy()
            which = np.searchsorted(np.cumsum(counts), starts, side="right")  # the shard of each window
            offsets = starts - np.concatenate([[0], np.cumsum(counts)[:-1]])[which]
            window = torch.from_numpy(
                np.stack([shards[w][o : o + block_size + 1] for w, o in zip(which, offsets)]).astype(np.int64)
            )
        return _to_device(window[:, :-1], window[:, 1:], device)

    def get_batch(
        self, split: str, batch_size: int, block_size: int, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw inputs and targets, both (B, T) int64 on `device`; `generator` decides the offsets."""
        starts = self.draw_starts(split, batch_size, block_size, generator)
        return self.read_windows(split, starts, block_size, device)

    def windows(self, split: str, block_size: int, max_tokens: int | None = None) -> Iterator[np.ndarray]:
        """Consecutive non-overlapping windows of `block_size + 1` tokens (the last one may be shorter)."""
        seen = 0
        for shard in self.shards[split]:
            for start in range(0, len(shard) - 1, block_size):
                if max_tokens is not None and seen >= max_tokens:
                    return
                window = np.asarray(shard[start : start + block_size + 1], dtype=np.int64)
                seen += len(window) - 1
                yield window


def open_dataset(path, argument: str = "data", *, flag: str | None = None) -> TokenDataset:
    """`TokenDataset(path)`, its errors naming the caller's `argument` (and `flag` on the command line)
    rather than `data`."""
    try:
        return TokenDataset(path)
    except ArgumentError as err:
        raise ArgumentError(argument, err.problem, err.value, flag=flag) from None
