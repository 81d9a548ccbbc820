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
from gptkit.errors import GptkitError
from gptkit.run import load_run
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


def build_report(run_dir, *, prompt: str = "", samples: int = 3, max_new_tokens: int = 200, seed: int = 1) -> str:
    """The report's HTML text."""
    run_dir = Path(run_dir)
    run = load_run(run_dir, device="cpu")
    if samples < 0 or max_new_tokens < 1:
        raise GptkitError(f"--samples {samples} / --max-new-tokens {max_new_tokens}: need >= 0 and >= 1")
    records = run_records(run_dir, required=False)  # imported weights have no training metrics
    config = run.config
    sections = [f"<h1>gptkit run <code>{html.escape(run_dir.name)}</code></h1>"]

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
    sections.append(settings_table("Summary", summary))

    sections.append("<h2>Loss</h2>")
    if any("train_loss" in r or "val_loss" in r for r in records):
        sections.append(image(curves_figure([run_dir], metric="loss"), "loss curves"))
        sections.append(image(curves_figure([run_dir], metric="lr"), "learning rate"))
    sections.append(eval_table(records))

    sections.append("<h2>Samples</h2>")
    texts = []
    if run.tokenizer is None:
        sections.append('<p class="muted">The run has no tokenizer, so there are no text samples.</p>')
    else:
        if not run.objective.generates_text:  # e.g. a masked LM fills in blanks
            samples = 0
            use = html.escape(run.objective.next_step(run_dir.name))
            sections.append(f'<p class="muted">This model does not continue text; {use}.</p>')
        for i in range(samples):
            text = run.generate(prompt, max_new_tokens, temperature=0.8, top_k=40, seed=seed + i)
            texts.append(prompt + text)
            sections.append(f"<pre>{html.escape(prompt + text)}</pre>")
        if samples:
            sections.append(
                f'<p class="muted">temperature 0.8, top-k 40, {max_new_tokens} new tokens, seeds {seed}..'
                f"{seed + samples - 1}, prompt {html.escape(json.dumps(prompt))}</p>"
            )

        sections.append("<h2>Attention</h2>")
        # Something the model can read: the given prompt, or the start of its own first sample.
        looked_at = prompt or (texts[0] if texts else "")
        ids = run.tokenizer.encode(looked_at)[:32] if looked_at else []
        looked_at = run.tokenizer.decode(ids)
        if looked_at:
            for layer in sorted({0, config.model.n_layer - 1}):
                sections.append(image(attention_figure(run, looked_at, layer=layer), f"attention, layer {layer}"))
        sections.append("<h2>Token embeddings</h2>")
        sections.append(image(embeddings_figure(run), "token embeddings"))

    sections.append("<h2>Settings</h2>")
    sections.append(
        '<div class="settings">'
        + settings_table("model", vars(config.model))
        + settings_table("train", vars(config.train))
        + settings_table("data", {s.label: f"{s.path} (weight {s.weight})" for s in config.all_data()})
        + "</div>"
    )
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>gptkit report: {html.escape(run_dir.name)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_report(run_dir, out, **options) -> Path:
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise GptkitError(f"--out {out}: the report is one HTML file; give a path ending in .html")
    text = build_report(run_dir, **options)
    atomic_write_text(out, text)
    return out
