"""How much of a training step each optimizer takes, with the model as the preset runs it (compiled or not).

Times whole training steps of a preset on the bundled Tiny Shakespeare, and each optimizer's `step()` within
them (for `train.optimizer=muon`: Muon's Newton-Schulz iteration and AdamW), as JSON. Unlike
`profile_step.py` it runs no profiler, so compiled steps are timed as they run. Run it on an idle machine.
Usage: python bench/optimizer_share.py [--preset cpu-speedrun] [--steps 60] [--set key=value ...]
"""

import argparse
import json
import tempfile
import time
from collections import defaultdict

from machine import machine
from step_setup import StepSetup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-speedrun")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    spent: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        setup = StepSetup(tmp, args.preset, ["train.device=cpu", *args.set])
        parts = getattr(setup.optimizer, "parts", [(setup.optimizer, 1.0)])
        for part, _ in parts:
            part.step = timed(part.step, type(part).__name__, spent)  # an instance attribute shadows the method
        for _ in range(15):  # compiling, warm-up
            setup.step()
        spent.clear()
        began = time.perf_counter()
        for _ in range(args.steps):
            setup.step()
        step_ms = 1000 * (time.perf_counter() - began) / args.steps
    per_step = {name: round(1000 * seconds / args.steps, 2) for name, seconds in spent.items()}
    print(
        json.dumps(
            {
                "preset": args.preset,
                "settings": args.set,
                "compiled": setup.compiled,
                "steps": args.steps,
                "step_ms": round(step_ms, 2),
                "optimizer_ms": per_step,
                "optimizer_share": {name: round(ms / step_ms, 3) for name, ms in per_step.items()},
                "machine": machine(setup.device),
            }
        )
    )


def timed(step, name: str, spent: dict[str, float]):
    def step_and_time(*args, **kwargs):
        began = time.perf_counter()
        result = step(*args, **kwargs)
        spent[name] += time.perf_counter() - began
        return result

    return step_and_time


if __name__ == "__main__":
    main()
