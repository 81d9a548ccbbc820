"""One self-contained HTML page about a run: summary, settings, loss curves, eval table, samples, an
attention map and the token embeddings. Images are embedded as base64 PNG, there is no script and nothing
is fetched, so the file reads offline and can be mailed. Entry point: `write_report(run_dir, out)`.
"""

import base64
import html
import json
import math
from pathlib import Path

from gptkit.atomic import atomic_write_text
from gptkit.budget import TokenBudget, data_shares, format_ratio
from gptkit.errors import ArgumentError
from gptkit.paths import shown
from gptkit.run import load_run
from gptkit.sampling import DEFAULT_SAMPLING, SamplingConfig
from gptkit.viz.attention import attention_figure
from gptkit.viz.curves import curves_figure, run_records
from gptkit.viz.embeddings import embeddings_figure
from gptkit.viz.figure import png_bytes

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 2px 10px; border-bottom: 1px solid #eee; }
th { text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: 0.8em; white-space: pre-wrap; word-break: break-word; }
.settings { display: flex; gap: 2em; flex-wrap: wrap; } .muted { color: #777; }
"""


def image(figure, alt: str) -> str:
    encoded = base64.b64encode(png_bytes(figure)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def settings_table(title: str, values: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in values.items())
    return f"<div><h3>{html.escape(title)}</h3><table>{rows}</table></div>"


def number(value, digits: int = 4) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return html.escape(str(value))


def eval_table(records: list[dict]) -> str:
    evals = [r for r in records if r.get("kind") == "eval"]
    if not evals:
        return '<p class="muted">No evaluations logged.</p>'
    columns = ["step", "tokens", "train_loss_eval"] + sorted({k for r in evals for k in r if k.startswith("val_loss")})
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{number(r.get(c, float("nan")))}</td>' for c in columns) + "</tr>"
        for r in evals
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def build_report(
    run_dir, *, prompt: str = "", samples: int = 3, max_new_tokens: int = DEFAULT_SAMPLING.max_new_tokens, seed: int = 1
) -> str:
    """The report's HTML text: samples use the shared sampling defaults (`gptkit.sampling`) with these seeds."""
    run_dir = Path(run_dir)
    if samples < 0:
        raise ArgumentError("samples", "must be >= 0", samples)
    if max_new_tokens < 1:
        raise ArgumentError("max_new_tokens", "must be >= 1", max_new_tokens)
    run = load_run(run_dir, device="cpu")
    records = run_records(run_dir, required=False)  # imported weights have no training metrics
    sections = [f"<h1>gptkit run <code>{html.escape(run_dir.name)}</code></h1>", summary_section(run, records)]
    sections.append("<h2>Loss</h2>")
    if any("train_loss" in r or "val_loss" in r for r in records):
        sections.append(image(curves_figure([run_dir], metric="loss"), "loss curves"))
        sections.append(image(curves_figure([run_dir], metric="lr"), "learning rate"))
    sections.append(eval_table(records))
    sections.append("<h2>Samples</h2>")
    if run.tokenizer is None:
        sections.append('<p class="muted">The run has no tokenizer, so there are no text samples.</p>')
    else:
        texts = sample_section(run, sections, prompt, samples, SamplingConfig(max_new_tokens=max_new_tokens, seed=seed))
        pictures_section(run, sections, prompt or (texts[0] if texts else ""))
    sections.append(settings_section(run.config))
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>gptkit report: {html.escape(run_dir.name)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def summary_section(run, records: list[dict]) -> str:
    evals = [r for r in records if r.get("kind") == "eval"]
    last_eval = evals[-1] if evals else {}
    summary = {
        "parameters": f"{run.model.num_params() / 1e6:.2f}M",
        "steps": last_eval.get("step", 0),
        "tokens seen": f"{last_eval.get('tokens', 0):,}",
        "final val loss": number(last_eval.get("val_loss", float("nan"))),
        "best val loss": number(min((r["val_loss"] for r in evals if "val_loss" in r), default=float("nan"))),
        "training time": f"{records[-1]['time']:.1f} s" if records else "n/a",
    }
    if last_eval.get("tokens"):
        shares = data_shares(run.config, steps=last_eval.get("step"))  # stages: the steps it ran, not the plan
        budget = TokenBudget.of(run.config.model, last_eval["tokens"], shares=shares)
        summary["tokens per parameter"] = f"{format_ratio(budget.tokens_per_parameter)} (compute-optimal: about 20)"
        if budget.epochs is not None:
            summary["epochs over the data"] = f"{budget.epochs:.3g}"
        if budget.named_repeats:
            dataset, epochs = budget.named_repeats
            summary[f"epochs over {dataset.name}"] = f"{epochs:.3g}"
        if budget.warning():
            summary["token budget"] = budget.warning().removeprefix("warning: ")
    return settings_table("Summary", summary)


def sample_section(run, sections: list[str], prompt: str, samples: int, sampling: SamplingConfig) -> list[str]:
    """Append `samples` continuations of `prompt` (seeds sampling.seed, +1, ...); returns their texts."""
    if not run.objective.generates_text:  # e.g. a masked LM fills in blanks
        use = html.escape(run.objective.next_step(run.run_dir.name))
        sections.append(f'<p class="muted">This model does not continue text; {use}.</p>')
        return []
    texts = [prompt + run.generate(prompt, sampling=sampling, seed=sampling.seed + i) for i in range(samples)]
    sections.extend(f"<pre>{html.escape(text)}</pre>" for text in texts)
    if samples:
        sections.append(
            f'<p class="muted">{html.escape(sampling.describe())}, seeds {sampling.seed}..'
            f"{sampling.seed + samples - 1}, prompt {html.escape(json.dumps(prompt))}</p>"
        )
    return texts


def pictures_section(run, sections: list[str], looked_at: str) -> None:
    """Append attention maps (first and last layer) over the start of `looked_at`, and the token embeddings."""
    sections.append("<h2>Attention</h2>")
    ids = run.tokenizer.encode(looked_at)[:32] if looked_at else []  # something the model can read
    looked_at = run.tokenizer.decode(ids)
    if run.config.model.arch == "bigram":
        sections.append('<p class="muted">A bigram model has no attention: each token reads its own row.</p>')
    elif looked_at:
        for layer in sorted({0, run.config.model.n_layer - 1}):
            sections.append(image(attention_figure(run, looked_at, layer=layer), f"attention, layer {layer}"))
    sections.append("<h2>Token embeddings</h2>")
    sections.append(image(embeddings_figure(run), "token embeddings"))


def settings_section(config) -> str:
    return (
        '<h2>Settings</h2>\n<div class="settings">'
        + settings_table("model", vars(config.model))
        + settings_table("train", vars(config.train))
        + settings_table("data", {s.label: f"{s.path} (weight {s.weight})" for s in config.all_data()})
        + "</div>"
    )


def write_report(run_dir, out, **options) -> Path:
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ArgumentError("out", "the report is one HTML file; give a path ending in .html", shown(out))
    text = build_report(run_dir, **options)
    atomic_write_text(out, text)
    return out
