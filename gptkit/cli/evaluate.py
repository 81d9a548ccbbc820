"""`gptkit eval`: loss, perplexity and bits per byte of a run on prepared data or raw text, as its objective scores."""

import json

from gptkit.cli.common import DEVICE, QUANTIZE, RUN, WEIGHTS
from gptkit.errors import GptkitError


def cmd_eval(args) -> None:
    from gptkit.run import load_run

    if args.samples is not None:
        return cmd_copying(args)
    if not args.data and not args.text:
        raise GptkitError(
            "eval: pass --data DIR (prepared) and/or --text FILE (raw text) to evaluate on, or --samples N to "
            "measure copying"
        )
    run = load_run(args.run, weights=args.weights, device=args.device or "auto", quantize=args.quantize)
    results = run.objective.evaluate(
        run,
        data=args.data,
        texts=args.text,
        split=args.split,
        max_tokens=args.max_tokens,
        context=args.context,
        whole_word={"run": None, "yes": True, "no": False}[args.whole_word],
    )
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return
    print(results[0].HEADER)
    for result in results:
        print(result.row())


def cmd_copying(args) -> None:
    from gptkit.copy_eval import copy_report, report_rows
    from gptkit.run import load_run

    run = load_run(args.run, weights=args.weights, device=args.device or "auto", quantize=args.quantize)
    report = copy_report(run, args.samples, args.sample_tokens)
    if args.json:
        print(
            json.dumps({name: {u: r.to_dict() for u, r in units.items()} for name, units in report.items()}, indent=2)
        )
        return
    print(*report_rows(report), sep="\n")


def add_evaluate_commands(sub) -> None:
    p = sub.add_parser(
        "eval",
        parents=[RUN, WEIGHTS, DEVICE, QUANTIZE],
        help="loss, perplexity and bits per byte of a run on data or text",
    )
    p.add_argument("--data", action="append", default=[], help="a prepared dataset (repeatable)")
    p.add_argument("--text", action="append", default=[], help="a raw UTF-8 text file (repeatable)")
    p.add_argument("--split", default="val", choices=["val", "train"], help="split of --data (default val)")
    p.add_argument("--max-tokens", type=int, default=None, help="score at most this many tokens of each")
    p.add_argument(
        "--context",
        type=int,
        default=None,
        help="score in windows of this many tokens (default: the model's block_size); compares models of "
        "different block sizes like for like",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="instead: generate this many samples and measure how much of them is copied from the training split "
        "(8/16/32-grams, longest span, distinct-n), beside real held-out text",
    )
    p.add_argument("--sample-tokens", type=int, default=256, help="tokens per sample for --samples (default 256)")
    p.add_argument(
        "--whole-word",
        default="run",
        choices=["run", "yes", "no"],
        help="masked LMs: mask whole words (yes), single tokens (no), or as the run trained (default)",
    )
    p.set_defaults(func=cmd_eval)
