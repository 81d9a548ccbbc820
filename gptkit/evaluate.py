"""`gptkit eval`: loss, perplexity and bits per byte of a trained run on prepared data or a raw text file.

The text is cut into consecutive windows of `block_size + 1` tokens (or `context + 1`, to compare models
of different block sizes like for like) and every token after the first of a window is scored with the
context before it in that window (non-overlapping windows: simple and fast; a sliding window would score
slightly lower). Bits per byte divides the total loss (in bits) by the UTF-8 bytes the scored tokens stand
for, so it compares models with different tokenizers. Entry points: `evaluate_dataset`, `evaluate_text`.
"""

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import file_problem, shown
from gptkit.tokenizer.tables import token_pieces


class TableRow:
    """A result that prints as one line of a table: `COLUMNS` lists (title, attribute, width, format); the first
    column is left-aligned, the others right-aligned. `HEADER` is the table's title line."""

    COLUMNS: tuple[tuple[str, str, int, str], ...] = ()
    HEADER = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        (first, _, width, _), *rest = cls.COLUMNS
        cls.HEADER = " ".join([f"{first:<{width}}", *(f"{title:>{w}}" for title, _, w, _ in rest)])

    def to_dict(self) -> dict:
        return asdict(self)

    def row(self) -> str:
        """This result as a line of `HEADER`'s table."""
        (_, name, width, _), *rest = self.COLUMNS
        values = [f"{getattr(self, name):<{width}}", *(f"{getattr(self, a):>{w}{f}}" for _, a, w, f in rest)]
        return " ".join(values)


@dataclass
class EvalResult(TableRow):
    name: str
    tokens: int
    bytes: int
    loss: float  # mean cross-entropy per token, in nats
    perplexity: float
    bits_per_byte: float
    context: int  # tokens per scoring window: each token is predicted from up to this many before it

    COLUMNS = (
        ("data", "name", 28, ""),
        ("tokens", "tokens", 10, ","),
        ("context", "context", 8, ""),
        ("loss", "loss", 8, ".4f"),
        ("perplexity", "perplexity", 11, ".3f"),
        ("bits/byte", "bits_per_byte", 10, ".4f"),
    )


def byte_lengths(tokenizer, vocab_size: int) -> np.ndarray:
    """UTF-8 bytes of text each token id stands for: 0 for special tokens (`<|endoftext|>` separates
    documents; it is not 13 bytes of text) and for ids the tokenizer does not have."""
    return np.array([len(piece or b"") for piece in token_pieces(tokenizer, vocab_size)], dtype=np.int64)


def _batches(windows: Iterable[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """Stack windows of equal length into (B, T+1) arrays; a shorter last window goes alone."""
    pending: list[np.ndarray] = []
    for window in windows:
        if pending and len(window) != len(pending[0]):
            yield np.stack(pending)
            pending = []
        pending.append(window)
        if len(pending) == batch_size:
            yield np.stack(pending)
            pending = []
    if pending:
        yield np.stack(pending)


def score(run, windows: Iterable[np.ndarray], name: str, context: int, batch_size: int = 16) -> EvalResult:
    """Sum the loss of every scored token of `windows` (arrays of at most `context + 1` ids) under `run.model`."""
    if run.tokenizer is None:
        raise GptkitError(
            f"{run.run_dir} has no tokenizer; bits per byte needs one (import it with tokenizer=PATH, --tokenizer PATH)"
        )
    lengths = torch.from_numpy(byte_lengths(run.tokenizer, run.model.config.vocab_size))
    nats, tokens, num_bytes = 0.0, 0, 0
    run.model.eval()
    with torch.inference_mode():
        for batch in _batches(windows, batch_size):
            if batch.shape[1] < 2:
                continue
            window = torch.from_numpy(batch).to(run.device)
            logits, _ = run.model(window[:, :-1])  # (B, T, V)
            targets = window[:, 1:]
            nats += F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
            tokens += targets.numel()
            num_bytes += int(lengths[targets.cpu()].sum())
    if tokens == 0:
        raise GptkitError(f"{name}: nothing to evaluate (fewer than 2 tokens)")
    loss = nats / tokens
    bits_per_byte = nats / math.log(2) / max(num_bytes, 1)
    return EvalResult(name, tokens, num_bytes, loss, math.exp(loss), bits_per_byte, context)


def window_length(run, context: int | None) -> int:
    """Tokens of context per scoring window: `context`, or the model's block size when None."""
    block = run.model.config.block_size
    if context is None:
        return block
    if not 1 <= context <= block:
        raise ArgumentError("context", f"must be between 1 and the model's block_size ({block})", context)
    return context


def evaluate_dataset(
    run, path, *, split: str = "val", max_tokens: int | None = None, context: int | None = None
) -> EvalResult:
    """Score one split of a prepared dataset, which must use the run's tokenizer, in windows of `context`
    tokens (default: the model's block size)."""
    from gptkit.data.dataset import open_dataset
    from gptkit.tokenizer import load_tokenizer

    dataset = open_dataset(path, "path", flag="--data")
    if run.tokenizer is not None and load_tokenizer(dataset.path).to_dict() != run.tokenizer.to_dict():
        raise ArgumentError(
            "path",
            f"prepared with another tokenizer than {run.run_dir}; prepare it with that run's tokenizer "
            f"(`gptkit prepare ... --tokenizer {shown(Path(run.run_dir) / 'tokenizer.json')}`), or evaluate "
            "the raw text (evaluate_text, --text)",
            shown(path),
            flag="--data",
        )
    if dataset.num_tokens(split) < 2:
        problem = f"the {split} split is empty; evaluate split='train' (--split train) or prepare again"
        raise ArgumentError("path", problem, shown(path), flag="--data")
    context = window_length(run, context)
    windows = dataset.windows(split, context, max_tokens)
    return score(run, windows, f"{dataset.name}/{split}", context)


def evaluate_text(run, path, *, max_tokens: int | None = None, context: int | None = None) -> EvalResult:
    """Score a raw UTF-8 text file (encoded with the run's tokenizer), in windows as `evaluate_dataset`."""
    context = window_length(run, context)
    path = Path(path)
    if not path.is_file():
        raise ArgumentError("path", file_problem(path), shown(path), flag="--text")
    if run.tokenizer is None:
        raise GptkitError(f"{run.run_dir} has no tokenizer; it cannot read raw text")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        problem = f"not UTF-8 (invalid byte at offset {err.start})"
        raise ArgumentError("path", problem, shown(path), flag="--text") from None
    try:
        ids = np.asarray(run.tokenizer.encode(text), dtype=np.int64)
    except GptkitError as err:
        raise ArgumentError("path", str(err), shown(path), flag="--text") from None
    if max_tokens is not None:
        ids = ids[: max_tokens + 1]
    windows = (ids[start : start + context + 1] for start in range(0, max(len(ids) - 1, 0), context))
    return score(run, windows, path.name, context)
