"""Training step speed of a preset on this machine, as JSON: ms/step, tokens/s and MFU.

Uses the real training step (`gptkit.train.loop.train_step`) on the bundled Tiny Shakespeare, prepared into a
temp folder. After `--warmup` untimed steps (with `--compile`: the compilation, reported as `warmup_s`),
`--repeats` rounds of `--steps` steps are timed and the median round is reported, with the slowest and
fastest. MFU is against a peak measured here with a matmul probe (`gptkit.runtime.measure_peak_flops`).
Usage: python bench/train_speed.py --preset cpu-baby [--steps 100] [--repeats 5] [--compile] [--set k=v ...]
"""

import argparse
import json
import statistics
import tempfile
import time

import torch
from step_setup import StepSetup

from gptkit.runtime import measure_peak_flops, synchronize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-baby")
    parser.add_argument("--steps", type=int, default=100, help="timed steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra settings")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        setup = StepSetup(tmp, args.preset, [f"train.device={args.device}", *args.set], compile_model=args.compile)
        cfg, config, device, dtype, model = setup.cfg, setup.config, setup.device, setup.dtype, setup.model
        began = time.perf_counter()
        for _ in range(args.warmup):
            setup.step()
        synchronize(device)
        warmup_s = time.perf_counter() - began
        rounds = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            for _ in range(args.steps):
                loss = setup.step()
            loss.item()
            synchronize(device)
            rounds.append(time.perf_counter() - began)
        seconds = statistics.median(rounds)

    peak = measure_peak_flops(device, dtype)
    tokens_per_step = cfg.grad_accum * cfg.batch_size * config.model.block_size
    tokens_per_s = tokens_per_step * args.steps / seconds
    print(
        json.dumps(
            {
                "preset": args.preset,
                "device": str(device),
                "dtype": str(dtype).removeprefix("torch."),
                "threads": torch.get_num_threads(),
                "compile": args.compile,
                "params": model.num_params(),
                "tokens_per_step": tokens_per_step,
                "steps": args.steps,
                "repeats": args.repeats,
                "settings": args.set,
                "ms_per_step_min_max": [
                    round(1000 * min(rounds) / args.steps, 2),
                    round(1000 * max(rounds) / args.steps, 2),
                ],
                "warmup_s": round(warmup_s, 3),
                "ms_per_step": round(1000 * seconds / args.steps, 2),
                "tokens_per_s": round(tokens_per_s),
                "peak_flops": round(peak),
                "mfu": round(model.flops_per_token() * tokens_per_s / peak, 4),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
