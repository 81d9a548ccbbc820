"""Training step speed of a preset on this machine, side by side with nanoGPT's recipe in plain PyTorch, as JSON.

Uses the real training step (`gptkit.train.loop.train_step`) on the bundled Tiny Shakespeare, prepared into a
temp folder, and the plain-PyTorch nanoGPT recipe (`experiments/nanogpt_reference.py`, no gptkit code) at the
preset's shape (layers, heads, width, block, batch x grad_accum, dropout) on the same tokens. After `--warmup`
untimed steps of each (with `--compile`, or a preset that compiles: gptkit's compilation, reported as
`warmup_s`), `--repeats` rounds of `--steps` steps alternate between the two (the order flips every round)
and the median round of each is reported with the slowest and fastest, and their ratio. gptkit's step runs
in the dtype the trainer would pick (`train.dtype=auto`: on a CPU a start-up probe, whose verdict is
`dtype_note`); the recipe in float32, as nanoGPT runs on a CPU. MFU is against the matmul peak measured
here in each side's dtype.
The JSON records the machine (`bench/machine.py`): a ratio holds only on the machine that measured it.
Usage: python bench/train_speed.py --preset cpu-baby [--steps 100] [--repeats 6] [--compile] [--no-peer]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine
from step_setup import StepSetup

from gptkit.runtime import measure_peak_flops, synchronize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from nanogpt_reference import ReferenceStep, Shape  # noqa: E402  (a script folder, not a package)


def timed_round(step, steps: int, device) -> float:
    began = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    synchronize(device)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-baby")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps of each first")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=6, help="timed rounds of each; the medians are reported")
    parser.add_argument("--no-peer", action="store_true", help="time gptkit alone")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra settings")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        setup = StepSetup(tmp, args.preset, [f"train.device={args.device}", *args.set], compile_model=args.compile)
        cfg, config, device, dtype, model = setup.cfg, setup.config, setup.device, setup.dtype, setup.model
        m = config.model
        steps = {"gptkit": setup.step}
        if not args.no_peer:
            shape = Shape(m.n_layer, m.n_head, m.n_embd, m.block_size, cfg.batch_size * cfg.grad_accum, m.dropout)
            dataset = next(iter(setup.data.datasets.values()))
            train = torch.from_numpy(np.concatenate([np.asarray(s) for s in dataset.shards["train"]]).astype(np.int64))
            torch.manual_seed(cfg.seed)
            reference = ReferenceStep(m.vocab_size, shape, str(device))
            steps["reference"] = lambda: reference.step(train)
        began = time.perf_counter()
        for _ in range(args.warmup):
            setup.step()
        synchronize(device)
        warmup_s = time.perf_counter() - began
        for _ in range(args.warmup if "reference" in steps else 0):
            steps["reference"]()
        rounds = {name: [] for name in steps}
        for repeat in range(args.repeats):
            for name in list(steps)[:: 1 if repeat % 2 == 0 else -1]:  # alternate, the order flipped each round
                rounds[name].append(timed_round(steps[name], args.steps, device))

    tokens_per_step = cfg.grad_accum * cfg.batch_size * m.block_size
    peaks = {"gptkit": measure_peak_flops(device, dtype), "reference": measure_peak_flops(device, torch.float32)}

    def figures(name: str) -> dict:  # MFU against the peak of the dtype each side computes in (the recipe: fp32)
        seconds = statistics.median(rounds[name])
        tokens_per_s = tokens_per_step * args.steps / seconds
        return {
            "ms_per_step": round(1000 * seconds / args.steps, 2),
            "ms_per_step_min_max": [round(1000 * t / args.steps, 2) for t in (min(rounds[name]), max(rounds[name]))],
            "tokens_per_s": round(tokens_per_s),
            "mfu": round(model.flops_per_token() * tokens_per_s / peaks[name], 4),
        }

    result = {
        "preset": args.preset,
        "dtype": str(dtype).removeprefix("torch."),
        "dtype_note": setup.dtype_note,
        "compile": setup.compiled,
        "params": model.num_params(),
        "tokens_per_step": tokens_per_step,
        "steps": args.steps,
        "repeats": args.repeats,
        "settings": args.set,
        "warmup_s": round(warmup_s, 3),
        "gptkit": figures("gptkit"),
        "machine": machine(device),
    }
    if "reference" in rounds:
        result["reference"] = {
            "recipe": "nanoGPT, plain PyTorch (experiments/nanogpt_reference.py)",
            **figures("reference"),
        }
        result["ratio_tokens_per_s"] = round(result["gptkit"]["tokens_per_s"] / result["reference"]["tokens_per_s"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
