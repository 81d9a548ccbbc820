"""`gptkit sample` (continue a prompt) and `gptkit fill` (a masked LM's guesses for each <|mask|>)."""

import sys

from gptkit.cli.common import DEVICE, QUANTIZE, RUN, SAMPLING, WEIGHTS, sampling_from, unescape
from gptkit.errors import ArgumentError


def cmd_sample(args) -> None:
    from gptkit.run import load_run

    sampling = sampling_from(args)  # a bad option fails before the model is loaded
    if args.num_samples < 1:
        raise ArgumentError("num_samples", "must be >= 1", args.num_samples)
    run = load_run(args.run, weights=args.weights, device=args.device or "auto", quantize=args.quantize)
    for i in range(args.num_samples):
        seed = None if sampling.seed is None else sampling.seed + i
        pieces = run.stream(  # checks the prompt before anything is printed
            args.prompt, sampling=sampling, seed=seed, use_cache=not args.no_cache
        )
        sys.stdout.write(args.prompt)
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n" if i == args.num_samples - 1 else "\n" + "-" * 40 + "\n")
    sys.stdout.flush()


def cmd_fill(args) -> None:
    from gptkit.run import load_run

    if args.top_k < 1:
        raise ArgumentError("top_k", "must be >= 1", args.top_k)
    run = load_run(args.run, weights=args.weights, device=args.device or "auto", quantize=args.quantize)
    guesses, filled = run.objective.fill(run, unescape(args.text), top_k=args.top_k)
    for number, options in enumerate(guesses, 1):
        print(f"mask {number}: " + "  ".join(f"{text!r} {prob:.1%}" for text, prob in options))
    print(filled)


def add_generate_commands(sub) -> None:
    p = sub.add_parser(
        "sample", parents=[RUN, SAMPLING, WEIGHTS, DEVICE, QUANTIZE], help="generate text from a trained run"
    )
    p.add_argument("--prompt", default="", help="text to continue (default: start from a newline)")
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--no-cache", action="store_true", help="recompute every step instead of using the KV cache")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "fill", parents=[WEIGHTS, DEVICE, QUANTIZE], help="masked LMs: the likeliest tokens for each <|mask|> in a text"
    )
    p.add_argument("run", help="run directory of a masked language model (train.objective = mlm)")
    p.add_argument("text", help="text with <|mask|> where tokens should be guessed (\\n for a newline)")
    p.add_argument("--top-k", type=int, default=5, help="guesses shown per mask (default 5)")
    p.set_defaults(func=cmd_fill)
