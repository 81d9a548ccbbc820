"""The CPU speedrun: the val loss a preset reaches on Tiny Shakespeare (char, the bundled 90/10 split) in a
fixed wall-clock budget, over several seeds, as JSON (per seed, mean, spread).

Each seed is one `gptkit train` run with `train.time_budget_s` = minutes * 60 and `train.seed` = the seed;
the figure is the run's final val loss (its last evaluation, `train.eval_iters` batches, which runs after
the budget: `wall_s` includes it and the start-up). Run it on an otherwise idle machine: the budget is
wall-clock time.
Usage: python bench/speedrun.py [--preset cpu-speedrun] [--minutes 10] [--seeds 3] [--set key=value ...]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from gptkit.config import DataSource, resolve_config
from gptkit.data.prepare import prepare
from gptkit.train.loop import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-speedrun")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra settings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare(["shakespeare"], data, tokenizer="char")
        results = []
        for seed in range(1, args.seeds + 1):
            overrides = [  # the speedrun is defined on the CPU; --set train.device=... to measure another
                "train.device=cpu",
                f"train.time_budget_s={args.minutes * 60}",
                f"train.seed={seed}",
                *args.set,
            ]
            config = resolve_config(preset=args.preset, overrides=overrides)
            config.data = [DataSource(path=str(data))]
            began = time.perf_counter()
            result = train(config, Path(tmp) / f"seed{seed}", echo=lambda line: None, progress=False)
            results.append(
                {
                    "seed": seed,
                    "val_loss": round(result.val_loss, 4),
                    "steps": result.step,
                    "wall_s": round(time.perf_counter() - began, 1),
                }
            )
    losses = [r["val_loss"] for r in results]
    summary = {
        "preset": args.preset,
        "minutes": args.minutes,
        "settings": args.set,
        "runs": results,
        "mean_val_loss": round(statistics.mean(losses), 4),
        "spread": round(max(losses) - min(losses), 4),
        "stdev": round(statistics.stdev(losses), 4) if len(losses) > 1 else 0.0,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
