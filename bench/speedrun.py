"""The CPU speedrun: the val loss a preset reaches on Tiny Shakespeare (char, the bundled 90/10 split) in a
fixed budget, wall-clock minutes or optimizer steps, over several seeds, as JSON (per seed, mean, spread).

Each seed is one `gptkit train` run with `train.time_budget_s` = minutes * 60 (or `train.max_iters` = iters)
and `train.seed` = the seed. Two figures per run: `val_loss`, the run's own final estimate
(`train.eval_iters` random batches, after the budget: `wall_s` includes it and the start-up), and
`full_val_loss`, every token of the val split scored once in block-sized windows (`gptkit eval`), which has
no sampling noise. A model with a longer block also sees more context per scored token, so
`full_val_loss_64` scores the same split in windows of 64 tokens, or of the block if it is shorter (64 is
the block of nanoGPT's CPU recipe and of `cpu-baby`; `gptkit eval --context 64`): like for like across
presets. Beside each seed, nanoGPT's CPU recipe in plain PyTorch (`experiments/nanogpt_reference.py`, float32,
as nanoGPT runs on a CPU) trains for the same budget (minutes of training, its cosine stretched over them; or
the same steps) with the same seed and is scored the same way (windows of 64): `peer` in the JSON, and
`margin`, the recipe's mean minus the preset's (`full_val_loss_64`). The machine is recorded
(`bench/machine.py`). Run it on an otherwise idle machine: the minutes budget is wall-clock time.
Usage: python bench/speedrun.py [--preset cpu-speedrun] [--minutes 10 | --iters N] [--seeds 3] [--no-peer]
       [--set k=v ...]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import machine

from gptkit.config import DataSource, resolve_config
from gptkit.data.prepare import prepare
from gptkit.evaluate import evaluate_dataset
from gptkit.run import load_run
from gptkit.train.loop import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from nanogpt_reference import shakespeare_splits, train_and_score, train_for_seconds  # noqa: E402


def summarise(values: list[float]) -> dict:
    return {
        "mean": round(statistics.mean(values), 4),
        "spread": round(max(values) - min(values), 4),
        "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-speedrun")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget per run (default 10)")
    budget.add_argument("--iters", type=int, default=0, help="a budget in optimizer steps instead of minutes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra settings")
    parser.add_argument("--no-peer", action="store_true", help="skip nanoGPT's recipe")
    args = parser.parse_args()
    peer_runs = []
    if args.iters:
        limit = [f"train.max_iters={args.iters}", "train.time_budget_s=0"]
    else:
        limit = [f"train.time_budget_s={args.minutes * 60}"]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare(["shakespeare"], data, tokenizer="char")
        results = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            overrides = ["train.device=cpu", *limit, f"train.seed={seed}", *args.set]  # the speedrun is on the CPU
            config = resolve_config(preset=args.preset, overrides=overrides)
            config.data = [DataSource(path=str(data))]
            began = time.perf_counter()
            result = train(config, Path(tmp) / f"seed{seed}", echo=lambda line: None, progress=False)
            wall_s = time.perf_counter() - began
            run = load_run(Path(tmp) / f"seed{seed}", device="cpu")
            full = evaluate_dataset(run, data)
            # at block <= 64 the block-sized windows already are the short ones: no second pass over val
            longer_block = run.model.config.block_size > 64
            full_64 = evaluate_dataset(run, data, context=64) if longer_block else full
            results.append(
                {
                    "seed": seed,
                    "val_loss": round(result.val_loss, 4),
                    "full_val_loss": round(full.loss, 4),
                    "full_val_loss_64": round(full_64.loss, 4),
                    "steps": result.step,
                    "wall_s": round(wall_s, 1),
                }
            )
            if not args.no_peer:
                peer_runs.append(peer_run(seed, args.minutes * 60 if not args.iters else 0, args.iters))
    summary = {
        "preset": args.preset,
        "budget": f"{args.iters} iters" if args.iters else f"{args.minutes} minutes",
        "settings": args.set,
        "runs": results,
        "val_loss": summarise([r["val_loss"] for r in results]),
        "full_val_loss": summarise([r["full_val_loss"] for r in results]),
        "full_val_loss_64": summarise([r["full_val_loss_64"] for r in results]),
    }
    summary["machine"] = machine(torch.device("cpu"))
    if peer_runs:
        summary["peer"] = {"recipe": "nanoGPT CPU recipe, plain PyTorch, float32", "runs": peer_runs}
        summary["peer"]["full_val_loss_64"] = summarise([r["full_val_loss_64"] for r in peer_runs])
        ours = summary["full_val_loss_64"]["mean"]
        summary["margin"] = round(summary["peer"]["full_val_loss_64"]["mean"] - ours, 4)
    print(json.dumps(summary))


def peer_run(seed: int, seconds: float, iters: int) -> dict:
    """nanoGPT's recipe for the same budget and seed, scored in windows of 64 over the same val split."""
    train_ids, val_ids, vocab = shakespeare_splits()
    began = time.perf_counter()
    if iters:
        loss, steps = train_and_score(train_ids, val_ids, vocab, seed, iters), iters
    else:
        loss, steps = train_for_seconds(train_ids, val_ids, vocab, seed, seconds)
    return {
        "seed": seed,
        "full_val_loss_64": round(loss, 4),
        "steps": steps,
        "wall_s": round(time.perf_counter() - began, 1),
    }


if __name__ == "__main__":
    main()
