"""`gptkit chat RUN`: an interactive console that streams the model's continuation of the conversation.

The model is a plain language model, so the "conversation" is one running text: each line you type is
added to it, and the model's continuation streams back and is added too. As much of that history as fits
the context window (the last `block_size` tokens) is what the model sees. Slash commands change the sampling
settings (/help lists them); a line ending in a backslash continues on the next; Ctrl-C stops an answer
without leaving; Ctrl-D or /quit leaves. Entry points: `chat(run, sampling)`, `add_chat_command`.
"""

import sys
from collections.abc import Callable

from gptkit.cli.common import DEVICE, RUN, SAMPLING, WEIGHTS, sampling_from
from gptkit.errors import ArgumentError, GptkitError
from gptkit.sampling import SamplingConfig

HELP = """commands:
  /temp X      temperature (0 = greedy)             /topk N    sample among the N likeliest (0 = off)
  /topp P      nucleus mass (1 = off)               /max N     tokens per answer
  /penalty X   repetition penalty (1 = off)         /seed N    reproducible answers (/seed alone: random)
  /stop TEXT   end answers at TEXT (\\n = newline; /stop alone: none)
  /reset       forget the conversation              /settings  show the settings
  /help        this list                            /quit      leave (or Ctrl-D)
A line ending in \\ continues on the next line. Ctrl-C stops an answer."""


def _number(kind, value: str, name: str):
    try:
        return kind(value)
    except ValueError:
        raise GptkitError(f"/{name} needs a number, got {value!r}") from None


def apply_command(line: str, sampling: SamplingConfig) -> tuple[str, SamplingConfig]:
    """What a slash command says: the reply to print ("quit" to leave, "reset") and the settings from now on."""
    name, _, value = line[1:].partition(" ")
    value = value.strip()
    if name in ("quit", "exit", "q"):
        return "quit", sampling
    if name == "reset":
        return "reset", sampling
    if name == "help":
        return HELP, sampling
    if name == "settings":
        return sampling.describe(), sampling
    if name == "stop":
        sampling = sampling.with_changes(stop=(value.replace("\\n", "\n").replace("\\t", "\t"),) if value else ())
        return f"stop {list(sampling.stop) or 'none'}", sampling
    if name == "seed":
        sampling = sampling.with_changes(seed=_number(int, value, name) if value else None)
        return f"seed {sampling.seed if sampling.seed is not None else 'random'}", sampling
    numeric = {
        "temp": ("temperature", float),
        "topk": ("top_k", int),
        "topp": ("top_p", float),
        "max": ("max_new_tokens", int),
        "penalty": ("repetition_penalty", float),
    }
    if name not in numeric or not value:
        raise GptkitError(f"/{name}{' ' + value if value else ''}: unknown command or missing value; see /help")
    field_name, kind = numeric[name]
    number = _number(kind, value, name)
    if field_name == "top_k" and number == 0 or field_name == "top_p" and number >= 1:
        number = None
    try:  # a bad value is refused now, not at the next message
        sampling = sampling.with_changes(**{field_name: number})
    except ArgumentError as err:
        raise GptkitError(f"/{name} {value}: {err.problem}") from None
    return f"{field_name.replace('_', ' ')} {number if number is not None else 'off'}", sampling


def read_message(read: Callable[[str], str]) -> str:
    """One message: a line, or several when lines end in a backslash."""
    lines = [read(">: ")]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(read("... "))
    return "\n".join(lines)


def chat(run, sampling: SamplingConfig, read: Callable[[str], str] = input, out=sys.stdout) -> None:
    """Run the console until /quit or end of input."""
    if run.tokenizer is None:
        raise GptkitError(f"{run.run_dir} has no tokenizer (weights imported alone); import it with --tokenizer PATH")
    try:
        import readline  # noqa: F401  (line editing and history for input(), where available)
    except ImportError:
        pass
    out.write(
        f"gptkit chat: {run.run_dir} ({run.model.num_params() / 1e6:.2f}M parameters). "
        "/help for commands, Ctrl-D to leave.\n"
    )
    history = ""
    while True:
        try:
            message = read_message(read)
        except EOFError:
            out.write("\n")
            return
        except KeyboardInterrupt:
            out.write("\n(Ctrl-D or /quit to leave)\n")
            continue
        if message.startswith("/"):
            try:
                reply, sampling = apply_command(message.strip(), sampling)
            except GptkitError as err:
                reply = f"error: {err}"
            if reply == "quit":
                return
            if reply == "reset":
                history, reply = "", "conversation forgotten"
            out.write(reply + "\n")
            continue
        try:
            run.tokenizer.encode(message)  # a message the model cannot read is refused, not kept in the history
        except GptkitError as err:
            out.write(f"error: {err}\n")
            continue
        history += message + "\n"
        history += respond(run, history, sampling, out)


def respond(run, history: str, sampling: SamplingConfig, out) -> str:
    """Stream the model's continuation of `history`; returns the text shown.

    The model sees the end of the history, leaving room for the answer (up to half the window), so an
    answer does not start by pushing the question out.
    """
    block_size = run.model.config.block_size
    ids = run.tokenizer.encode(history)[-(block_size - min(sampling.max_new_tokens, block_size // 2)) :]
    shown = []
    pieces = run.stream_ids(ids, sampling)
    try:
        for piece in pieces:
            shown.append(piece)
            out.write(piece)
            out.flush()
    except KeyboardInterrupt:
        pieces.close()
        out.write(" [stopped]")
    text = "".join(shown)
    out.write("\n" if not text.endswith("\n") else "")
    return text if text.endswith("\n") else text + "\n"


def cmd_chat(args) -> None:
    from gptkit.run import load_run

    sampling = sampling_from(args)  # a bad option fails before the model is loaded
    run = load_run(args.run, weights=args.weights, device=args.device or "auto")
    run.check_generates()
    chat(run, sampling)


def add_chat_command(sub) -> None:
    p = sub.add_parser(
        "chat",
        parents=[RUN, SAMPLING, WEIGHTS, DEVICE],
        help="talk to a trained run in an interactive console (/help inside)",
    )
    p.set_defaults(func=cmd_chat)
