"""`gptkit forgetting`: catastrophic forgetting, measured. Train on A then B, or on A and B mixed.

Two runs with the same model, token budget and seed: (a) sequential, A for the first half of the steps and
then B, and (b) mixed, every batch drawn half from A and half from B. Both track the validation loss on A
and on B throughout; the result is a PNG plot and a JSON table (`forgetting.png`, `forgetting.json`).
A and B must be prepared with the same tokenizer. Entry point: `forgetting`.
"""

import copy
import json
from pathlib import Path

from gptkit.atomic import atomic_write_text
from gptkit.config import DataSource, RunConfig, StageConfig, resolve_config
from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import shown
from gptkit.train.loop import train
from gptkit.train.metrics import read_metrics


def experiment_configs(a: str, b: str, steps: int, base: RunConfig) -> dict[str, RunConfig]:
    """The sequential (A then B) and mixed (A and B half each) configurations of the experiment."""
    if steps < 2:
        raise ArgumentError("steps", "need at least 2 (half on A, half on B)", steps)
    source_a, source_b = DataSource(path=a, name="A"), DataSource(path=b, name="B")
    sequential, mixed = copy.deepcopy(base), copy.deepcopy(base)
    for config in (sequential, mixed):
        config.train.max_iters = steps
        config.train.lr_decay_iters = 0
    sequential.data = []
    sequential.stages = [StageConfig(steps=steps // 2, data=[source_a]), StageConfig(steps - steps // 2, [source_b])]
    mixed.data = [DataSource(path=a, weight=0.5, name="A"), DataSource(path=b, weight=0.5, name="B")]
    return {"sequential": sequential, "mixed": mixed}


def curves(run_dir: Path) -> dict[str, list]:
    """Steps and val losses on A and on B from a run's metrics.jsonl."""
    evals = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("kind") == "eval"]
    return {
        "step": [r["step"] for r in evals],
        "A": [r["val_loss.A"] for r in evals],
        "B": [r["val_loss.B"] for r in evals],
    }


def plot(results: dict, switch: int, path: Path, names: tuple[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, key, label in zip(axes, ("A", "B"), names):  # label: the dataset's folder name
        for run, style in (("sequential", "-"), ("mixed", "--")):
            ax.plot(results[run]["step"], results[run][key], style, label=run, linewidth=2)
        ax.axvline(switch, color="grey", linestyle=":", label="sequential run switches A -> B")
        ax.set_title(f"validation loss on {key} ({label})")
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cross-entropy (nats/token)")
    axes[0].legend()
    fig.suptitle("Catastrophic forgetting: A then B (sequential) vs A+B mixed, same token budget")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def eval_interval(steps: int) -> int:
    """About 20 evaluations, at an interval that divides the switch step, so the switch is always measured."""
    switch = steps // 2
    return next(i for i in range(max(1, steps // 20), 0, -1) if switch % i == 0)


def check_inputs(a: str, b: str, block_size: int) -> None:
    """Refuse inputs that would only fail after both runs have trained."""
    from gptkit.data.dataset import open_dataset

    if Path(a).resolve() == Path(b).resolve():
        raise GptkitError("forgetting: a and b (--a, --b) are the same dataset; pass two different ones")
    for argument, path in (("a", a), ("b", b)):
        if not open_dataset(path, argument).has_windows("val", block_size):
            problem = f"no val split longer than block_size={block_size}"
            raise ArgumentError(argument, problem, shown(path))


def forgetting(a: str, b: str, steps: int, out_dir, *, preset: str = "cpu-baby", overrides=(), echo=print) -> dict:
    """Run the experiment and write `out_dir/forgetting.{png,json}`; returns the JSON table."""
    out = Path(out_dir)
    base = resolve_config(preset=preset, overrides=[f"train.eval_interval={eval_interval(steps)}", *overrides])
    check_inputs(a, b, base.model.block_size)
    configs = experiment_configs(a, b, steps, base)
    results = {}
    for name, config in configs.items():
        echo(f"== {name} run ==")
        train(config, out / name, overwrite=True, echo=echo)
        results[name] = curves(out / name)
    switch = steps // 2
    at_switch = {
        run: {k: v[results[run]["step"].index(switch)] for k, v in results[run].items() if k != "step"}
        for run in results
        if switch in results[run]["step"]
    }
    table = {
        "a": a,
        "b": b,
        "steps": steps,
        "preset": preset,
        "switch_step": switch,
        "final": {run: {"A": r["A"][-1], "B": r["B"][-1]} for run, r in results.items()},
        "at_switch": at_switch,
        "curves": results,
    }
    plot(results, switch, out / "forgetting.png", (Path(a).name, Path(b).name))
    atomic_write_text(out / "forgetting.json", json.dumps(table, indent=2))
    return table
