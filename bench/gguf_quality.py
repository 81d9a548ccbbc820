"""What GGUF's f32, f16 and q8_0 cost in quality: perplexity on held-out Tiny Shakespeare through llama.cpp
(llama-cpp-python) next to gptkit's own on the same windows, and the file sizes, as one JSON object.

Two runs are trained through the real command line (`gptkit train`, char tokenizer, `--steps` steps each):
`cpu-baby` (GPT-2-style: llama.cpp's gpt2 architecture) and `llama-tiny` (RoPE, RMSNorm, SwiGLU, GQA: its
llama architecture); or pass `--run DIR` (repeatable) for runs of your own. Each is exported with `gptkit
export --format gguf --outtype T` and scored on `--windows` non-overlapping block-size windows from the end
of the val split: every token but the first of a window is predicted from the ones before it in the window.
llama.cpp keeps its keys and values in float32 here, so the figures are the weights' precision alone.
Usage: python bench/gguf_quality.py [--steps 2000] [--windows 64] [--run DIR ...]
"""

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from machine import machine

import gptkit

OUTTYPES = ("f32", "f16", "q8_0")


def train_run(root: Path, preset: str, steps: int) -> Path:
    data, out = root / "data", root / preset
    if not data.exists():
        gptkit_cli(["prepare", "shakespeare", "--tokenizer", "char", "--out", str(data)])
    settings = [f"train.max_iters={steps}", f"train.eval_interval={steps}", "train.device=cpu"]
    gptkit_cli(["train", "--data", str(data), "--out", str(out), "--preset", preset, "--set", *settings])
    return out


def gptkit_cli(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "gptkit", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"gptkit {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def val_windows(run, count: int) -> list[list[int]]:
    text = Path(gptkit.__file__).parent.joinpath("data", "tinyshakespeare.txt").read_text(encoding="utf-8")
    held_out = text[int(len(text) * 0.9) :]  # the val split's text (prepare keeps the last 10% for val)
    ids = run.tokenizer.encode(held_out)
    size = run.config.model.block_size
    return [ids[i * size : (i + 1) * size] for i in range(min(count, len(ids) // size))]


def nll(logits: np.ndarray, window: list[int]) -> float:
    """Summed negative log-likelihood of window[1:] given logits (T, V) at window[:-1]."""
    logits = torch.from_numpy(np.asarray(logits[: len(window) - 1], dtype=np.float64))
    return -torch.log_softmax(logits, -1).gather(1, torch.tensor(window[1:])[:, None]).sum().item()


def score(run_dir: Path, windows_wanted: int, root: Path) -> dict:
    import llama_cpp

    run = gptkit.load(run_dir, device="cpu")
    windows = val_windows(run, windows_wanted)
    predicted = sum(len(w) - 1 for w in windows)
    with torch.no_grad():
        ours = sum(nll(run.model(torch.tensor([w]))[0][0].numpy(), w) for w in windows)
    result = {
        "run": str(run_dir),
        "architecture": "llama" if run.config.model.pos == "rope" else "gpt2",
        "parameters": run.model.num_params(),
        "val_tokens_scored": predicted,
        "gptkit_perplexity": math.exp(ours / predicted),
    }
    for outtype in OUTTYPES:
        path = root / f"{run_dir.name}-{outtype}.gguf"
        gptkit_cli(["export", str(run_dir), "--format", "gguf", "--outtype", outtype, "--out", str(path)])
        f32 = llama_cpp.GGML_TYPE_F32
        llm = llama_cpp.Llama(
            str(path), n_ctx=run.config.model.block_size, logits_all=True, verbose=False, type_k=f32, type_v=f32
        )
        total = 0.0
        for window in windows:
            llm.reset()
            llm.eval(window)
            total += nll(llm.scores[: len(window)], window)
        perplexity = math.exp(total / predicted)
        result[outtype] = {
            "file_bytes": path.stat().st_size,
            "llama_cpp_perplexity": perplexity,
            "relative_to_gptkit": perplexity / result["gptkit_perplexity"] - 1,
        }
        del llm
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps of each bundled run")
    parser.add_argument("--windows", type=int, default=64, help="val windows of block_size tokens to score")
    parser.add_argument("--run", action="append", default=[], help="score this run instead (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = [Path(r) for r in args.run] or [train_run(root, p, args.steps) for p in ("cpu-baby", "llama-tiny")]
        results = [score(run, args.windows, root) for run in runs]
    report = {
        "benchmark": "gguf_quality",
        "windows": args.windows,
        "steps": None if args.run else args.steps,
        "runs": results,
        "machine": machine(torch.device("cpu")),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
