"""Random training windows from prepared token files, memory-mapped (never loaded whole).

`TokenDataset(path)` opens a folder written by `gptkit prepare`; `get_batch(split, ...)` draws `batch_size`
windows of `block_size + 1` tokens at offsets from a caller-owned `torch.Generator`, so the batch stream is
deterministic per seed and resumable by saving that generator's state. Targets are inputs shifted by one.
"""

import json
from pathlib import Path

import numpy as np
import torch

from gptkit.errors import GptkitError

SPLITS = ("train", "val")


class TokenDataset:
    """A prepared dataset folder: `train.bin`, `val.bin`, `meta.json`, `tokenizer.json`."""

    def __init__(self, path):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise GptkitError(
                f"--data {self.path}: not a prepared dataset (no meta.json); run "
                f"`gptkit prepare YOUR_TEXT --out {self.path}` first"
            )
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            dtype = np.dtype(self.meta["dtype"])
            counts = {split: int(self.meta[f"{split}_tokens"]) for split in SPLITS}
            int(self.meta["vocab_size"])
        except (ValueError, KeyError, TypeError) as err:
            raise GptkitError(
                f"{meta_path}: damaged ({type(err).__name__}: {err}); run `gptkit prepare` again"
            ) from None
        self.splits = {}
        for split in SPLITS:
            file = self.path / f"{split}.bin"
            if not file.is_file():
                raise GptkitError(f"--data {self.path}: {file.name} is missing; run `gptkit prepare` again")
            count = file.stat().st_size // dtype.itemsize
            if count != counts[split]:
                raise GptkitError(
                    f"--data {self.path}: {file.name} has {count} tokens but meta.json says "
                    f"{counts[split]}; run `gptkit prepare` again"
                )
            self.splits[split] = np.memmap(file, dtype=dtype, mode="r") if count else np.zeros(0, dtype)

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    def num_tokens(self, split: str) -> int:
        return len(self.splits[split])

    def check_block_size(self, split: str, block_size: int) -> None:
        """Refuse a split too short to hold one window, naming the setting to change."""
        if self.num_tokens(split) <= block_size:
            raise GptkitError(
                f"--data {self.path}: the {split} split has {self.num_tokens(split)} tokens, not more than "
                f"`model.block_size`={block_size}; use more text, a smaller block_size, or another --val-fraction"
            )

    def get_batch(
        self, split: str, batch_size: int, block_size: int, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw inputs and targets, both (B, T) int64 on `device`; `generator` decides the offsets."""
        data = self.splits[split]
        starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        rows = starts[:, None].numpy() + np.arange(block_size + 1)  # (B, T+1) indices into the file
        window = torch.from_numpy(data[rows].astype(np.int64))  # one gather, one copy
        x, y = window[:, :-1], window[:, 1:]
        if device.type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x.to(device), y.to(device)
