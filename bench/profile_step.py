"""Where a training step's time goes: torch.profiler over real training steps of a preset, as JSON.

Self CPU time per operator, summed into groups: matmuls (mm/addmm/bmm and their backward), attention
(scaled-dot-product kernels), the optimizer step, the loss, element-wise work and the rest, plus the ten
costliest operators. Wall-clock per step comes from the same steps, so the gap between the sum of operator
time and wall-clock is Python and dispatch overhead. The step runs eagerly, even for a preset that compiles
(`cpu-speedrun`), unless `--set train.compile=true`: compiled kernels are not `aten::` operators.
Usage: python bench/profile_step.py [--preset cpu-baby] [--steps 30] [--set key=value ...]
"""

import argparse
import json
import tempfile
import time
from collections import defaultdict

import torch
from step_setup import StepSetup
from torch.profiler import ProfilerActivity, profile

GROUPS = [  # (group, substrings of operator names), first match wins
    ("optimizer", ("adam", "muon", "Optimizer.step", "_foreach")),
    ("attention", ("scaled_dot_product", "flash_attention", "_efficient_attention")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear")),
    ("loss", ("cross_entropy", "log_softmax", "nll_loss")),
    ("embedding", ("embedding",)),
    ("elementwise", ("aten::mul", "aten::add", "aten::gelu", "aten::silu", "aten::tanh", "aten::div", "aten::sub")),
    ("norm", ("norm", "aten::rsqrt", "aten::pow", "aten::mean")),
]


def group_of(name: str) -> str:
    return next((group for group, keys in GROUPS if any(k in name for k in keys)), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-baby")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup = StepSetup(tmp, args.preset, ["train.device=cpu", "train.compile=false", *args.set])
        step = setup.step
        for _ in range(10):
            step()
        began = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                step()
        wall_ms = 1000 * (time.perf_counter() - began) / args.steps
    events = [e for e in prof.key_averages() if e.key.startswith("aten::") or "Optimizer" in e.key]
    groups: dict[str, float] = defaultdict(float)
    for event in events:
        groups[group_of(event.key)] += event.self_cpu_time_total / 1000 / args.steps
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    operator_ms = sum(groups.values())
    print(
        json.dumps(
            {
                "preset": args.preset,
                "settings": args.set,
                "threads": torch.get_num_threads(),
                "profiled_wall_ms_per_step": round(wall_ms, 2),
                "operator_ms_per_step": round(operator_ms, 2),
                "groups_ms_per_step": {k: round(v, 2) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
                "top_operators_ms_per_step": {e.key: round(e.self_cpu_time_total / 1000 / args.steps, 3) for e in top},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
