"""Several prepared datasets sampled by weight, row by row, from one generator (deterministic, resumable).

Training on datasets one after another makes a model forget the first (catastrophic forgetting);
interleaving them by weight keeps both. `Mixture.get_batch` picks a dataset for every row of the batch with
probability proportional to its weight, then a window from it. All datasets must share one tokenizer.
Entry point: `Mixture(datasets, weights)`.
"""

import math

import torch

from gptkit.data.dataset import TokenDataset
from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import read_json, shown
from gptkit.tokenizer import TOKENIZER_FILE


def check_same_tokenizer(datasets: list[TokenDataset]) -> None:
    """Refuse datasets prepared with different tokenizers: their ids mean different things."""
    first = datasets[0]
    reference = read_json(first.path / TOKENIZER_FILE)
    for other in datasets[1:]:
        if read_json(other.path / TOKENIZER_FILE) != reference:
            raise ArgumentError(
                "data",
                f"prepared with a different tokenizer than {shown(first.path)}; prepare both with the same one "
                f"(`gptkit prepare ... --tokenizer {shown(first.path / TOKENIZER_FILE)}`)",
                shown(other.path),
            )


class Mixture:
    """Weighted sampling over datasets; one dataset behaves exactly like that dataset alone."""

    def __init__(self, datasets: list[TokenDataset], weights: list[float]):
        if not datasets or len(datasets) != len(weights):
            raise GptkitError("data: give one weight per dataset")
        if any(not math.isfinite(w) or w < 0 for w in weights) or not sum(weights) > 0:
            raise GptkitError(f"data weights {weights}: each must be >= 0 and finite, and their sum positive")
        check_same_tokenizer(datasets)
        self.datasets = datasets
        total = sum(weights)
        self.probs = torch.tensor([w / total for w in weights], dtype=torch.float64)

    def draw(self, split, batch_size, block_size, generator) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """Where a batch comes from, without reading it: (dataset index, batch rows, window starts) per dataset.

        Drawing consumes `generator` exactly as `get_batch` does, so a process can skip batches that another
        process reads (distributed training) and stay in step with it."""
        if len(self.datasets) == 1:
            starts = self.datasets[0].draw_starts(split, batch_size, block_size, generator)
            return [(0, torch.arange(batch_size), starts)]
        choice = torch.multinomial(self.probs, batch_size, replacement=True, generator=generator)  # (B,)
        plan = []
        for index, dataset in enumerate(self.datasets):
            rows = (choice == index).nonzero().flatten()
            if len(rows):
                plan.append((index, rows, dataset.draw_starts(split, len(rows), block_size, generator)))
        return plan

    def read(self, split, plan, block_size, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) inputs and targets for a plan from `draw`."""
        if len(plan) == 1:
            index, _, starts = plan[0]
            return self.datasets[index].read_windows(split, starts, block_size, device)
        batch_size = sum(len(rows) for _, rows, _ in plan)
        x = torch.empty((batch_size, block_size), dtype=torch.long)
        y = torch.empty((batch_size, block_size), dtype=torch.long)
        for index, rows, starts in plan:
            x[rows], y[rows] = self.datasets[index].read_windows(split, starts, block_size, torch.device("cpu"))
        if device.type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x.to(device), y.to(device)

    def get_batch(self, split, batch_size, block_size, generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) inputs and targets; row i comes from dataset `choice[i]`, drawn by weight."""
        return self.read(split, self.draw(split, batch_size, block_size, generator), block_size, device)
