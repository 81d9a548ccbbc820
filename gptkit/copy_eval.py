"""`gptkit eval RUN --samples N`: does the run write new text, or copy its training text back?

N samples (seeds 1..N, the default sampling settings, `length` tokens each from an empty prompt) are measured by
`gptkit.copying` against the run's training split, in tokens and in characters; N windows of real held-out text
(the val split, as long as a sample) are measured the same way, as the yardstick: a model that learned the
language copies about as much as unseen text shares with the training text by chance; one that memorised
copies far more. Entry point: `copy_report`.
"""

import numpy as np
import torch

from gptkit.copying import CopyReport, character_chunks, code_points, copy_measures, split_chunks
from gptkit.data.dataset import TokenDataset
from gptkit.errors import GptkitError
from gptkit.tokenizer.char import CharTokenizer


def copy_report(run, samples: int, length: int = 256) -> dict[str, dict[str, CopyReport]]:
    """{"samples" | "held-out text": {"tokens": CopyReport, "characters": CopyReport}}."""
    if samples < 1 or length < 1:
        raise GptkitError("eval --samples N --sample-tokens T: both must be >= 1")
    if run.tokenizer is None:
        raise GptkitError(f"{run.run_dir} has no tokenizer; copying is measured on text")
    datasets = [TokenDataset(source.path) for source in run.config.all_data()]
    if not datasets:
        raise GptkitError(f"{run.run_dir} names no training data in its config; copying needs its training split")
    train = split_chunks([shard for d in datasets for shard in d.shards["train"]])
    prompt = torch.tensor([run.encode_prompt("")], device=run.device)  # the same start for every seed
    generated = []
    for seed in range(1, samples + 1):
        new = run.generate_ids(prompt, length, seed=seed)
        generated.append(new[0].cpu().numpy().astype(np.uint32))
    val = max((shard for d in datasets for shard in d.shards["val"]), key=len, default=np.zeros(0))
    held_out = _windows(val, samples, length)  # from the longest val shard, never all of them in memory
    result = {}
    for name, texts in (("samples", generated), ("held-out text", held_out)):
        if not texts:
            continue
        tokens = copy_measures(texts, train)
        if isinstance(run.tokenizer, CharTokenizer) and not run.tokenizer.specials:  # a token is a character
            result[name] = {"tokens": tokens, "characters": tokens}
            continue
        characters = [code_points(run.tokenizer.decode_bytes(t.tolist()).decode("utf-8", "replace")) for t in texts]
        result[name] = {
            "tokens": tokens,
            "characters": copy_measures(characters, character_chunks(train, run.tokenizer)),
        }
    return result


def _windows(stream: np.ndarray, count: int, length: int) -> list[np.ndarray]:
    """`count` windows of `length` items spread evenly over `stream` (fewer if it is short; all of it, as one,
    if it is shorter than one window)."""
    if len(stream) < length:
        return [np.asarray(stream, dtype=np.uint32)] if len(stream) else []
    starts = np.linspace(0, len(stream) - length, num=count).astype(int)
    return [np.asarray(stream[s : s + length], dtype=np.uint32) for s in sorted(set(starts.tolist()))]


HEADER = (
    f"{'text':<14} {'unit':<10} {'copied 8':>9} {'16':>7} {'32':>7} {'longest':>8} "
    f"{'distinct-1':>11} {'-2':>6} {'-3':>6}"
)


def report_rows(report: dict[str, dict[str, CopyReport]]) -> list[str]:
    rows = [HEADER]
    for name, units in report.items():
        for unit, r in units.items():
            copied = " ".join(f"{100 * r.copied[n]:>6.1f}%" for n in (8, 16, 32))
            distinct = " ".join(f"{r.distinct[n]:>6.3f}" for n in (2, 3))
            rows.append(f"{name:<14} {unit:<10}  {copied} {r.longest:>8} {r.distinct[1]:>11.3f} {distinct}")
    return rows
