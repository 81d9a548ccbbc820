"""What several commands share: their common options as parent parsers, and the sampling settings they read.

A command lists the groups it takes (`parents=[RUN, WEIGHTS, DEVICE, QUANTIZE, SAMPLING]`), so a flag is declared
once with one help text and one default: the sampling defaults are `SamplingConfig`'s. No logic beyond that.
"""

import argparse

from gptkit.sampling import DEFAULT_SAMPLING, SamplingConfig

MEMORY_CHECK_HELP = "build the model even if it will not fit in the free memory, as gptkit estimates it"


def _group() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


RUN = _group()
RUN.add_argument("run", help="run directory (from `gptkit train --out`)")

WEIGHTS = _group()
WEIGHTS.add_argument("--weights", default="last", choices=["last", "best"], help="latest or best-by-val weights")

DEVICE = _group()
DEVICE.add_argument("--device", default=None, help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:N, mps")
QUANTIZE = _group()  # for the commands that only run a model; the library checks the value (`gptkit.quantize`)
QUANTIZE.add_argument(
    "--quantize", default="none", help="none (default) or int8: int8 weights, faster generation on the CPU"
)

TEXT_INPUTS = _group()  # what `prepare` and `tokenizer train` read, through one reader (gptkit.sources)
TEXT_INPUTS.add_argument(
    "paths",
    nargs="+",
    metavar="PATH",
    help="text files (.txt, .jsonl, also .gz), Parquet or Arrow files, folders, or a bundled name (shakespeare, "
    "warandpeace)",
)
TEXT_INPUTS.add_argument(
    "--field",
    default="text",
    help="the text field of .jsonl records, or column of .parquet/.arrow files (default: text)",
)

SAMPLING = _group()
_s = DEFAULT_SAMPLING
SAMPLING.add_argument(
    "--max-new-tokens", type=int, default=_s.max_new_tokens, help=f"tokens to generate (default {_s.max_new_tokens})"
)
SAMPLING.add_argument(
    "--temperature", type=float, default=_s.temperature, help=f"0 = greedy; higher = more random ({_s.temperature})"
)
SAMPLING.add_argument("--top-k", type=int, default=0, help="sample only among the k most likely tokens (0 = off)")
SAMPLING.add_argument("--top-p", type=float, default=None, help="sample only within this probability mass (1 = off)")
SAMPLING.add_argument(
    "--repetition-penalty", type=float, default=_s.repetition_penalty, help="> 1 discourages repeats (default 1 = off)"
)
SAMPLING.add_argument(
    "--stop", action="append", default=[], help='end the text at this string (repeatable), e.g. --stop "\\n\\n"'
)
SAMPLING.add_argument("--seed", type=int, default=_s.seed, help="make sampling reproducible")


def unescape(text: str) -> str:
    """Shell-typed escapes in stop strings: `\\n` -> newline, `\\t` -> tab, `\\\\` -> backslash."""
    return text.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\0", "\\")


def sampling_from(args) -> SamplingConfig:
    """The settings the SAMPLING flags ask for (`--top-k 0` and `--top-p 1` mean off)."""
    return SamplingConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k or None,
        top_p=None if args.top_p == 1 else args.top_p,
        repetition_penalty=args.repetition_penalty,
        stop=tuple(unescape(s) for s in args.stop),
        seed=args.seed,
    )
