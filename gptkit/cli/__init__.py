"""The `gptkit` command line: prepare, train, sample, chat, export, import, info; tokenizer, serve and viz live in
`cli_tokenizer.py`, `cli_serve.py` and `cli_viz.py`.

Parses arguments, calls the library, and turns `GptkitError` into a one-line message and exit code 2 (any
other exception: exit 1, with the traceback only under `--debug`). Heavy modules are imported inside each
command so that `gptkit --help` is instant. No logic of its own beyond wiring.
"""

import argparse
import os
import sys
import warnings

from gptkit.cli_serve import add_serve_command
from gptkit.cli_tokenizer import add_tokenizer_commands
from gptkit.cli_viz import add_viz_commands
from gptkit.errors import GptkitError
from gptkit.paths import shown


def cmd_prepare(args) -> None:
    from gptkit.data.prepare import prepare

    meta = prepare(
        args.paths,
        args.out,
        tokenizer=args.tokenizer,
        val_fraction=args.val_fraction,
        unknown_char=args.unknown_char,
        text_field=args.field,
        workers=args.workers,
    )
    shards = sum(len(s) for s in meta["splits"].values())
    print(
        f"wrote {args.out}: {meta['train_tokens']:,} train + {meta['val_tokens']:,} val tokens "
        f"({meta['dtype']}, {shards} shard(s)), vocab {meta['vocab_size']}, from {len(meta['sources'])} file(s), "
        f"{meta['documents']:,} document(s)"
    )


def _train_config(args):
    from gptkit.train.settings import run_settings

    overrides = list(args.set)
    if args.device:
        overrides.append(f"train.device={args.device}")
    return run_settings(
        args.out,
        preset=args.preset,
        toml_path=args.config,
        overrides=overrides,
        data=args.data,
        resume=args.resume,
        init_from=args.init_from,
    )


def cmd_train(args) -> None:
    if args.help_config:
        from gptkit.config import describe_fields

        print(describe_fields())
        return
    if not args.out:
        raise GptkitError("train: --out RUN_DIR is required (where the run's weights, config and logs go)")
    config = _train_config(args)
    from gptkit.objectives import objective_for
    from gptkit.train.loop import train

    result = train(
        config,
        args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        init_from=args.init_from,
        check_memory=not args.skip_memory_check,
    )
    if result.rank != 0:  # under torchrun, rank 0 speaks for all
        return
    use = objective_for(config).next_step(result.run_dir)
    print(f"done: {result.step} steps, final val loss {result.val_loss:.4f} (best {result.best_val_loss:.4f}); {use}")


def unescape(text: str) -> str:
    """Shell-typed escapes in stop strings: `\\n` -> newline, `\\t` -> tab, `\\\\` -> backslash."""
    return text.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\0", "\\")


def cmd_sample(args) -> None:
    from gptkit.run import load_run

    run = load_run(args.run, weights=args.weights, device=args.device or "auto")
    if args.num_samples < 1:
        raise GptkitError(f"--num-samples {args.num_samples}: must be >= 1")
    for i in range(args.num_samples):
        seed = None if args.seed is None else args.seed + i
        pieces = run.stream(  # checks the prompt and the options before anything is printed
            args.prompt,
            args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k or None,  # 0 = off, as in chat
            top_p=args.top_p,
            repetition_penalty=args.repetition_penalty,
            stop=[unescape(s) for s in args.stop],
            seed=seed,
            use_cache=not args.no_cache,
        )
        sys.stdout.write(args.prompt)
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n" if i == args.num_samples - 1 else "\n" + "-" * 40 + "\n")
    sys.stdout.flush()


def cmd_chat(args) -> None:
    from gptkit.chat import ChatSettings, chat
    from gptkit.generate import check_sampling_args
    from gptkit.run import load_run

    top_k = args.top_k or None
    check_sampling_args(args.temperature, top_k, args.top_p, args.max_new_tokens, args.repetition_penalty)
    run = load_run(args.run, weights=args.weights, device=args.device or "auto")
    run.check_generates()
    stops = [unescape(s) for s in args.stop]
    settings = ChatSettings(
        args.temperature, top_k, args.top_p, args.repetition_penalty, args.max_new_tokens, stops, args.seed
    )
    chat(run, settings)


def cmd_export(args) -> None:
    from gptkit.hf import export_hf

    out = export_hf(args.run, args.out, weights=args.weights)
    print(f"wrote {out}: load it with transformers.AutoModelForCausalLM.from_pretrained({str(out)!r})")


def cmd_import(args) -> None:
    from gptkit.hf import import_hf

    out = import_hf(args.source, args.out, tokenizer=args.tokenizer, check_memory=not args.skip_memory_check)
    if (out / "tokenizer.json").exists():
        print(f"wrote {out}: sample with `gptkit sample {out}`, fine-tune with `gptkit train --init-from {out} ...`")
    else:
        print(f"wrote {out} (weights only)")


def cmd_eval(args) -> None:
    import json

    from gptkit.run import load_run

    if not args.data and not args.text:
        raise GptkitError("eval: pass --data DIR (prepared) and/or --text FILE (raw text) to evaluate on")
    run = load_run(args.run, weights=args.weights, device=args.device or "auto")
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


def cmd_fill(args) -> None:
    from gptkit.run import load_run

    if args.top_k < 1:
        raise GptkitError(f"--top-k {args.top_k}: must be >= 1")
    run = load_run(args.run, weights=args.weights, device=args.device or "auto")
    guesses, filled = run.objective.fill(run, unescape(args.text), top_k=args.top_k)
    for number, options in enumerate(guesses, 1):
        print(f"mask {number}: " + "  ".join(f"{text!r} {prob:.1%}" for text, prob in options))
    print(filled)


def cmd_forgetting(args) -> None:
    from gptkit.experiments import forgetting

    table = forgetting(args.a, args.b, args.steps, args.out, preset=args.preset, overrides=args.set)
    print(f"{'run':<12} {'val loss A':>11} {'val loss B':>11}")
    for run, losses in table["final"].items():
        print(f"{run:<12} {losses['A']:>11.4f} {losses['B']:>11.4f}")
    print(f"wrote {args.out}/forgetting.png and forgetting.json")


def cmd_info(args) -> None:
    from gptkit.info import preset_table, run_summary

    print(run_summary(args.run) if args.run else preset_table(args.vocab_size))


MEMORY_CHECK_HELP = "build the model even if it will not fit in the free memory, as gptkit estimates it"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gptkit", description="Build a GPT from scratch on your own text.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("prepare", help="text files, folders or a bundled dataset -> token files for training")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="text files (.txt, .jsonl, also .gz), folders, or a bundled name (shakespeare, warandpeace)",
    )
    p.add_argument(
        "--tokenizer", default="char", help="'char' (build from the text) or a tokenizer JSON (BPE or char) to use"
    )
    p.add_argument("--out", required=True, help="output folder for token shards, meta.json and tokenizer.json")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the text held out (default 0.1)")
    p.add_argument("--unknown-char", default=None, help="char tokenizer: map unseen characters to this one")
    p.add_argument("--field", default="text", help="the text field of .jsonl records (default: text)")
    p.add_argument("--workers", type=int, default=1, help="encoding processes (default 1)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a GPT on prepared data; writes a run directory")
    p.add_argument("--data", help="prepared data folder (from `gptkit prepare`)")
    p.add_argument("--out", help="run directory to write")
    p.add_argument("--config", help="TOML file with [model], [train] and [[data]] settings")
    p.add_argument(
        "--preset", help="named settings (see `gptkit info`): cpu-baby (the defaults), llama-tiny, gpt2, ..."
    )
    p.add_argument(
        "--set",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override settings, e.g. --set model.n_layer=6 train.lr=3e-4",
    )
    p.add_argument("--device", help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--init-from", metavar="RUN", help="start from another run's weights (fine-tuning)")
    p.add_argument("--help-config", action="store_true", help="list every setting with its default and exit")
    p.add_argument("--skip-memory-check", action="store_true", help=MEMORY_CHECK_HELP)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate text from a trained run")
    p.add_argument("run", help="run directory (from `gptkit train --out`)")
    p.add_argument("--prompt", default="", help="text to continue (default: start from a newline)")
    p.add_argument("--max-new-tokens", type=int, default=500)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy; higher = more random")
    p.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens (0 = off)")
    p.add_argument("--top-p", type=float, default=None, help="sample only within this probability mass")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help="> 1 discourages repeats (default 1 = off)")
    p.add_argument("--stop", action="append", default=[], help='end the sample at this text, e.g. --stop "\\n\\n"')
    p.add_argument("--seed", type=int, default=None, help="make sampling reproducible")
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--no-cache", action="store_true", help="recompute every step instead of using the KV cache")
    p.add_argument("--weights", default="last", choices=["last", "best"], help="latest or best-by-val weights")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N, mps")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("chat", help="talk to a trained run in an interactive console (/help inside)")
    p.add_argument("run", help="run directory")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=40, help="0 = off")
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--max-new-tokens", type=int, default=200, help="tokens per answer")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help="> 1 discourages repeats (1 = off)")
    p.add_argument("--stop", action="append", default=[], help="end answers at this text (\\n = newline)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--weights", default="last", choices=["last", "best"])
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("eval", help="loss, perplexity and bits per byte of a run on data or text")
    p.add_argument("run", help="run directory")
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
    p.add_argument("--weights", default="last", choices=["last", "best"])
    p.add_argument("--device", default=None)
    p.add_argument(
        "--whole-word",
        default="run",
        choices=["run", "yes", "no"],
        help="masked LMs: mask whole words (yes), single tokens (no), or as the run trained (default)",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("fill", help="masked LMs: the likeliest tokens for each <|mask|> in a text")
    p.add_argument("run", help="run directory of a masked language model (train.objective = mlm)")
    p.add_argument("text", help="text with <|mask|> where tokens should be guessed (\\n for a newline)")
    p.add_argument("--top-k", type=int, default=5, help="guesses shown per mask (default 5)")
    p.add_argument("--weights", default="last", choices=["last", "best"])
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_fill)

    p = sub.add_parser("forgetting", help="experiment: train A then B vs A+B mixed; plot val loss on both")
    p.add_argument("--a", required=True, help="prepared dataset A (first in the sequential run)")
    p.add_argument("--b", required=True, help="prepared dataset B (same tokenizer as A)")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps per run (sequential: half on each)")
    p.add_argument("--out", required=True, help="folder for the two runs, forgetting.png and forgetting.json")
    p.add_argument("--preset", default="cpu-baby")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_forgetting)

    p = sub.add_parser("export", help="write a run as a Hugging Face transformers checkpoint folder")
    p.add_argument("run", help="run directory")
    p.add_argument("--format", default="hf", choices=["hf"], help="hf: GPT2LMHeadModel or LlamaForCausalLM")
    p.add_argument("--out", required=True, help="folder to write (replaced if it exists)")
    p.add_argument("--weights", default="last", choices=["last", "best"])
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="turn a local Hugging Face GPT-2 or Llama folder into a run directory")
    p.add_argument("source", help="folder with config.json and model.safetensors (or shards, or pytorch_model.bin)")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--tokenizer", help="a tokenizer to attach: ours, a HF tokenizer.json, or a folder with one")
    p.add_argument("--skip-memory-check", action="store_true", help=MEMORY_CHECK_HELP)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", help="presets with their parameter counts, or what a trained run is")
    p.add_argument("run", nargs="?", help="a run directory (default: list the presets)")
    p.add_argument("--vocab-size", type=int, default=None, help="count presets with this vocabulary size")
    p.set_defaults(func=cmd_info)

    add_serve_command(sub)
    add_tokenizer_commands(sub)
    add_viz_commands(sub)
    return parser


def _plain_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _launch_rank() -> int:
    """This process's rank under torchrun (0 when not launched by it)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _plain_warning
    if _launch_rank() != 0:
        warnings.simplefilter("ignore")  # under torchrun, rank 0's warnings speak for all ranks
    try:
        args.func(args)
    except GptkitError as err:
        if args.debug:
            raise
        rank = _launch_rank()
        if rank == 0 or not err.reported_by_rank_0:  # under torchrun, one copy of a shared message
            print(f"{f'rank {rank}: ' if rank else ''}error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if _launch_rank() == 0:
            print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `gptkit sample ... | head`
        return 0
    except OSError as err:  # a folder that cannot be written, a full disk: name the file and the reason
        if args.debug:
            raise
        where = f"{shown(err.filename)}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}; check the path and its permissions", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - the CLI is the one place that turns exceptions into exit codes
        if args.debug:
            raise
        where = f"rank {_launch_rank()}: " if _launch_rank() else ""
        print(f"{where}error: {type(err).__name__}: {err} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0
