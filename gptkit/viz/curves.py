"""Training curves of one or several runs from their `metrics.jsonl`: loss (or any logged number) against
steps, tokens seen, or training time. Entry point: `curves_figure(run_dirs, metric=, x=)`; save the figure
with `gptkit.viz.figure.save_png`."""

from pathlib import Path

from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import shown
from gptkit.train.metrics import METRICS_FILE, read_metrics
from gptkit.viz.figure import house_style, new_figure

X_AXES = {"step": "step", "tokens": "tokens seen", "time": "training time (s)"}
# `loss` draws train_loss (a thin line) and val_loss (dots) together; anything else is one logged field.
LABELS = {
    "loss": "loss (nats/token)",
    "train_loss": "train loss (nats/token)",
    "val_loss": "val loss (nats/token)",
    "lr": "learning rate",
    "tokens_per_s": "tokens/s",
    "ms_per_step": "ms/step",
    "mfu": "MFU",
}


def run_records(run_dir: Path, *, required: bool = True) -> list[dict]:
    """The run's metrics, each with `time`: training seconds so far (eval time left out), from ms/step.
    A run without metrics (imported weights) is an error, or no records when not `required`."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        if not required:
            return []
        raise GptkitError(f"{run_dir}: no {METRICS_FILE}; pass run directories written by `gptkit train`")
    records, elapsed, last_step = [], 0.0, 0
    for record in read_metrics(path):
        if record.get("kind") == "train" and "ms_per_step" in record:
            elapsed += record["ms_per_step"] * (record["step"] - last_step) / 1000
            last_step = record["step"]
        records.append({**record, "time": elapsed})
    return records


def series(records: list[dict], metric: str, x: str) -> tuple[list[float], list[float]]:
    """(xs, ys) of `metric`: val losses from eval records, everything else from train records (eval records
    repeat the last lr and speed, which are 0 at step 0)."""
    kind = "eval" if metric.startswith("val_loss") or metric == "train_loss_eval" else "train"
    points = [(r.get(x), r[metric]) for r in records if r.get("kind") == kind and metric in r and r.get(x) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def available_metrics(records: list[dict]) -> list[str]:
    skip = {"kind", "step", "tokens", "time"}
    return sorted({k for r in records for k, v in r.items() if k not in skip and isinstance(v, int | float)})


@house_style
def curves_figure(run_dirs, *, metric: str = "loss", x: str = "step", log_y: bool = False):
    """Curves of `metric` for each run in `run_dirs` against `x` (step | tokens | time)."""
    if x not in X_AXES:
        raise ArgumentError("x", f"choose one of {', '.join(X_AXES)}", x)
    figure = new_figure(8, 4.8)
    axes = figure.add_subplot()
    drawn = 0
    for run_dir in run_dirs:
        records = run_records(run_dir)
        name = Path(run_dir).name
        wanted = ["train_loss", "val_loss"] if metric == "loss" else [metric]
        if not any(m in r for r in records for m in wanted):
            problem = f"{shown(run_dir)} did not log it; it logged {', '.join(available_metrics(records))}"
            raise ArgumentError("metric", problem, metric)
        color = f"C{drawn % 10}"
        for field in wanted:
            xs, ys = series(records, field, x)
            if not xs:
                continue
            if field.startswith("val"):
                style = {"marker": "o", "markersize": 4, "linewidth": 1.5}
            else:
                style = {"linewidth": 1, "alpha": 0.6 if metric == "loss" else 1.0}
            axes.plot(xs, ys, color=color, label=f"{name} {field}" if metric == "loss" else name, **style)
        drawn += 1
    axes.set_xlabel(X_AXES[x])
    axes.set_ylabel(LABELS.get(metric, metric))
    if log_y:
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    title = "loss" if metric == "loss" else metric
    axes.set_title(f"{title} by {X_AXES[x]}")
    return figure
