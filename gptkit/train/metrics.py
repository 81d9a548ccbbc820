"""Training telemetry: `metrics.jsonl` (one JSON object per line) and throughput/MFU arithmetic.

`MetricsLog` appends records (`kind` "train" at log steps, "eval" at evals; `step` counts completed
optimizer steps) and, on resume, drops records from beyond the checkpoint so the file reads like one
uninterrupted run. `Throughput` turns wall time between log points into ms/step, tokens/s and MFU
(model FLOPs utilisation: achieved model FLOP/s over the peak FLOP/s of this machine).
"""

import contextlib
import json
import time
import warnings
from pathlib import Path

from gptkit.atomic import atomic_write_text

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Append-only JSON-lines log of training metrics."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / METRICS_FILE

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Keep only records up to `step`: a resumed run writes the later ones again, identically."""
        if self.path.exists():
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


def read_metrics(path) -> list[dict]:
    """All records of a metrics.jsonl. A torn last line left by a killed process is skipped quietly; any other
    line that is not a record (a JSON object with an integer `step`, a text `kind` and numbers otherwise) is
    skipped with a warning naming it."""
    records = []
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            if number < len(lines) and line.strip():
                warnings.warn(f"{path}:{number}: not JSON; line skipped", stacklevel=2)
            continue
        problem = record_problem(record)
        if problem:
            warnings.warn(f"{path}:{number}: {problem}; line skipped", stacklevel=2)
            continue
        records.append(record)
    return records


def record_problem(record) -> str:
    """Why `record` is not a metrics record, or "" when it is one."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    step = record.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return f"`step` is {step!r}, not a step number"
    if not isinstance(record.get("kind", ""), str):
        return f"`kind` is {record['kind']!r}, not a text"
    for key, value in record.items():
        if key != "kind" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"`{key}` is {value!r}, not a number"
    return ""


class Throughput:
    """Measures training speed between log points, leaving out time spent in eval and checkpoints."""

    def __init__(self, tokens_per_step: int, flops_per_token: float, peak_flops: float):
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self._reset()

    def _reset(self) -> None:
        self.start = time.perf_counter()
        self.excluded = 0.0
        self.steps = 0

    @contextlib.contextmanager
    def paused(self):
        """Time inside this block (eval, checkpointing) does not count as training time."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - began

    def measure(self, learned_tokens: float | None = None) -> dict:
        """ms/step, tokens/s and MFU over the steps since the last call; then start a new window. tokens/s counts
        `learned_tokens` when given (the targets of a chat's replies), else every token; MFU the work done."""
        seconds = max(time.perf_counter() - self.start - self.excluded, 1e-9)
        steps = max(self.steps, 1)
        processed_per_s = self.tokens_per_step * steps / seconds
        tokens_per_s = processed_per_s if learned_tokens is None else learned_tokens / seconds
        mfu = self.flops_per_token * processed_per_s / self.peak_flops if self.peak_flops else 0.0
        self._reset()
        return {"ms_per_step": 1000.0 * seconds / steps, "tokens_per_s": tokens_per_s, "mfu": mfu}
