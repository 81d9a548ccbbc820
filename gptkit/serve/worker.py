"""The model worker: one thread owns the model and runs queued requests one at a time, in arrival order.

That thread is the process's main thread (`gptkit serve` runs the HTTP server in another): PyTorch's CPU
kernels run several times slower from a second thread that uses more than one intra-op thread (measured:
64 tokens of the 0.8M cpu-baby model took 38 ms on the main thread, 160 ms on another).

Generation is the CLI's (`Run.stream_ids`), so a seeded request gives what `gptkit sample` gives, and no two
requests share a KV cache. Each request is a `Job` of one or more choices; the worker reports to the
request's handler through `emit` (thread-safe), always ending with a final event:
("text", index, piece) for each piece of text and ("done", index, finish_reason, completion_tokens) for
each choice; or, ending the job early, ("error", ApiError) or ("cancelled",). A job is cut short between
two tokens when its client went away (`cancelled`) or its deadline passed.
"""

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gptkit.sampling import SamplingConfig
from gptkit.serve.errors import ApiError

EMIT_INTERVAL_S = 0.02  # streamed text arrives in pieces at most 50 times a second
SHUTTING_DOWN = "the server is shutting down; retry on its next start"
TIMED_OUT = "the request timed out before it finished; ask for fewer tokens or raise the server's --timeout"


@dataclass
class Choice:
    index: int
    prompt_ids: list[int]
    seed: int | None


@dataclass
class Job:
    choices: list[Choice]
    sampling: SamplingConfig  # the request's settings; each choice brings its own seed
    deadline: float  # time.monotonic() by which the last token must be out
    emit: Callable[[tuple], None]
    stop_ids: frozenset = frozenset()  # tokens that end a choice (a chat model's end of turn)
    cancelled: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False  # set by the handler when it gave up waiting (then `cancelled` is set too)


@dataclass
class WorkerStats:
    pending: int = 0  # submitted and not finished: waiting or running
    completed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    failed: int = 0
    busy: bool = False


class ModelWorker:
    def __init__(self, run, max_queue: int):
        self.run = run
        self.jobs: queue.Queue = queue.Queue(maxsize=max_queue)
        self.stats = WorkerStats()
        self.lock = threading.Lock()
        self.running = False
        self.stopping = threading.Event()
        self.current: Job | None = None

    def submit(self, job: Job) -> None:
        if self.stopping.is_set():
            raise ApiError(503, SHUTTING_DOWN)
        with self.lock:
            self.stats.pending += 1
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            with self.lock:
                self.stats.pending -= 1
            raise ApiError(503, f"the server is busy: {self.jobs.maxsize} requests are waiting; retry later") from None

    def queued(self) -> int:
        return self.jobs.qsize()

    def stop(self) -> None:
        """Make `run_forever` return after the current token; the jobs left get a 503 (see `close`)."""
        self.stopping.set()

    def close(self) -> None:
        """Answer the running job (if any) and every queued one with a 503: the server is going away."""
        self.stopping.set()
        left = [self.current] if self.current is not None else []
        while True:
            try:
                left.append(self.jobs.get_nowait())
            except queue.Empty:
                break
        for job in left:
            job.emit(("error", ApiError(503, SHUTTING_DOWN)))

    def run_forever(self) -> None:
        """Run jobs until `stop` (call it on the main thread; see above)."""
        self.running = True
        try:
            while not self.stopping.is_set():
                try:  # a timeout, not a blocking get: Ctrl-C and `stop` are noticed within half a second
                    job = self.jobs.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._serve(job)
        finally:
            self.running = False

    def _serve(self, job: Job) -> None:
        self.current, self.stats.busy = job, True
        try:
            outcome = self._run(job)
        except Exception as error:  # noqa: BLE001 - one bad request must not take the worker down
            outcome = "failed"
            job.emit(("error", ApiError(500, f"generation failed: {type(error).__name__}: {error}")))
        self.current = None
        with self.lock:
            self.stats.busy = False
            self.stats.pending -= 1
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)

    def _late(self, job: Job) -> bool:
        return time.monotonic() > job.deadline

    def _stopped(self, job: Job) -> str | None:
        """Why `job` must end now ("cancelled" or "timed_out"), after sending its final event; None to go on."""
        if job.cancelled.is_set():
            job.emit(("cancelled",))
            return "timed_out" if job.timed_out else "cancelled"
        if self._late(job):
            job.emit(("error", ApiError(504, TIMED_OUT)))
            return "timed_out"
        if self.stopping.is_set():
            job.emit(("error", ApiError(503, SHUTTING_DOWN)))
            return "cancelled"
        return None

    def _run(self, job: Job) -> str:
        """Generate every choice of `job`; returns the stats counter it ends in."""
        for choice in job.choices:
            if outcome := self._stopped(job):
                return outcome
            new_ids: list[int] = []
            pieces = self.run.stream_ids(
                choice.prompt_ids,
                job.sampling.with_changes(seed=choice.seed),
                stop_ids=job.stop_ids,
                new_ids=new_ids,
                keep_going=lambda: not (job.cancelled.is_set() or self._late(job) or self.stopping.is_set()),
            )
            buffered, last_emit = [], time.monotonic()
            for piece in pieces:  # text goes out at most every EMIT_INTERVAL_S: waking the event loop for each
                buffered.append(piece)  # token made 64 cpu-baby tokens take 75 ms instead of 64 (measured)
                if time.monotonic() - last_emit >= EMIT_INTERVAL_S:
                    job.emit(("text", choice.index, "".join(buffered)))
                    buffered, last_emit = [], time.monotonic()
            if buffered:
                job.emit(("text", choice.index, "".join(buffered)))
            stopped = bool(new_ids) and new_ids[-1] in job.stop_ids
            stopped = stopped or any(s in self.run.tokenizer.decode(new_ids) for s in job.sampling.stop if s)
            if not stopped and len(new_ids) < job.sampling.max_new_tokens and (outcome := self._stopped(job)):
                return outcome
            job.emit(("done", choice.index, "stop" if stopped else "length", len(new_ids)))
        return "completed"
