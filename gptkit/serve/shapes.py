"""How an answer looks: OpenAI's text completions and chat completions, whole (JSON) and streamed (chunks).

The app runs every request the same way (a job on the model worker, text events back); a shape turns those
events into the response objects of one endpoint. `TextShape` is `/v1/completions` (with `echo`),
`ChatShape` is `/v1/chat/completions` (a `message`, or `delta`s that open with the assistant's role).
"""


class TextShape:
    object = chunk_object = "text_completion"
    id_prefix = "cmpl"

    def __init__(self, completion):
        self.completion = completion

    def opening(self, index: int) -> str:
        """Text that comes before the generated text: the prompt itself with `echo`."""
        c = self.completion
        return c.prompts()[index // c.n] if c.echo else ""

    def choice(self, index: int, text: str, finish: str) -> dict:
        return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}

    def first_chunk(self, index: int) -> dict | None:
        opening = self.opening(index)
        return self.chunk(index, opening, None) if opening else None

    def chunk(self, index: int, text: str, finish: str | None) -> dict:
        return self.choice(index, text, finish)


class ChatShape:
    object, chunk_object = "chat.completion", "chat.completion.chunk"
    id_prefix = "chatcmpl"

    def opening(self, index: int) -> str:
        return ""

    def choice(self, index: int, text: str, finish: str) -> dict:
        message = {"role": "assistant", "content": text}
        return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}

    def first_chunk(self, index: int) -> dict:
        return {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}

    def chunk(self, index: int, text: str, finish: str | None) -> dict:
        delta = {"content": text} if text else {}
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
