"""What a training run reads: its datasets, the batch source in force at each step, and the eval sources.

A run names datasets in `data` (mixed by weight) or in sequential `stages` (each its own mixture for its
steps). All must share one tokenizer. Validation loss is measured on every dataset's own val split and
reported per dataset; `val` is their plain mean. Where batches come from, the tokenizer the run trains with
and the loss of a batch are the objective's (`gptkit.objectives`). Entry point: `TrainingData(config)`.
"""

import torch

from gptkit.config import RunConfig
from gptkit.data.dataset import TokenDataset
from gptkit.data.mixture import Mixture, check_same_tokenizer
from gptkit.errors import ArgumentError, GptkitError
from gptkit.objectives import Objective, objective_for
from gptkit.runtime import autocast_for
from gptkit.tokenizer import load_tokenizer


class TrainingData:
    """The datasets of a run and the batch source to draw training batches from at a given step.

    `vocab_size` is the model's vocabulary size: `config.model.vocab_size`, or the tokenizer's when that is 0
    (the one setting a run takes from its data). `config` is only read; the trainer sets it on its own copy."""

    def __init__(self, config: RunConfig, objective: Objective | None = None):
        self.objective = objective or objective_for(config)
        self.objective.check()
        sources = config.all_data()
        if not sources:
            raise ArgumentError("data", "no dataset given; pass a folder written by `gptkit prepare`")
        labels = [s.label for s in sources]
        if len(set(labels)) != len(labels):
            raise GptkitError(f"data: two datasets are both called {labels}; give them distinct `name`s")
        self.datasets = {s.path: TokenDataset(s.path, name=s.label) for s in sources}
        check_same_tokenizer(list(self.datasets.values()))
        self.first = self.datasets[sources[0].path]
        self.tokenizer = self.objective.training_tokenizer(load_tokenizer(self.first.path))
        self.vocab_size = config.model.vocab_size or self.tokenizer.vocab_size
        self.objective.check_vocab(self.vocab_size, self.tokenizer.vocab_size)
        self.plan, self.eval_sets = self.objective.batch_plan(self.datasets, self.tokenizer)

    def mixture_at(self, step: int) -> Mixture:
        return (
            next(mixture for end, mixture in self.plan if step < end) if step < self.plan[-1][0] else self.plan[-1][1]
        )

    def batch(self, step: int, batch_size: int, block_size: int, generator, device):
        return self.mixture_at(step).get_batch("train", batch_size, block_size, generator, device)

    def describe(self) -> list[str]:
        lines = []
        for dataset in self.datasets.values():
            lines.append(
                f"data {dataset.name}: {dataset.path} ({dataset.num_tokens('train'):,} train / "
                f"{dataset.num_tokens('val'):,} val tokens, vocab {dataset.vocab_size})"
            )
        return lines

    def train_tokens(self) -> int:
        return sum(d.num_tokens("train") for d in self.datasets.values())


@torch.no_grad()
def estimate_loss(model, data: TrainingData, config: RunConfig, step: int, device, dtype) -> dict[str, float]:
    """Mean loss over `eval_iters` fixed batches: the training mixture at `step`, and each val split.

    Returns {"train": ..., "val": mean over datasets, "val.NAME": per dataset (when there are several)}.
    """
    cfg, block = config.train, config.model.block_size
    model.eval()

    def mean_loss(draw) -> float:
        generator = torch.Generator().manual_seed(cfg.seed + 1)  # the same batches at every eval
        total = torch.zeros((), device=device)
        for _ in range(cfg.eval_iters):
            batch = draw(generator)
            with autocast_for(device, dtype):
                total += data.objective.loss(model, batch)
        return (total / cfg.eval_iters).item()

    losses = {"train": mean_loss(lambda g: data.batch(step, cfg.batch_size, block, g, device))}
    per_set = {
        d.name: mean_loss(lambda g, d=d: d.get_batch("val", cfg.batch_size, block, g, device)) for d in data.eval_sets
    }
    if per_set:
        losses["val"] = sum(per_set.values()) / len(per_set)
        if len(data.datasets) > 1:
            losses.update({f"val.{name}": value for name, value in per_set.items()})
    model.train()
    return losses
