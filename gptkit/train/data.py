"""What a training run reads: its datasets, the mixture in force at each step, and the eval datasets.

A run names datasets in `data` (mixed by weight) or in sequential `stages` (each its own mixture for its
steps). All must share one tokenizer. Validation loss is measured on every dataset's own val split and
reported per dataset; `val` is their plain mean. With `train.objective=mlm` the run reads one dataset as
masked, padded passages (`gptkit.data.mlm`), and its tokenizer gains `<|mask|>` and `<|pad|>`.
Batches are tuples: (inputs, targets) or, for mlm, (inputs, targets, key-padding mask); `forward_loss`
runs either. Entry point: `TrainingData(config)`.
"""

import math

import torch

from gptkit.config import RunConfig
from gptkit.data.dataset import TokenDataset
from gptkit.data.masking import MaskingRecipe
from gptkit.data.mixture import Mixture, check_same_tokenizer
from gptkit.data.mlm import MaskedPassages
from gptkit.errors import GptkitError
from gptkit.runtime import autocast_for
from gptkit.tokenizer import MASK_TOKEN, PAD_TOKEN, load_tokenizer, with_specials


class TrainingData:
    """The datasets of a run and the mixture to draw training batches from at a given step."""

    def __init__(self, config: RunConfig):
        sources = config.all_data()
        if not sources:
            raise GptkitError("train: no dataset given; pass --data DIR (a folder written by `gptkit prepare`)")
        labels = [s.label for s in sources]
        if len(set(labels)) != len(labels):
            raise GptkitError(f"data: two datasets are both called {labels}; give them distinct `name`s")
        self.datasets = {s.path: TokenDataset(s.path, name=s.label) for s in sources}
        check_same_tokenizer(list(self.datasets.values()))
        self.first = self.datasets[sources[0].path]
        self.tokenizer = load_tokenizer(self.first.path)
        mlm = config.train.objective == "mlm"
        if mlm:
            if len(sources) > 1 or config.stages:
                raise GptkitError("`train.objective`=mlm trains on one dataset; mixtures and stages are causal-only")
            self.tokenizer = with_specials(self.tokenizer, [MASK_TOKEN, PAD_TOKEN])
        model = config.model
        if model.vocab_size == 0:
            model.vocab_size = self.tokenizer.vocab_size
        elif model.vocab_size < self.tokenizer.vocab_size and mlm:
            raise GptkitError(
                f"`train.objective`=mlm adds <|mask|> and <|pad|> to the tokenizer ({self.tokenizer.vocab_size} ids), "
                f"but the model has {model.vocab_size} (from --init-from / --resume of a causal run?); train the "
                "masked LM from scratch, or from a masked LM"
            )
        elif model.vocab_size < self.tokenizer.vocab_size:
            raise GptkitError(
                f"`model.vocab_size`={model.vocab_size} is smaller than the tokenizer's "
                f"({self.tokenizer.vocab_size}); leave it at 0 to take it from the data"
            )
        if mlm:
            t = config.train
            recipe = MaskingRecipe(t.mlm_prob, t.mlm_mask, t.mlm_random, t.mlm_whole_word)
            masked = MaskedPassages(self.first, self.tokenizer, model.block_size, recipe, t.mlm_passages)
            if not masked.has_split("train"):
                raise GptkitError(f"--data {self.first.path}: the train split is empty")
            masked.name = self.first.name
            self.plan = [(math.inf, masked)]
            self.eval_sets = [masked] if masked.has_split("val") else []
            return
        phases = [(stage.steps, stage.data) for stage in config.stages] or [(math.inf, config.data)]
        self.plan: list[tuple[float, Mixture]] = []
        end = 0
        for steps, data in phases:
            for source in data:
                self.datasets[source.path].check_block_size("train", model.block_size)
            end += steps
            mixture = Mixture([self.datasets[s.path] for s in data], [s.weight for s in data])
            self.plan.append((end, mixture))
        self.eval_sets = [d for d in self.datasets.values() if d.has_windows("val", model.block_size)]

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


def forward_loss(model, batch):
    """The loss of one batch: (inputs, targets) or (inputs, targets, key-padding mask)."""
    if len(batch) == 3:
        return model(batch[0], batch[1], key_mask=batch[2])[1]
    return model(batch[0], batch[1])[1]


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
                total += forward_loss(model, batch)
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
