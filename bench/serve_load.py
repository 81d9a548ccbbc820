"""Load on `gptkit serve`: requests/s and p50/p99 latency of 64-token completions at concurrency 1, 4 and 16.

Starts a real server process on loopback for a run (default: a `cpu-baby` model trained for 100 steps on
Tiny Shakespeare, made here; its size, not its quality, sets the speed), then sends `--requests` completions
at each concurrency from a thread pool of httpx clients (seeded, temperature 0.8, not streamed) and prints
JSON. Requests are served one at a time by the model worker, so requests/s stays about flat while latency
grows with the queue.
Usage: python bench/serve_load.py [--run DIR] [--requests 100] [--tokens 64] [--concurrency 1 4 16]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def quick_run(tmp: Path) -> Path:
    from gptkit.config import DataSource, resolve_config
    from gptkit.data.prepare import prepare
    from gptkit.train.loop import train

    prepare(["shakespeare"], tmp / "data", tokenizer="char")
    config = resolve_config(preset="cpu-baby", overrides=["train.max_iters=100", "train.eval_interval=100"])
    config.data = [DataSource(path=str(tmp / "data"))]
    train(config, tmp / "run", echo=lambda line: None, progress=False)
    return tmp / "run"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(url: str, concurrency: int, requests: int, tokens: int) -> dict:
    def one(i: int) -> float:
        body = {"prompt": "ROMEO:", "max_tokens": tokens, "temperature": 0.8, "seed": i}
        began = time.perf_counter()
        response = httpx.post(f"{url}/v1/completions", json=body, timeout=600)
        response.raise_for_status()
        assert response.json()["usage"]["completion_tokens"] == tokens
        return time.perf_counter() - began

    one(0)  # warm-up
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - began
    return {
        "concurrency": concurrency,
        "requests": requests,
        "requests_per_s": round(requests / wall, 2),
        "tokens_per_s": round(requests * tokens / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run directory to serve (default: train a small one here)")
    parser.add_argument("--requests", type=int, default=100, help="completions per concurrency level")
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens of each completion")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or quick_run(Path(tmp))
        command = [sys.executable, "-m", "gptkit", "serve", str(run_dir), "--port", "0", "--quiet", "--device", "cpu"]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            first: list[str] = []  # the address line, waited for with a limit
            reader = threading.Thread(target=lambda: first.append(server.stdout.readline()), daemon=True)
            reader.start()
            reader.join(timeout=120)
            if not first or " on http://" not in first[0]:
                raise SystemExit(f"the server did not start: {first}")
            url = first[0].split(" on ", 1)[1].split()[0]
            results = [measure(url, c, args.requests, args.tokens) for c in args.concurrency]
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps({"run": str(args.run or "cpu-baby, 100 steps"), "max_tokens": args.tokens, "levels": results}))


if __name__ == "__main__":
    main()
