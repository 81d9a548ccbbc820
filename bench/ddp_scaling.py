"""Training throughput with 1, 2, ... processes under a real `torchrun`, as JSON.

Each run is `torchrun --standalone --nproc_per_node=N -m gptkit train` on the bundled Tiny Shakespeare
(char tokenizer) for a preset, with the same micro-batch per process, so N processes take N times the tokens
per step (weak scaling: what adding devices buys). tokens/s is the median over the run's logged windows after
the first (which holds start-up). On a CPU machine every process shares the same cores: torchrun gives each
one OMP_NUM_THREADS=1 when N > 1, while a lone process uses all cores.
Usage: python bench/ddp_scaling.py [--preset cpu-baby] [--steps 200] [--procs 1 2]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from gptkit.train.metrics import read_metrics


def run_once(data: Path, out: Path, preset: str, steps: int, procs: int) -> dict:
    torchrun = Path(sys.executable).parent / "torchrun"
    settings = [f"train.max_iters={steps}", f"train.eval_interval={steps}", "train.eval_iters=1"]
    settings += [f"train.log_interval={max(steps // 10, 1)}", f"train.warmup_iters={min(10, steps - 1)}"]
    command = [str(torchrun), "--standalone", f"--nproc_per_node={procs}", "-m", "gptkit", "train"]
    command += ["--data", str(data), "--out", str(out), "--preset", preset]
    command += [arg for s in settings for arg in ("--set", s)]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    if done.returncode != 0:
        sys.exit(f"torchrun with {procs} process(es) failed:\n{done.stderr[-3000:]}")
    records = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "train"]
    windows = records[2:] or records  # step 1 and the first window include start-up
    return {
        "processes": procs,
        "threads_per_process": int(os.environ.get("OMP_NUM_THREADS", 0)) or (os.cpu_count() if procs == 1 else 1),
        "tokens_per_step": records[-1]["tokens"] // records[-1]["step"],
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in windows)),
        "ms_per_step": round(statistics.median(r["ms_per_step"] for r in windows), 2),
        "mfu": round(statistics.median(r["mfu"] for r in windows), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-baby")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        subprocess.run(
            [sys.executable, "-m", "gptkit", "prepare", "shakespeare", "--tokenizer", "char", "--out", str(data)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        runs = [run_once(data, Path(tmp) / f"run{n}", args.preset, args.steps, n) for n in args.procs]
    base = runs[0]["tokens_per_s"]
    for run in runs:
        run["speedup"] = round(run["tokens_per_s"] / base, 2)
    print(json.dumps({"preset": args.preset, "steps": args.steps, "cpu_count": os.cpu_count(), "runs": runs}))


if __name__ == "__main__":
    main()
