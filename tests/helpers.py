"""Helpers shared by tests: a tiny model/training configuration that runs in seconds on a CPU."""

import shutil
import subprocess
from pathlib import Path

from gptkit.config import DataSource, RunConfig, resolve_config

TINY = [
    "model.n_layer=2",
    "model.n_head=2",
    "model.n_embd=32",
    "model.block_size=32",
    "train.batch_size=8",
    "train.max_iters=30",
    "train.warmup_iters=5",
    "train.eval_interval=10",
    "train.eval_iters=2",
    "train.log_interval=1",
    "train.peak_flops=1e11",
    "train.device=cpu",
]


def tiny_config(data_dir: Path, *overrides: str) -> RunConfig:
    config = resolve_config(overrides=[*TINY, *overrides])
    config.data = [DataSource(path=str(data_dir))]
    return config


def read_split(data_dir: Path, split: str):
    """All token ids of one split of a prepared folder, in order (shards concatenated)."""
    import json

    import numpy as np

    meta = json.loads((Path(data_dir) / "meta.json").read_text())
    shards = [np.fromfile(Path(data_dir) / s["file"], dtype=meta["dtype"]) for s in meta["splits"][split]]
    return np.concatenate(shards) if shards else np.zeros(0, dtype=meta["dtype"])


def usable_chromium() -> str | None:
    """A Chromium that runs (Ubuntu's `chromium` can be a stub that only points to a snap)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        return (
            path
            if path and subprocess.run([path, "--version"], capture_output=True, timeout=30).returncode == 0
            else None
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


# Flags for a closed network and a root user (see the machine notes): no sandbox, no background fetches.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def typed(lines: list[str]):
    """A `read` for the chat console that types `lines` one by one, then Ctrl-D (EOFError)."""
    pending = iter(lines)

    def read(prompt: str) -> str:
        try:
            return next(pending)
        except StopIteration:
            raise EOFError from None

    return read
