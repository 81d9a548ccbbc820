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


def tiny_hf_model(kind: str, vocab: int, tied: bool):
    """A random transformers GPT-2 or Llama (grouped-query attention, rope_theta 5000) with 2 layers of 32, in
    eval mode; every weight nudged off HF's exact 0/1 inits so that each one matters for parity."""
    import torch
    import transformers

    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4, tie_word_embeddings=tied
        )
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            tie_word_embeddings=tied,
            rope_theta=5000.0,
        )
        model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    return model.eval()
