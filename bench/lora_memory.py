"""Full fine-tuning vs LoRA on the `gpt2` shape (124M), as one JSON object: peak RSS, optimizer-state bytes,
seconds per step and the size of the file a run saves.

A base run of the `gpt2` shape (random weights, vocabulary 50,257 rows; the bundled Tiny Shakespeare with a
char tokenizer as data) is fine-tuned by the real command line, `gptkit train --init-from BASE --preset
sft`, in full and with `lora.r=8` (targets qkv,proj, the default), each with and without `train.recompute`
(activation checkpointing), each in its own process so its peak RSS is its own; the four alternate for
`--rounds` rounds and each figure is the median over rounds.
Steps: batch 1 x 1024 tokens, float32, the first step (allocations) left out of the step time. The
optimizer state is read from the checkpoint each run writes. The machine is recorded (`bench/machine.py`).
Usage: python bench/lora_memory.py [--steps 4] [--rounds 2]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from machine import machine
from safetensors import safe_open

from gptkit.checkpoint import WEIGHTS_FILE, save_weights, write_run_config
from gptkit.config import resolve_config
from gptkit.data.prepare import prepare
from gptkit.model import GPT
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.train.metrics import read_metrics

CHILD = """
import resource, sys
from gptkit.cli import main
code = main(sys.argv[1:])
print("peak_rss_bytes", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
sys.exit(code)
"""


def make_base(root: Path) -> tuple[Path, Path]:
    data = root / "data"
    prepare(["shakespeare"], data)
    config = resolve_config(preset="gpt2")
    config.model.vocab_size = 50257  # GPT-2's vocabulary; the char tokenizer uses its first 65 rows
    torch.manual_seed(0)
    base = root / "base"
    base.mkdir()
    write_run_config(base, config)
    load_tokenizer(data).save(base / TOKENIZER_FILE)
    save_weights(GPT(config.model), base / WEIGHTS_FILE)
    return data, base


def fine_tune(root: Path, data: Path, base: Path, mode: str, recompute: bool, steps: int, round_: int) -> dict:
    out = root / f"{mode}-{recompute}-{round_}"
    settings = [
        f"train.recompute={recompute}",
        f"train.max_iters={steps}",
        "train.batch_size=1",
        "train.dtype=float32",
        "train.objective=causal",
        f"train.eval_interval={steps}",
        "train.eval_iters=1",
        "train.log_interval=1",
        "train.warmup_iters=0",
        "train.device=cpu",
        f"lora.r={8 if mode == 'lora' else 0}",
    ]
    command = [sys.executable, "-c", CHILD, "train", "--data", str(data), "--init-from", str(base)]
    command += ["--out", str(out), "--preset", "sft", *[a for s in settings for a in ("--set", s)]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{mode} run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    peak = int(done.stdout.rsplit("peak_rss_bytes", 1)[1].split()[0])
    steps_ms = [r["ms_per_step"] for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "train" and r["step"] > 1]
    return {
        "peak_rss_mib": peak / 2**20,
        "optimizer_state_bytes": optimizer_bytes(out / "checkpoint.safetensors"),
        "s_per_step": statistics.median(steps_ms) / 1e3,
        "saved_file_bytes": (out / WEIGHTS_FILE).stat().st_size,
    }


def optimizer_bytes(checkpoint: Path) -> int:
    """Bytes of the optimizer state (AdamW's moments and steps) a run's checkpoint holds."""
    total = 0
    with safe_open(str(checkpoint), framework="pt") as handle:
        for key in handle.keys():
            if key.startswith("optim."):
                tensor = handle.get_tensor(key)
                total += tensor.numel() * tensor.element_size()
    return total


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, base = make_base(root)
        runs = {(mode, recompute): [] for recompute in (False, True) for mode in ("full", "lora")}
        for round_ in range(args.rounds):
            for mode, recompute in runs:  # alternating, so drifts of the machine's speed hit every setting
                runs[mode, recompute].append(fine_tune(root, data, base, mode, recompute, args.steps, round_))
    report = {
        "benchmark": "lora_memory",
        "shape": "gpt2 (124M), batch 1 x 1024 tokens, float32, AdamW",
        "lora": "r=8 alpha=16 targets=qkv,proj",
        "steps": args.steps,
        "rounds": args.rounds,
        "targets": {"optimizer_state_ratio": ">= 100", "peak_rss_reduction": ">= 0.40", "step_speedup": "> 1"},
    }
    for recompute in (False, True):
        full, lora = (median_of(runs[mode, recompute]) for mode in ("full", "lora"))
        report["recompute" if recompute else "default"] = {
            "full": full,
            "lora_r8": lora,
            "optimizer_state_ratio": full["optimizer_state_bytes"] / lora["optimizer_state_bytes"],
            "peak_rss_reduction": 1 - lora["peak_rss_mib"] / full["peak_rss_mib"],
            "step_speedup": full["s_per_step"] / lora["s_per_step"],
        }
    report["machine"] = machine(torch.device("cpu"))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
