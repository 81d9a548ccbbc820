"""Streaming prepare on a generated corpus: MB/s with 1 and 2 workers, peak memory, and tiktoken beside it.

Writes a corpus of `--gb` GB (Tiny Shakespeare and War and Peace repeated, in 100 MB files) to a temp
folder, prepares it with the real GPT-2 BPE (from tests/fixtures) in a child process per worker count, and
samples the resident memory of that process and its workers together (from /proc) to report the peak.
Then encodes a 100 MB slice with tiktoken's `encode_ordinary_batch` on the same vocabulary, in this process.
Target (issue 6): peak RSS under 1 GiB for 2 GB. Usage: python bench/prepare_speed.py [--gb 2] [--workers 1 2]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gptkit.sources import BUNDLED
from gptkit.tokenizer.formats import import_gpt2

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "gpt2"
FILE_BYTES = 100 * 2**20


def write_corpus(folder: Path, gigabytes: float) -> int:
    seed = BUNDLED["shakespeare"].read_text(encoding="utf-8") + BUNDLED["warandpeace"].read_text(encoding="utf-8")
    unit = (seed * (FILE_BYTES // len(seed) + 1))[:FILE_BYTES]
    total = 0
    for index in range(max(1, round(gigabytes * 2**30 / FILE_BYTES))):
        (folder / f"part-{index:03d}.txt").write_text(unit, encoding="utf-8")
        total += len(unit.encode("utf-8"))
    return total


def tree_rss(pid: int) -> int:
    """Resident bytes of process `pid` and all its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


def timed_prepare(corpus: Path, tokenizer: Path, out: Path, workers: int) -> dict:
    code = (
        "import sys; from gptkit.data.prepare import prepare; "
        f"prepare([{str(corpus)!r}], {str(out)!r}, tokenizer={str(tokenizer)!r}, workers={workers})"
    )
    began = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code])
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss(child.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - began
    if child.returncode:
        raise SystemExit(f"prepare failed with exit code {child.returncode}")
    meta = json.loads((out / "meta.json").read_text())
    return {
        "workers": workers,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak / 2**20),
        "tokens": meta["train_tokens"] + meta["val_tokens"],
        "shards": sum(len(s) for s in meta["splits"].values()),
    }


def tiktoken_mb_s(tok, corpus: Path) -> float:
    encoding = tok._tiktoken_encoding()
    text = (corpus / "part-000.txt").read_text(encoding="utf-8")
    pieces = [text[i : i + 2**20] for i in range(0, len(text), 2**20)]
    began = time.perf_counter()
    encoding.encode_ordinary_batch(pieces, num_threads=2)
    return len(text.encode("utf-8")) / (time.perf_counter() - began) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="corpus size in GB (default 2)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "corpus").mkdir()
        corpus_bytes = write_corpus(tmp / "corpus", args.gb)
        tok = import_gpt2(FIXTURES / "encoder.json", FIXTURES / "vocab.bpe")
        tok.save(tmp / "gpt2.json")
        runs = []
        for workers in args.workers:
            result = timed_prepare(tmp / "corpus", tmp / "gpt2.json", tmp / f"out{workers}", workers)
            result["mb_s"] = round(corpus_bytes / result["seconds"] / 1e6, 2)
            runs.append(result)
        print(
            json.dumps(
                {
                    "corpus_bytes": corpus_bytes,
                    "tokenizer": "gpt2 (50,257)",
                    "prepare": runs,
                    "tiktoken_encode_ordinary_batch_2_threads_mb_s": round(tiktoken_mb_s(tok, tmp / "corpus"), 2),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
