"""`gptkit chat RUN`: an interactive console that streams the model's answers.

With a chat model (fine-tuned with `--preset sft`) the conversation is a list of messages in the chat template;
with a plain language model it is one running text the model continues (see `sessions.py`). Slash commands
change the sampling settings and the conversation (/help lists them); a line ending in a backslash continues
on the next; Ctrl-C stops an answer without leaving; Ctrl-D or /quit leaves. Entry points: `chat(run,
sampling)`, `add_chat_command`.
"""

import sys
from collections.abc import Callable

from gptkit.cli.common import DEVICE, QUANTIZE, RUN, SAMPLING, WEIGHTS, sampling_from
from gptkit.cli.sessions import ChatSession, TextSession
from gptkit.errors import ArgumentError, GptkitError
from gptkit.sampling import SamplingConfig

HELP = """commands:
  /temp X      temperature (0 = greedy)             /topk N    sample among the N likeliest (0 = off)
  /topp P      nucleus mass (1 = off)               /max N     tokens per answer
  /penalty X   repetition penalty (1 = off)         /seed N    reproducible answers (/seed alone: random)
  /stop TEXT   end answers at TEXT (\\n = newline; /stop alone: none)
  /reset       forget the conversation              /settings  show the settings
  /system TEXT the system message (chat models)     /history   the conversation so far
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
    if field_name == "top_k" and number == 0 or field_name == "top_p" and number == 1:
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
    session = ChatSession(run) if run.is_chat else TextSession(run)
    kind = "a chat model" if run.is_chat else "a text model: it continues what you type"
    out.write(
        f"gptkit chat: {run.run_dir} ({run.model.num_params() / 1e6:.2f}M parameters, {kind}). "
        "/help for commands, Ctrl-D to leave.\n"
    )
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
            reply, sampling = _command(message.strip(), sampling, session)
            if reply == "quit":
                return
            out.write(reply + "\n")
            continue
        try:
            run.tokenizer.encode(message)  # a message the model cannot read is refused, not kept in the history
            session.respond(message, sampling, out)
        except GptkitError as err:
            out.write(f"error: {err}\n")


def _command(line: str, sampling: SamplingConfig, session) -> tuple[str, SamplingConfig]:
    """The reply to a slash command, and the sampling settings from now on."""
    name, _, value = line[1:].partition(" ")
    if name == "system":
        return session.set_system(value.strip()), sampling
    if name == "history":
        return session.history(), sampling
    try:
        reply, sampling = apply_command(line, sampling)
    except GptkitError as err:
        return f"error: {err}", sampling
    if reply == "reset":
        session.reset()
        reply = "conversation forgotten"
    return reply, sampling


def cmd_chat(args) -> None:
    from gptkit.run import load_run

    sampling = sampling_from(args)  # a bad option fails before the model is loaded
    run = load_run(args.run, weights=args.weights, device=args.device or "auto", quantize=args.quantize)
    run.check_generates()
    chat(run, sampling)


def add_chat_command(sub) -> None:
    p = sub.add_parser(
        "chat",
        parents=[RUN, SAMPLING, WEIGHTS, DEVICE, QUANTIZE],
        help="talk to a trained run in an interactive console (/help inside)",
    )
    p.set_defaults(func=cmd_chat)
