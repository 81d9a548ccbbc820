"""HTTP plumbing shared by the API's routes: reading a request body with limits, following a job's events, and
a streamed response that cancels its job however it ends. Nothing here knows what a completion is.
"""

import asyncio
import time

from starlette.requests import Request
from starlette.responses import StreamingResponse

from gptkit.serve.errors import ApiError
from gptkit.serve.worker import TIMED_OUT, Job

OVERDUE_GRACE_S = 0.5  # past its deadline, a request waits this long for the worker's own 504, then answers itself


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
