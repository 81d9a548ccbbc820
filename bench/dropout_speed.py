"""gptkit's CPU dropout (`gptkit.dropout`) against `torch.nn.Dropout`, on the `shakespeare` preset, as JSON.

Full training steps (the real `train_step`: forward, backward, AdamW step) of the `shakespeare` preset
(6 layers, 384 wide, block 256, batch 64, dropout 0.2, grad_accum 1) on the bundled Tiny Shakespeare, in one
model whose dropout modules are swapped between the two implementations (they hold no parameters, so the
optimizer is untouched). After one untimed step with each, `--pairs` pairs of turns of `--steps` steps are
timed, alternating, the order flipped every pair (ABBA...) so that a drift of the machine hits both; the
median ms/step of each (also the fastest step, and the process CPU time) and the median of the per-pair ratios
are reported, with the load average before and after (the machine may be shared). Then the dropout op alone on
the preset's activation shape (batch, block, n_embd), forward and forward + backward, alternating the same way,
and its forward + backward saving times the number of dropout modules, as a share of the measured torch step.
The dropout modules' forwards are also clocked inside the timed steps (a hook before and after each).
Attention-weight dropout is not in either figure: training attention runs in SDPA's own dropout.
Usage: python bench/dropout_speed.py [--pairs 4] [--steps 1] [--op-repeats 20] [--threads N]
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from machine import cpu_info
from step_setup import StepSetup

import gptkit.dropout

PRESET = "shakespeare"
KINDS = {"gptkit": gptkit.dropout.Dropout, "torch": nn.Dropout}
OP_FUNCTIONS = {"gptkit": gptkit.dropout.dropout, "torch": lambda x, p: F.dropout(x, p, training=True)}


_in_dropout_s = [0.0]  # wall-clock seconds spent inside dropout modules' forward, summed


def _start_clock(module, args) -> None:
    module.began = time.perf_counter()


def _stop_clock(module, args, output) -> None:
    _in_dropout_s[0] += time.perf_counter() - module.began


def use_dropout(model: nn.Module, kind: str) -> int:
    """Replace every dropout module of `model` by `kind`'s, with the same p and a clock on its forward;
    returns how many there are."""
    count = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, tuple(KINDS.values())):
                replacement = KINDS[kind](child.p).train(child.training)
                replacement.register_forward_pre_hook(_start_clock)
                replacement.register_forward_hook(_stop_clock)
                setattr(module, name, replacement)
                count += 1
    return count


def alternating(kinds: list[str], pairs: int):
    """The turns in ABBA order: pairs of (first, second), the order flipped every pair."""
    for index in range(pairs):
        yield kinds if index % 2 == 0 else kinds[::-1]


def time_steps(setup: StepSetup, steps: int) -> tuple[float, float, float]:
    """Wall-clock, process CPU and in-dropout-forward wall-clock seconds per step."""
    began, began_cpu, began_dropout = time.perf_counter(), time.process_time(), _in_dropout_s[0]
    for _ in range(steps):
        loss = setup.step()
    loss.item()
    wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    return wall / steps, cpu / steps, (_in_dropout_s[0] - began_dropout) / steps


def time_op(kind: str, x: torch.Tensor, grad: torch.Tensor, p: float, backward: bool) -> float:
    function = OP_FUNCTIONS[kind]
    x.grad = None
    began = time.perf_counter()
    if backward:
        function(x, p).backward(grad)
    else:
        with torch.no_grad():
            function(x, p)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="alternating pairs of timed turns")
    parser.add_argument("--steps", type=int, default=1, help="training steps per turn")
    parser.add_argument("--op-repeats", type=int, default=20, help="alternating pairs of timed dropout ops")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = list(KINDS)
    began_all, load_before = time.perf_counter(), os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        setup = StepSetup(tmp, PRESET, ["train.device=cpu", "train.grad_accum=1"])
        cfg, m = setup.cfg, setup.config.model
        dropouts = use_dropout(setup.model, "gptkit")
        for kind in kinds:  # one untimed step each: allocator and first-call costs
            use_dropout(setup.model, kind)
            time_steps(setup, 1)
        step_s: dict[str, list[float]] = {kind: [] for kind in kinds}
        cpu_s: dict[str, list[float]] = {kind: [] for kind in kinds}
        in_dropout_s: dict[str, list[float]] = {kind: [] for kind in kinds}
        ratios = []
        for pair in alternating(kinds, args.pairs):
            seconds = {}
            for kind in pair:
                use_dropout(setup.model, kind)
                seconds[kind], cpu, in_dropout = time_steps(setup, args.steps)
                step_s[kind].append(seconds[kind])
                cpu_s[kind].append(cpu)
                in_dropout_s[kind].append(in_dropout)
            ratios.append(seconds["gptkit"] / seconds["torch"])

    shape = (cfg.batch_size, m.block_size, m.n_embd)
    x = torch.randn(shape, requires_grad=True)
    grad = torch.randn(shape)
    op_ms: dict[str, dict[str, float]] = {}
    for backward, label in ((False, "forward"), (True, "forward_backward")):
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        for kind in kinds:
            time_op(kind, x, grad, m.dropout, backward)  # warm-up
        for pair in alternating(kinds, args.op_repeats):
            for kind in pair:
                times[kind].append(time_op(kind, x, grad, m.dropout, backward))
        op_ms[label] = {kind: round(1000 * statistics.median(times[kind]), 2) for kind in kinds}

    median_ms = {kind: 1000 * statistics.median(step_s[kind]) for kind in kinds}
    op_saving_ms = op_ms["forward_backward"]["torch"] - op_ms["forward_backward"]["gptkit"]
    print(
        json.dumps(
            {
                "preset": PRESET,
                **cpu_info(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "model": {"n_layer": m.n_layer, "n_embd": m.n_embd, "block_size": m.block_size, "dropout": m.dropout},
                "batch_size": cfg.batch_size,
                "grad_accum": cfg.grad_accum,
                "dropout_modules": dropouts,
                "pairs": args.pairs,
                "steps_per_turn": args.steps,
                "step_ms": {kind: [round(1000 * s, 1) for s in step_s[kind]] for kind in kinds},
                "median_ms_per_step": {kind: round(v, 1) for kind, v in median_ms.items()},
                "ratio_gptkit_over_torch_of_medians": round(median_ms["gptkit"] / median_ms["torch"], 4),
                "ratio_gptkit_over_torch_median_of_pairs": round(statistics.median(ratios), 4),
                "min_ms_per_step": {kind: round(1000 * min(step_s[kind]), 1) for kind in kinds},
                # Process CPU time (both threads): less sensitive than wall-clock to other load on the cores.
                "median_cpu_ms_per_step": {kind: round(1000 * statistics.median(cpu_s[kind]), 1) for kind in kinds},
                # Inside the steps above: the time spent in the dropout modules' forwards (the backward of
                # both is one multiply by the mask), and the difference as a share of the torch step.
                "median_dropout_forward_ms_per_step": {
                    kind: round(1000 * statistics.median(in_dropout_s[kind]), 1) for kind in kinds
                },
                "dropout_forward_saving_frac_of_torch_step": round(
                    (statistics.median(in_dropout_s["torch"]) - statistics.median(in_dropout_s["gptkit"]))
                    / statistics.median(step_s["torch"]),
                    4,
                ),
                "op_shape": list(shape),
                "op_ms": op_ms,
                # The op's forward + backward saving times the modules that run it, against the measured step.
                "op_saving_x_modules_ms_per_step": round(op_saving_ms * dropouts, 1),
                "op_saving_x_modules_frac_of_torch_step": round(op_saving_ms * dropouts / median_ms["torch"], 4),
                "total_s": round(time.perf_counter() - began_all, 1),
                "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
