"""`gptkit chat RUN`: an interactive console that streams the model's continuation of the conversation.

The model is a plain language model, so the "conversation" is one running text: each line you type is
added to it, and the model's continuation streams back and is added too. As much of that history as fits
the context window (the last `block_size` tokens) is what the model sees. Slash commands change the sampling
settings (/help lists them); a line ending in a backslash continues on the next; Ctrl-C stops an answer
without leaving; Ctrl-D or /quit leaves. Entry point: `chat(run, settings)`.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from gptkit.errors import GptkitError
from gptkit.generate import check_sampling_args

HELP = """commands:
  /temp X      temperature (0 = greedy)             /topk N    sample among the N likeliest (0 = off)
  /topp P      nucleus mass (1 = off)               /max N     tokens per answer
  /penalty X   repetition penalty (1 = off)         /seed N    reproducible answers (/seed alone: random)
  /stop TEXT   end answers at TEXT (\\n = newline; /stop alone: none)
  /reset       forget the conversation              /settings  show the settings
  /help        this list                            /quit      leave (or Ctrl-D)
A line ending in \\ continues on the next line. Ctrl-C stops an answer."""


@dataclass
class ChatSettings:
    temperature: float = 0.8
    top_k: int | None = 40
    top_p: float | None = None
    repetition_penalty: float = 1.0
    max_new_tokens: int = 200
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def describe(self) -> str:
        return (
            f"temperature {self.temperature}, top-k {self.top_k or 'off'}, top-p {self.top_p or 'off'}, "
            f"penalty {self.repetition_penalty}, max {self.max_new_tokens} tokens, "
            f"stop {self.stop or 'none'}, seed {self.seed if self.seed is not None else 'random'}"
        )


def _number(kind, value: str, name: str):
    try:
        return kind(value)
    except ValueError:
        raise GptkitError(f"/{name} needs a number, got {value!r}") from None


def apply_command(line: str, settings: ChatSettings) -> str:
    """Change `settings` as a slash command says; returns the reply to print ("quit" to leave, "reset")."""
    name, _, value = line[1:].partition(" ")
    value = value.strip()
    if name in ("quit", "exit", "q"):
        return "quit"
    if name == "reset":
        return "reset"
    if name == "help":
        return HELP
    if name == "settings":
        return settings.describe()
    if name == "stop":
        settings.stop = [value.replace("\\n", "\n").replace("\\t", "\t")] if value else []
        return f"stop {settings.stop or 'none'}"
    if name == "seed":
        settings.seed = _number(int, value, name) if value else None
        return f"seed {settings.seed if settings.seed is not None else 'random'}"
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
    trial = {**vars(settings), field_name: number}
    check_sampling_args(
        trial["temperature"], trial["top_k"], trial["top_p"], trial["max_new_tokens"], trial["repetition_penalty"]
    )  # refuse a bad value now, not at the next message
    setattr(settings, field_name, number)
    return f"{field_name.replace('_', ' ')} {number if number is not None else 'off'}"


def read_message(read: Callable[[str], str]) -> str:
    """One message: a line, or several when lines end in a backslash."""
    lines = [read(">: ")]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(read("... "))
    return "\n".join(lines)


def chat(run, settings: ChatSettings, read: Callable[[str], str] = input, out=sys.stdout) -> None:
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
                reply = apply_command(message.strip(), settings)
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
        history += respond(run, history, settings, out)


def respond(run, history: str, settings: ChatSettings, out) -> str:
    """Stream the model's continuation of `history`; returns the text shown.

    The model sees the end of the history, leaving room for the answer (up to half the window), so an
    answer does not start by pushing the question out.
    """
    block_size = run.model.config.block_size
    ids = run.tokenizer.encode(history)[-(block_size - min(settings.max_new_tokens, block_size // 2)) :]
    shown = []
    pieces = run.stream_ids(
        ids,
        settings.max_new_tokens,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        repetition_penalty=settings.repetition_penalty,
        stop=settings.stop,
        seed=settings.seed,
    )
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
