"""The `gptkit` command line: the entry point `main` and the parser, one module per command family.

Each family module (`data`, `train`, `generate`, `chat`, `evaluate`, `hf`, `info`, `serve`, `tokenizer`, `viz`)
registers its commands; options shared by several commands are parent parsers in `common`. `main` parses
arguments, calls the library, and turns `GptkitError` into a one-line message and exit code 2 (any other
exception: exit 1, with the traceback only under `--debug`). Heavy modules are imported inside each command,
so that `gptkit --help` is instant.
"""

import argparse
import os
import sys
import warnings

from gptkit.cli.chat import add_chat_command
from gptkit.cli.data import add_data_commands
from gptkit.cli.evaluate import add_evaluate_commands
from gptkit.cli.generate import add_generate_commands
from gptkit.cli.hf import add_hf_commands
from gptkit.cli.info import add_info_command
from gptkit.cli.serve import add_serve_command
from gptkit.cli.tokenizer import add_tokenizer_commands
from gptkit.cli.train import add_train_commands
from gptkit.cli.viz import add_viz_commands
from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import shown

COMMAND_FAMILIES = (
    add_data_commands,
    add_train_commands,
    add_generate_commands,
    add_chat_command,
    add_evaluate_commands,
    add_hf_commands,
    add_info_command,
    add_serve_command,
    add_tokenizer_commands,
    add_viz_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gptkit", description="Build a GPT from scratch on your own text.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_commands in COMMAND_FAMILIES:
        add_commands(sub)
    _remember_flags(parser)
    return parser


def _plain_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _launch_rank() -> int:
    """This process's rank under torchrun (0 when not launched by it)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _as_typed(err: GptkitError, args) -> str:
    """The error in the user's terms: a bad argument is named by the flag they typed, when the command has it."""
    if isinstance(err, ArgumentError) and err.flag in getattr(args, "flags", ()):
        return err.on_command_line()
    return str(err)


def _remember_flags(parser: argparse.ArgumentParser) -> None:
    """Give every command's parsed args the set of its flags (`args.flags`), for `_as_typed`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                _remember_flags(command)
    parser.set_defaults(flags=frozenset(s for a in parser._actions for s in a.option_strings))


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
            print(f"{f'rank {rank}: ' if rank else ''}error: {_as_typed(err, args)}", file=sys.stderr)
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
