"""The HTTP app: OpenAI-shaped completions (JSON or server-sent events), the model list, health, and the
playground page. Request checks happen here, in the event loop; generation happens on the model worker's
thread, which sends text back through an asyncio queue. A request ends its job however it ends: finished,
client gone (streamed or not), or overdue. Entry point: `build_app(run, settings)`.
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
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gptkit.errors import GptkitError
from gptkit.sampling import DEFAULT_SAMPLING
from gptkit.serve.errors import ApiError
from gptkit.serve.hosts import HostCheck, allowed_names
from gptkit.serve.requests import CompletionRequest, parse_completion_request
from gptkit.serve.settings import ServeSettings
from gptkit.serve.worker import TIMED_OUT, Choice, Job, ModelWorker
from gptkit.tokenizer.char import UnknownCharacterError
from gptkit.tokenizer.tables import token_pieces

OVERDUE_GRACE_S = 0.5  # past its deadline, a request waits this long for the worker's own 504, then answers itself


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


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes, and with 408 when it
    has not all arrived within `timeout_s` (a client trickling bytes would hold the connection forever)."""
    declared = request.headers.get("content-length", "")
    too_big = ApiError(413, f"the request body is larger than the server's limit of {limit:,} bytes; send less")
    if declared.isdigit() and int(declared) > limit:
        raise too_big

    async def receive_all() -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_big
        return bytes(body)

    try:
        return await asyncio.wait_for(receive_all(), timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout_s:g} s; send it at once") from None


async def cancel_on_disconnect(request: Request, job: Job) -> None:
    """Wait for the client to go away (the body is already read), then cancel its job."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    job.cancelled.set()


async def next_event(job: Job, events: asyncio.Queue) -> tuple:
    """The worker's next event for `job`; past the deadline (still queued, or a stuck worker) a 504 instead."""
    try:
        return await asyncio.wait_for(events.get(), max(0.0, job.deadline + OVERDUE_GRACE_S - time.monotonic()))
    except asyncio.TimeoutError:  # the builtin TimeoutError from Python 3.11
        job.timed_out = True
        job.cancelled.set()
        return ("error", ApiError(504, TIMED_OUT))


class JobStream(StreamingResponse):
    """Server-sent events that cancel their job however the response ends, even before the first byte."""

    def __init__(self, content, job: Job, **kw):
        super().__init__(content, **kw)
        self.job = job

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.cancelled.set()  # no effect on a job that has already ended
            await self.body_iterator.aclose()


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
        return JSONResponse({"object": "list", "data": [card]})

    async def completions(self, request: Request) -> Response:
        self.check_caller(request)
        body = await read_body(request, self.settings.max_body_bytes, self.settings.body_timeout_s)
        completion = parse_completion_request(body, self.settings)
        if completion.model not in (None, self.model_id):
            message = f"model {completion.model!r} is not served here; this server has {self.model_id!r}"
            raise ApiError(404, message, "model", "model_not_found")
        try:
            self.run.check_generates()
        except GptkitError as error:
            raise ApiError(400, str(error)) from None
        sampling = completion.sampling()
        prompt_ids = [
            await run_in_threadpool(encode_prompt, self.run, prompt, self.prompt_limit, self.longest_token)
            for prompt in completion.prompts()
        ]
        choices = [
            Choice(p * completion.n + i, ids, None if completion.seed is None else completion.seed + i)
            for p, ids in enumerate(prompt_ids)
            for i in range(completion.n)
        ]
        loop, events = asyncio.get_running_loop(), asyncio.Queue()

        def emit(event: tuple) -> None:  # called from the worker thread
            with contextlib.suppress(RuntimeError):  # the loop is gone (shutting down): nobody to tell
                loop.call_soon_threadsafe(events.put_nowait, event)

        deadline = time.monotonic() + self.settings.timeout_s
        job = Job(choices, sampling, deadline, emit)
        self.worker.submit(job)
        meta = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time())}
        meta["model"] = self.model_id
        prompt_tokens = sum(len(ids) for ids in prompt_ids)
        if completion.stream:
            return JobStream(
                self.stream_events(job, events, completion, meta, prompt_tokens),
                job,
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await self.whole(request, job, events, completion, meta, prompt_tokens)

    # -- answers -----------------------------------------------------------------------------------------
    @staticmethod
    def usage(prompt_tokens: int, completion_tokens: int) -> dict:
        total = prompt_tokens + completion_tokens
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}

    async def whole(self, request, job: Job, events, completion: CompletionRequest, meta, prompt_tokens) -> Response:
        echo = completion.echo
        texts = {c.index: [completion.prompts()[c.index // completion.n]] if echo else [] for c in job.choices}
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
        choices = [
            {"text": "".join(texts[i]), "index": i, "logprobs": None, "finish_reason": finished[i][0]}
            for i in sorted(texts)
        ]
        usage = self.usage(prompt_tokens, sum(tokens for _, tokens in finished.values()))
        return JSONResponse({**meta, "choices": choices, "usage": usage})

    async def stream_events(self, job: Job, events, completion: CompletionRequest, meta, prompt_tokens):
        def chunk(index: int, text: str, finish: str | None) -> str:
            choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
            return f"data: {json.dumps({**meta, 'choices': [choice]})}\n\n"

        if completion.echo:
            for c in job.choices:
                yield chunk(c.index, completion.prompts()[c.index // completion.n], None)
        done, completion_tokens = 0, 0
        while done < len(job.choices):
            event = await next_event(job, events)
            if event[0] == "cancelled":
                return
            if event[0] == "error":
                yield f"data: {json.dumps(event[1].body())}\n\n"
                break
            if event[0] == "text":
                yield chunk(event[1], event[2], None)
            else:
                done, completion_tokens = done + 1, completion_tokens + event[3]
                yield chunk(event[1], "", event[2])
        if done == len(job.choices) and completion.include_usage():
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
    ]
    middleware = [Middleware(HostCheck, names=allowed_names(settings.host, settings.allow_hosts))]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.api = api
    return app
