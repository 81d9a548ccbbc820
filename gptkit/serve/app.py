"""The HTTP app: OpenAI-shaped completions and chat completions (JSON or server-sent events, shaped by
`shapes.py`), the model list, health, and the playground page. Request checks happen here, in the event loop;
generation happens on the model worker's thread, which sends text back through an asyncio queue. A request
ends its job however it ends: finished, client gone (streamed or not), or overdue. Entry point:
`build_app(run, settings)`.
"""

import asyncio
import contextlib
import hmac
import html
import json
import time
import uuid
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gptkit.chat.template import ConversationTooLong
from gptkit.errors import GptkitError
from gptkit.sampling import DEFAULT_SAMPLING
from gptkit.serve.errors import ApiError
from gptkit.serve.hosts import HostCheck, allowed_names
from gptkit.serve.http import JobStream, cancel_on_disconnect, next_event, read_body
from gptkit.serve.requests import parse_chat_request, parse_completion_request
from gptkit.serve.settings import ServeSettings
from gptkit.serve.shapes import ChatShape, TextShape
from gptkit.serve.worker import Choice, Job, ModelWorker
from gptkit.tokenizer.char import UnknownCharacterError
from gptkit.tokenizer.tables import token_pieces


def longest_token_chars(tokenizer, vocab_size: int) -> int:
    """An upper bound on the characters one token spells (its bytes), to refuse huge prompts before encoding."""
    specials = getattr(tokenizer, "specials", {})
    return max(len(piece or b"") for piece in [*token_pieces(tokenizer, vocab_size), *map(str.encode, specials)])


def encode_prompt(run, prompt: str, limit: int, longest: int) -> list[int]:
    """Token ids of one prompt, or ApiError(400) saying why not (unknown character, too long)."""

    def too_long(tokens: str) -> ApiError:
        return ApiError(
            400,
            f"prompt: {tokens} tokens, more than this server's limit of {limit} (the model's window is "
            f"{run.model.config.block_size} tokens); shorten it",
            "prompt",
            "context_length_exceeded",
        )

    if len(prompt) > limit * longest:  # no tokenization of megabytes of text just to refuse it
        raise too_long(f"at least {len(prompt) // longest}")
    try:
        ids = run.tokenizer.encode(prompt) if prompt else run.encode_prompt("")
    except UnknownCharacterError as error:
        where = f"character {error.char!r} (U+{ord(error.char):04X})"
        raise ApiError(400, f"prompt: {where} is not in the model's vocabulary", "prompt") from None
    except GptkitError as error:
        raise ApiError(400, f"prompt: {error}", "prompt") from None
    if len(ids) > limit:
        raise too_long(str(len(ids)))
    return ids


class CompletionsApp:
    def __init__(self, run, settings: ServeSettings):
        self.run = run
        self.settings = settings
        self.model_id = settings.model_name or run.run_dir.name
        self.prompt_limit = settings.max_prompt_tokens or run.model.config.block_size
        self.longest_token = longest_token_chars(run.tokenizer, run.tokenizer.vocab_size)
        self.worker = ModelWorker(run, settings.max_queue)
        self.created = int(time.time())

    # -- routes ------------------------------------------------------------------------------------------
    async def playground(self, request: Request) -> HTMLResponse:
        page = resources.files("gptkit.serve").joinpath("playground.html").read_text(encoding="utf-8")
        defaults = DEFAULT_SAMPLING  # the form starts where an API request that leaves the fields out does
        values = {
            "MODEL": html.escape(self.model_id),
            "MAX_TOKENS": self.settings.max_tokens,
            "MAX_NEW_TOKENS": min(defaults.max_new_tokens, self.settings.max_tokens),
            "TEMPERATURE": defaults.temperature,
            "TOP_K": defaults.top_k or 0,
            "TOP_P": defaults.top_p or 1,
            "CHAT": "true" if self.run.is_chat else "false",
        }
        for name, value in values.items():
            page = page.replace("{{" + name + "}}", str(value))
        return HTMLResponse(page)

    async def health(self, request: Request) -> JSONResponse:
        stats, alive = self.worker.stats, self.worker.running
        body = {"status": "ok" if alive else "the model worker has stopped", "model": self.model_id}
        body |= {"queued": self.worker.queued(), "pending": stats.pending, "busy": stats.busy}
        body |= {k: getattr(stats, k) for k in ("completed", "cancelled", "timed_out", "failed")}
        return JSONResponse(body, status_code=200 if alive else 503)

    async def models(self, request: Request) -> JSONResponse:
        self.check_caller(request)
        card = {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "gptkit"}
        card["chat"] = self.run.is_chat  # an extension: whether /v1/chat/completions can answer
        return JSONResponse({"object": "list", "data": [card]})

    async def completions(self, request: Request) -> Response:
        self.check_caller(request)
        body = await read_body(request, self.settings.max_body_bytes, self.settings.body_timeout_s)
        completion = parse_completion_request(body, self.settings)
        self.check_model(completion.model)
        try:
            self.run.check_generates()
        except GptkitError as error:
            raise ApiError(400, str(error)) from None
        prompt_ids = [
            await run_in_threadpool(encode_prompt, self.run, prompt, self.prompt_limit, self.longest_token)
            for prompt in completion.prompts()
        ]
        return await self.answer(request, completion, prompt_ids, completion.sampling(), TextShape(completion))

    async def chat_completions(self, request: Request) -> Response:
        self.check_caller(request)
        body = await read_body(request, self.settings.max_body_bytes, self.settings.body_timeout_s)
        chat = parse_chat_request(body, self.settings)
        self.check_model(chat.model)
        sampling = chat.sampling()
        messages = chat.as_messages()
        ids = await run_in_threadpool(
            chat_prompt_ids, self.run, messages, sampling, self.prompt_limit, self.longest_token
        )
        return await self.answer(request, chat, [ids], sampling, ChatShape(), stop_ids=self.run.chat_stop_ids)

    def check_model(self, model: str | None) -> None:
        if model not in (None, self.model_id):
            message = f"model {model!r} is not served here; this server has {self.model_id!r}"
            raise ApiError(404, message, "model", "model_not_found")

    async def answer(
        self, request, asked, prompt_ids: list[list[int]], sampling, shape, stop_ids: frozenset = frozenset()
    ) -> Response:
        """Generate `asked.n` choices for each prompt on the worker; answer whole or as server-sent events."""
        choices = [
            Choice(p * asked.n + i, ids, None if asked.seed is None else asked.seed + i)
            for p, ids in enumerate(prompt_ids)
            for i in range(asked.n)
        ]
        loop, events = asyncio.get_running_loop(), asyncio.Queue()

        def emit(event: tuple) -> None:  # called from the worker thread
            with contextlib.suppress(RuntimeError):  # the loop is gone (shutting down): nobody to tell
                loop.call_soon_threadsafe(events.put_nowait, event)

        job = Job(choices, sampling, time.monotonic() + self.settings.timeout_s, emit, stop_ids=stop_ids)
        self.worker.submit(job)
        meta = {"id": f"{shape.id_prefix}-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": self.model_id}
        prompt_tokens = sum(len(ids) for ids in prompt_ids)
        if asked.stream:
            return JobStream(
                self.stream_events(job, events, shape, {**meta, "object": shape.chunk_object}, prompt_tokens, asked),
                job,
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await self.whole(request, job, events, shape, {**meta, "object": shape.object}, prompt_tokens)

    # -- answers -----------------------------------------------------------------------------------------
    @staticmethod
    def usage(prompt_tokens: int, completion_tokens: int) -> dict:
        total = prompt_tokens + completion_tokens
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}

    async def whole(self, request, job: Job, events, shape, meta, prompt_tokens) -> Response:
        texts = {c.index: [shape.opening(c.index)] for c in job.choices}
        finished: dict[int, tuple[str, int]] = {}
        watcher = asyncio.create_task(cancel_on_disconnect(request, job))
        try:
            while len(finished) < len(job.choices):
                event = await next_event(job, events)
                if event[0] == "cancelled":
                    return Response(status_code=499)  # the client has gone: nobody reads this
                if event[0] == "error":
                    raise event[1]
                if event[0] == "text":
                    texts[event[1]].append(event[2])
                else:
                    finished[event[1]] = (event[2], event[3])
        finally:
            watcher.cancel()
            job.cancelled.set()  # no effect on a job that has already ended
        choices = [shape.choice(i, "".join(texts[i]), finished[i][0]) for i in sorted(texts)]
        usage = self.usage(prompt_tokens, sum(tokens for _, tokens in finished.values()))
        return JSONResponse({**meta, "choices": choices, "usage": usage})

    async def stream_events(self, job: Job, events, shape, meta, prompt_tokens, asked):
        def data(choice: dict) -> str:
            return f"data: {json.dumps({**meta, 'choices': [choice]})}\n\n"

        for c in job.choices:
            if (first := shape.first_chunk(c.index)) is not None:
                yield data(first)
        done, completion_tokens = 0, 0
        while done < len(job.choices):
            event = await next_event(job, events)
            if event[0] == "cancelled":
                return
            if event[0] == "error":
                yield f"data: {json.dumps(event[1].body())}\n\n"
                break
            if event[0] == "text":
                yield data(shape.chunk(event[1], event[2], None))
            else:
                done, completion_tokens = done + 1, completion_tokens + event[3]
                yield data(shape.chunk(event[1], "", event[2]))
        if done == len(job.choices) and asked.include_usage():
            usage = self.usage(prompt_tokens, completion_tokens)
            yield f"data: {json.dumps({**meta, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"

    # -- checks ------------------------------------------------------------------------------------------
    def check_caller(self, request: Request) -> None:
        """The API key when the server has one (Host and Origin were checked by `HostCheck` already)."""
        if not self.settings.api_key:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.settings.api_key}".encode()):
            what = "a wrong API key" if given else "no API key"
            raise ApiError(401, f"{what}: send the header 'Authorization: Bearer <key>' with the server's --api-key")


def chat_prompt_ids(run, messages: list[dict], sampling, limit: int, longest: int) -> list[int]:
    """Prompt ids for the reply to `messages`, or ApiError(400): not a chat model, a bad conversation, too long.
    A conversation that cannot fit is refused before it is encoded (each message takes 4 tokens or more)."""

    def too_long(what: str) -> ApiError:
        message = f"messages: {what}; send fewer or shorter messages, or a smaller max_tokens"
        return ApiError(400, message, "messages", "context_length_exceeded")

    if len(messages) * 4 > limit or sum(len(m["content"]) for m in messages) > limit * longest:
        raise too_long(f"the conversation is longer than this server's limit of {limit} tokens")
    try:
        ids, dropped = run.chat_prompt(messages, sampling.max_new_tokens)
    except ConversationTooLong as error:
        raise too_long(str(error).removeprefix("messages: ")) from None
    except GptkitError as error:
        raise ApiError(400, str(error), "messages") from None
    if dropped or len(ids) > limit:
        window = run.model.config.block_size
        raise too_long(f"the conversation does not fit the model's window of {window} tokens with room for the reply")
    return ids


async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    return error.response()


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    return ApiError(error.status_code, f"{request.method} {request.url.path}: {error.detail}").response()


def build_app(run, settings: ServeSettings) -> Starlette:
    """The ASGI app serving `run` (a loaded `gptkit.run.Run`) under `settings`."""
    api = CompletionsApp(run, settings)
    routes = [
        Route("/", api.playground, methods=["GET"]),
        Route("/health", api.health, methods=["GET"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/completions", api.completions, methods=["POST"]),
        Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
    ]
    middleware = [Middleware(HostCheck, names=allowed_names(settings.host, settings.allow_hosts))]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.api = api
    return app
