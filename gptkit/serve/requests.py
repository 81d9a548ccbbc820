"""The body of POST /v1/completions: OpenAI's completions fields, checked, with errors that name the field.

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


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" or true is no max_tokens, as with OpenAI

    model: str | None = None
    prompt: str | list[str] = ""
    max_tokens: int = Field(_s.max_new_tokens, ge=1)
    temperature: float = Field(_s.temperature, ge=0.0, le=2.0)
    top_p: float = Field(_s.top_p or 1.0, gt=0.0, le=1.0)  # 1 = off
    top_k: int = Field(_s.top_k or 0, ge=0)  # 0 = off
    repetition_penalty: float = Field(_s.repetition_penalty, gt=0.0)
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: dict | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=2**62)
    echo: bool = False
    user: str | None = None
    # Accepted only at their no-op values:
    logprobs: int | None = None
    suffix: str | None = None
    best_of: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict | None = None

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

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


def _field_error(error: ValidationError) -> ApiError:
    first = error.errors()[0]
    where = str(first["loc"][0]) if first["loc"] else "body"  # the top-level field, also inside a union
    if first["type"] == "extra_forbidden":
        return ApiError(
            400,
            f"unknown field {where!r}; the fields are those of OpenAI completions (plus top_k, repetition_penalty)",
            where,
        )
    return ApiError(400, f"{where}: {first['msg']} (got {first.get('input')!r})"[:500], where)


def parse_completion_request(body: bytes, settings: ServeSettings) -> CompletionRequest:
    """Parse and check a request body; raise ApiError(400) naming the first thing that is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, an int too long, nesting too deep
        raise ApiError(400, f"the request body is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object with at least a 'prompt'")
    data = {key: value for key, value in data.items() if value is not None}  # null = the default
    try:
        request = CompletionRequest.model_validate(data)
    except ValidationError as error:
        raise _field_error(error) from None
    checks = [
        (request.max_tokens > settings.max_tokens, "max_tokens", f"at most {settings.max_tokens} (--max-tokens)"),
        (
            request.n * len(request.prompts()) > settings.max_n,
            "n",
            f"at most {settings.max_n} completions per request (prompts x n)",
        ),
        (0 < request.temperature < 1e-3, "temperature", "use 0 for greedy decoding, or at least 0.001"),
        (not request.prompts(), "prompt", "give at least one prompt"),
        (len(request.stops()) > 4, "stop", "at most 4 stop strings"),
        (request.logprobs is not None, "logprobs", "not supported by gptkit; leave it out"),
        (request.suffix is not None, "suffix", "not supported by gptkit; leave it out"),
        (request.best_of not in (None, request.n), "best_of", "only best_of = n is supported"),
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
