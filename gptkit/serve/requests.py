"""The bodies of POST /v1/completions and /v1/chat/completions: OpenAI's fields, checked, with errors that
name the field.

Unknown fields are refused (a typo must not pass silently), and so are OpenAI features gptkit has no
answer for (logprobs, suffix, best_of > n, presence/frequency penalties) rather than ignored. A field sent
as null takes its default. The sampling defaults are gptkit's own (`gptkit.sampling.SamplingConfig`, shared
with `gptkit sample` and `chat`), not OpenAI's. `top_k` and `repetition_penalty` are extensions, as in other
OpenAI-compatible servers.
"""

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gptkit.sampling import DEFAULT_SAMPLING, SamplingConfig
from gptkit.serve.errors import ApiError
from gptkit.serve.settings import ServeSettings

_s = DEFAULT_SAMPLING


class SamplingRequest(BaseModel):
    """The fields both endpoints share: the model, how much to generate, and how."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "5" or true is no max_tokens, as with OpenAI

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)  # omitted: the shared default, within the server's --max-tokens
    temperature: float = Field(_s.temperature, ge=0.0, le=2.0)
    top_p: float = Field(_s.top_p or 1.0, gt=0.0, le=1.0)  # 1 = off
    top_k: int = Field(_s.top_k or 0, ge=0)  # 0 = off
    repetition_penalty: float = Field(_s.repetition_penalty, gt=0.0)
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: dict | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=2**62)
    user: str | None = None
    # Accepted only at their no-op values:
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict | None = None

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    def sampling(self) -> SamplingConfig:
        """The request's settings (its seed is each choice's business: seed + i for the i-th)."""
        return SamplingConfig(
            max_new_tokens=self.max_tokens,
            temperature=self.temperature,
            top_k=self.top_k or None,
            top_p=self.top_p if self.top_p < 1.0 else None,
            repetition_penalty=self.repetition_penalty,
            stop=tuple(self.stops()),
        )

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def prompt_count(self) -> int:
        return 1

    def refusals(self) -> list[tuple[bool, str, str]]:
        """(wrong, field, what to do) for what this endpoint does not support."""
        return []


class CompletionRequest(SamplingRequest):
    prompt: str | list[str] = ""
    echo: bool = False
    logprobs: int | None = None  # accepted only at their no-op values, like those below
    suffix: str | None = None
    best_of: int | None = None

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def prompt_count(self) -> int:
        return len(self.prompts())

    def refusals(self) -> list[tuple[bool, str, str]]:
        return [
            (not self.prompts(), "prompt", "give at least one prompt"),
            (self.logprobs is not None, "logprobs", "not supported by gptkit; leave it out"),
            (self.suffix is not None, "suffix", "not supported by gptkit; leave it out"),
            (self.best_of not in (None, self.n), "best_of", "only best_of = n is supported"),
        ]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: str
    content: str
    name: str | None = None  # OpenAI's optional speaker name: accepted, not shown to the model


class ChatRequest(SamplingRequest):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = Field(None, ge=1)  # OpenAI's newer name for max_tokens
    logprobs: bool | None = None  # accepted only at their no-op values
    top_logprobs: int | None = None

    def as_messages(self) -> list[dict]:
        return [{"role": m.role, "content": m.content} for m in self.messages]

    def refusals(self) -> list[tuple[bool, str, str]]:
        return [
            (not self.messages, "messages", "give at least one message"),
            (
                self.max_completion_tokens is not None and self.max_tokens != self.max_completion_tokens,
                "max_completion_tokens",
                "give max_tokens or max_completion_tokens, not two different ones",
            ),
            (bool(self.logprobs) or self.top_logprobs is not None, "logprobs", "not supported by gptkit; leave it out"),
        ]


def _field_error(error: ValidationError) -> ApiError:
    first = error.errors()[0]
    where = str(first["loc"][0]) if first["loc"] else "body"  # the top-level field, also inside a union
    if first["type"] == "extra_forbidden":
        return ApiError(
            400,
            f"unknown or unsupported field {'.'.join(str(part) for part in error.errors()[0]['loc'])!r}; gptkit takes "
            "OpenAI's text and sampling fields (plus top_k, repetition_penalty), not tools or response formats",
            where,
        )
    path = ".".join(str(part) for part in first["loc"]) or "body"  # e.g. messages.1.content
    return ApiError(400, f"{path}: {first['msg']} (got {first.get('input')!r})"[:500], where)


def parse_completion_request(body: bytes, settings: ServeSettings) -> CompletionRequest:
    """Parse and check a /v1/completions body; raise ApiError(400) naming the first thing that is wrong."""
    return parse_request(body, settings, CompletionRequest)


def parse_chat_request(body: bytes, settings: ServeSettings) -> ChatRequest:
    """Parse and check a /v1/chat/completions body; raise ApiError(400) naming the first thing that is wrong."""
    return parse_request(body, settings, ChatRequest)


def parse_request(body: bytes, settings: ServeSettings, kind: type[SamplingRequest]):
    """A request of `kind` from its JSON body, checked against the server's limits."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, an int too long, nesting too deep
        raise ApiError(400, f"the request body is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    data = {key: value for key, value in data.items() if value is not None}  # null = the default
    try:
        request = kind.model_validate(data)
    except ValidationError as error:
        raise _field_error(error) from None
    newer = getattr(request, "max_completion_tokens", None)  # chat's newer name for it
    if request.max_tokens is None:
        request.max_tokens = newer or min(_s.max_new_tokens, settings.max_tokens)
    checks = [
        (request.max_tokens > settings.max_tokens, "max_tokens", f"at most {settings.max_tokens} (--max-tokens)"),
        (
            request.n * request.prompt_count() > settings.max_n,
            "n",
            f"at most {settings.max_n} completions per request (prompts x n)",
        ),
        (0 < request.temperature < 1e-3, "temperature", "use 0 for greedy decoding, or at least 0.001"),
        (len(request.stops()) > 4, "stop", "at most 4 stop strings"),
        *request.refusals(),
        (
            request.presence_penalty or request.frequency_penalty,
            "presence_penalty",
            "not supported; use repetition_penalty",
        ),
        (bool(request.logit_bias), "logit_bias", "not supported by gptkit; leave it out"),
    ]
    for wrong, param, what in checks:
        if wrong:
            raise ApiError(400, f"{param}: {what}", param)
    return request
