"""Where a training step's time goes: torch.profiler over real training steps of a preset, as JSON.

Self CPU time per operator, summed into groups: matmuls (mm/addmm/bmm and their backward), attention
(scaled-dot-product kernels), the optimizer step, the loss, element-wise work and the rest, plus the ten
costliest operators. Wall-clock per step comes from the same steps, so the gap between the sum of operator
time and wall-clock is Python and dispatch overhead.
Usage: python bench/profile_step.py [--preset cpu-baby] [--steps 30] [--set key=value ...]
"""

import argparse
import json
import tempfile
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from gptkit.config import DataSource, resolve_config
from gptkit.data.prepare import prepare
from gptkit.model import GPT
from gptkit.runtime import pick_device, resolve_dtype
from gptkit.train.data import TrainingData
from gptkit.train.loop import train_step
from gptkit.train.optim import build_optimizer

GROUPS = [  # (group, substrings of operator names), first match wins
    ("optimizer", ("adam", "muon", "Optimizer.step", "_foreach")),
    ("attention", ("scaled_dot_product", "flash_attention", "_efficient_attention")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")),
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
        prepare(["shakespeare"], tmp)
        config = resolve_config(preset=args.preset, overrides=["train.device=cpu", *args.set])
        config.data = [DataSource(path=tmp)]
        data = TrainingData(config)
        cfg = config.train
        device = pick_device(cfg.device)
        dtype = resolve_dtype(cfg.dtype, device)
        torch.manual_seed(cfg.seed)
        model = GPT(config.model).to(device)
        optimizer = build_optimizer(model, cfg, device)
        scaler = torch.amp.GradScaler(device.type, enabled=False)
        generator = torch.Generator().manual_seed(cfg.seed)

        def step():
            batch = lambda: data.batch(0, cfg.batch_size, config.model.block_size, generator, device)  # noqa: E731
            return train_step(model, model, optimizer, scaler, batch, cfg, cfg.lr, device, dtype)

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
