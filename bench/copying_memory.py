"""The copying measure on a corpus larger than memory should hold: peak RSS and time on a synthetic 1 GB
token file, as one JSON object.

A shard of 268M uint32 token ids (1 GiB, random ids below 50,257, written with plain writes so none of it is
in this process's memory) is scanned by `gptkit.copying.copy_measures` for 16 texts of 256 tokens: 8 random,
8 holding a span of the corpus (16 to 256 tokens long) planted at a random place. The measure must find the
longest planted span exactly and keep the peak RSS under 1 GiB. The machine is recorded (`bench/machine.py`).
Usage: python bench/copying_memory.py [--gib 1.0]
"""

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine

from gptkit.copying import copy_measures, split_chunks

VOCAB = 50257
SPANS = (16, 24, 32, 48, 64, 100, 180, 256)


def write_corpus(path: Path, tokens: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "wb") as file:
        for start in range(0, tokens, 1 << 24):
            rng.integers(0, VOCAB, min(1 << 24, tokens - start), dtype=np.uint32).tofile(file)


def planted_texts(corpus: np.memmap, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = [rng.integers(0, VOCAB, 256, dtype=np.uint32) for _ in SPANS]
    for span in SPANS:
        start = int(rng.integers(0, len(corpus) - span))
        text = rng.integers(0, VOCAB, 256, dtype=np.uint32)
        at = int(rng.integers(0, 256 - span + 1))
        text[at : at + span] = np.fromfile(corpus.filename, dtype=np.uint32, count=span, offset=start * 4)
        texts.append(text)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="size of the synthetic token file")
    args = parser.parse_args()
    tokens = int(args.gib * 2**30) // 4
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train-00000.bin"
        began = time.perf_counter()
        write_corpus(path, tokens)
        wrote = time.perf_counter() - began
        corpus = np.memmap(path, dtype=np.uint32, mode="r")
        texts = planted_texts(corpus)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        began = time.perf_counter()
        report = copy_measures(texts, split_chunks([corpus]))
        seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {
        "benchmark": "copying_memory",
        "corpus_tokens": tokens,
        "corpus_bytes": tokens * 4,
        "texts": len(texts),
        "longest_planted_span": max(SPANS),
        "longest_found": report.longest,
        "copied": report.to_dict()["copied"],
        "seconds_to_write_corpus": round(wrote, 1),
        "seconds_to_measure": round(seconds, 1),
        "peak_rss_mib": round(peak / 2**20, 1),
        "peak_rss_mib_before_measuring": round(rss_before / 2**20, 1),
        "targets": {"peak_rss_mib": "< 1024", "longest_found": f"== {max(SPANS)}"},
        "machine": machine(torch.device("cpu")),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
