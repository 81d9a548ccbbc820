"""The picture commands: `gptkit plot` (training curves), `gptkit viz attention|rope|embeddings|tokens`, and
`gptkit report` (one HTML page). Each writes one file (PNG or HTML) atomically and prints its path."""

import os
import sys

from gptkit.cli.common import RUN, WEIGHTS
from gptkit.sampling import DEFAULT_SAMPLING


def _say_written(path) -> None:
    print(f"wrote {path}")


def cmd_plot(args) -> None:
    from gptkit.viz.curves import curves_figure
    from gptkit.viz.figure import check_png_path, save_png

    check_png_path(args.out)
    _say_written(save_png(curves_figure(args.runs, metric=args.metric, x=args.x, log_y=args.log_y), args.out))


def cmd_attention(args) -> None:
    from gptkit.run import load_run
    from gptkit.viz.attention import attention_figure
    from gptkit.viz.figure import check_png_path, save_png

    check_png_path(args.out)
    run = load_run(args.run, weights=args.weights, device="cpu")
    figure = attention_figure(run, args.prompt, layer=args.layer, head=args.head)
    _say_written(save_png(figure, args.out))


def cmd_rope(args) -> None:
    from gptkit.viz.figure import check_png_path, save_png
    from gptkit.viz.rope import rope_figure

    check_png_path(args.out)
    _say_written(save_png(rope_figure(dim=args.dim, theta=args.theta, length=args.length), args.out))


def cmd_embeddings(args) -> None:
    from gptkit.run import load_run
    from gptkit.viz.embeddings import embeddings_figure
    from gptkit.viz.figure import check_png_path, save_png

    check_png_path(args.out)
    run = load_run(args.run, weights=args.weights, device="cpu")
    _say_written(save_png(embeddings_figure(run, labels=args.labels), args.out))


def cmd_tokens(args) -> None:
    from gptkit.tokenizer import load_tokenizer
    from gptkit.viz.tokens import render_tokens

    color = {"always": True, "never": False}.get(args.color)
    if color is None:  # auto: colours only on a terminal, and not when NO_COLOR is set (no-color.org)
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    print(render_tokens(load_tokenizer(args.tokenizer), args.text, color=color))


def cmd_report(args) -> None:
    from gptkit.viz.report import write_report

    path = write_report(
        args.run, args.out, prompt=args.prompt, samples=args.samples, max_new_tokens=args.max_new_tokens
    )
    _say_written(path)


def add_viz_commands(sub) -> None:
    """Register `gptkit plot`, `gptkit viz ...` and `gptkit report` on the main parser's subcommands."""
    p = sub.add_parser("plot", help="training curves of one or more runs, as PNG")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (each has a metrics.jsonl)")
    p.add_argument(
        "--metric",
        default="loss",
        help="loss (train + val, default), train_loss, val_loss, val_loss.NAME, lr, tokens_per_s, ms_per_step, mfu",
    )
    p.add_argument("--x", default="step", choices=["step", "tokens", "time"], help="horizontal axis")
    p.add_argument("--log-y", action="store_true", help="logarithmic vertical axis")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_plot)

    top = sub.add_parser("viz", help="pictures of a model: attention, rope, embeddings, tokens")
    vsub = top.add_subparsers(dest="viz_command", required=True, metavar="PICTURE")

    p = vsub.add_parser(
        "attention", parents=[RUN, WEIGHTS], help="attention weights of one layer's heads over a prompt, as heat maps"
    )
    p.add_argument("--prompt", required=True, help="the text to look at")
    p.add_argument("--layer", type=int, default=-1, help="layer index from 0 (default -1: the last)")
    p.add_argument("--head", type=int, default=None, help="one head only (default: all heads)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_attention)

    p = vsub.add_parser("rope", help="RoPE rotation frequencies and its relative-position effect")
    p.add_argument("--dim", type=int, default=64, help="head size (default 64)")
    p.add_argument("--theta", type=float, default=10000.0, help="frequency base (default 10000)")
    p.add_argument("--length", type=int, default=256, help="positions to show (default 256)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_rope)

    p = vsub.add_parser("embeddings", parents=[RUN, WEIGHTS], help="token embeddings in 2-D (PCA), labelled")
    p.add_argument("--labels", type=int, default=120, help="how many tokens get a text label (default 120)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_embeddings)

    p = vsub.add_parser("tokens", help="show token boundaries of a text in the terminal")
    p.add_argument("tokenizer", help="tokenizer JSON, or a data/run folder holding tokenizer.json")
    p.add_argument("text")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="never: '|' between tokens")
    p.set_defaults(func=cmd_tokens)

    p = sub.add_parser(
        "report", parents=[RUN], help="one self-contained HTML page: curves, samples, attention, settings"
    )
    p.add_argument("--out", required=True, help="HTML file to write")
    p.add_argument("--prompt", default="", help="prompt for the samples and the attention map (default: none)")
    p.add_argument("--samples", type=int, default=3)
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=DEFAULT_SAMPLING.max_new_tokens,
        help=f"tokens per sample (default {DEFAULT_SAMPLING.max_new_tokens})",
    )
    p.set_defaults(func=cmd_report)
