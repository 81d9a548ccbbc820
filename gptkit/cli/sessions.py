"""What `gptkit chat` remembers between messages, for the two kinds of model.

`TextSession` (a plain language model): the conversation is one running text; each message is added and the
model's continuation streams back and is added too; the model sees the end of it. `ChatSession` (a model
fine-tuned on conversations): the conversation is a list of messages rendered with the chat template; a reply
ends where the model closes its turn, and when the conversation outgrows the window the oldest turns are
dropped (the system message stays), with a note. Both leave room for the answer: up to half the window.
"""

from gptkit.chat.conversations import Message
from gptkit.sampling import SamplingConfig


def stream_to(out, pieces) -> str:
    """Write `pieces` to `out` as they come; Ctrl-C stops them. Returns the text written."""
    shown = []
    try:
        for piece in pieces:
            shown.append(piece)
            out.write(piece)
            out.flush()
    except KeyboardInterrupt:
        pieces.close()
        out.write(" [stopped]")
    return "".join(shown)


class TextSession:
    def __init__(self, run):
        self.run, self.text = run, ""

    def respond(self, message: str, sampling: SamplingConfig, out) -> None:
        self.text += message + "\n"
        block_size = self.run.model.config.block_size
        ids = self.run.tokenizer.encode(self.text)[-(block_size - min(sampling.max_new_tokens, block_size // 2)) :]
        answer = stream_to(out, self.run.stream_ids(ids, sampling))
        out.write("" if answer.endswith("\n") else "\n")
        self.text += answer if answer.endswith("\n") else answer + "\n"

    def reset(self) -> None:
        self.text = ""

    def history(self) -> str:
        return self.text or "(nothing yet)"

    def set_system(self, text: str) -> str:
        return "error: /system is for chat models (fine-tuned with --preset sft); this one continues text"


class ChatSession:
    def __init__(self, run):
        self.run, self.system, self.messages = run, None, []

    def respond(self, message: str, sampling: SamplingConfig, out) -> None:
        asked = [*self.messages, Message("user", message)]
        ids, dropped = self.run.chat_prompt(([self.system] if self.system else []) + asked, sampling.max_new_tokens)
        if dropped:
            out.write(
                f"(the conversation outgrew the model's {self.run.model.config.block_size} tokens: the oldest "
                f"{dropped} messages are forgotten{', the system message kept' if self.system else ''})\n"
            )
            asked = asked[dropped:]
        reply = stream_to(out, self.run.stream_ids(ids, sampling, stop_ids=self.run.chat_stop_ids))
        out.write("\n")
        if reply.strip():  # an empty reply is no turn to remember
            self.messages = [*asked, Message("assistant", reply)]

    def reset(self) -> None:
        self.messages = []

    def history(self) -> str:
        shown = ([self.system] if self.system else []) + self.messages
        return "\n".join(f"[{m.role}] {m.content}" for m in shown) or "(nothing yet)"

    def set_system(self, text: str) -> str:
        self.system = Message("system", text) if text else None
        return f"system message: {text!r}" if text else "no system message"
