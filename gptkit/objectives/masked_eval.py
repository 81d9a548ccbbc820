"""Evaluating a masked language model: what `gptkit eval` reports for an mlm run.

`evaluate_masked` walks every passage of a split in order, masks it with the run's recipe (or forced
whole-word masking) from a fixed seed, and reports over the selected tokens: loss, top-1 accuracy, and
bits per character (the loss in bits over the characters those tokens spell), the unit that compares a
char model with a BPE one. Entry point: `evaluate_masked` (filling in masks: `gptkit.objectives.masked`).
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from gptkit.data.masking import MaskingRecipe, character_lengths, mask_tokens, ordinary_ids, word_edges_table
from gptkit.data.segments import Passages
from gptkit.errors import ArgumentError
from gptkit.evaluate import TableRow
from gptkit.objectives.base import not_a_masked_lm
from gptkit.paths import shown
from gptkit.tokenizer import MASK_TOKEN, PAD_TOKEN, load_tokenizer, with_specials


@dataclass
class MaskedEvalResult(TableRow):
    name: str
    selected_tokens: int
    selected_characters: int
    loss: float  # mean cross-entropy per selected token, nats
    accuracy: float  # top-1, over the selected tokens
    bits_per_character: float
    whole_word: bool

    COLUMNS = (
        ("data", "name", 28, ""),
        ("masked", "selected_tokens", 8, ","),
        ("loss", "loss", 8, ".4f"),
        ("accuracy", "accuracy", 9, ".2%"),
        ("bits/char", "bits_per_character", 10, ".4f"),
        ("whole words", "whole_words", 12, ""),
    )

    @property
    def whole_words(self) -> str:
        return "yes" if self.whole_word else "no"


def check_masked_lm(run) -> None:
    if run.model.config.causal or run.tokenizer is None or MASK_TOKEN not in run.tokenizer.specials:
        raise not_a_masked_lm(run)


@torch.no_grad()
def evaluate_masked(
    run,
    path,
    *,
    split: str = "val",
    whole_word: bool | None = None,
    seed: int = 0,
    batch_size: int = 32,
    max_tokens: int | None = None,
    scorer=None,
) -> MaskedEvalResult:
    """Masked-token loss, accuracy and bits per character of `run` on one split of a prepared dataset
    (its first passages holding about `max_tokens` tokens, when given). `scorer` replaces `run.model`
    (anything called as `scorer(inputs, key_mask=mask)` -> (logits, _)), e.g. a baseline."""
    from gptkit.data.dataset import open_dataset

    check_masked_lm(run)
    dataset = open_dataset(path, "path", flag="--data")
    data_tokenizer = load_tokenizer(dataset.path)
    if with_specials(data_tokenizer, [MASK_TOKEN, PAD_TOKEN]).to_dict() != run.tokenizer.to_dict():
        problem = f"prepared with another tokenizer than {run.run_dir}"
        raise ArgumentError("path", problem, shown(path), flag="--data")
    if dataset.num_tokens(split) < 2:
        problem = f"the {split} split is empty; evaluate split='train' (--split train) or prepare again"
        raise ArgumentError("path", problem, shown(path), flag="--data")
    recipe = MaskingRecipe.of(run.config.mlm)
    if whole_word is not None:
        recipe = replace(recipe, whole_word=whole_word)
    passages = Passages(dataset, split, run.model.config.block_size, run.tokenizer, run.config.mlm.passages)
    edges = word_edges_table(run.tokenizer, run.tokenizer.vocab_size) if recipe.whole_word else None
    chars = character_lengths(run.tokenizer, run.tokenizer.vocab_size)  # the model's may be padded larger
    replacements = ordinary_ids(run.tokenizer, dataset.vocab_size)
    generator = torch.Generator().manual_seed(seed)
    count = len(passages)
    if max_tokens is not None:
        count = max(1, int(np.searchsorted(np.cumsum(passages.lengths), max_tokens)))
    nats, correct, tokens, characters = 0.0, 0, 0, 0
    scorer = scorer or run.model.eval()
    for start in range(0, count, batch_size):
        ids, real = passages.batch(np.arange(start, min(start + batch_size, count)), run.tokenizer.specials[PAD_TOKEN])
        inputs, targets = mask_tokens(
            ids,
            real,
            recipe,
            mask_id=run.tokenizer.specials[MASK_TOKEN],
            replacement_ids=replacements,
            generator=generator,
            edges=edges,
        )
        logits, _ = scorer(inputs.to(run.device), key_mask=real.to(run.device))
        chosen = targets >= 0
        scored, wanted = logits[chosen.to(run.device)].float().cpu(), targets[chosen]
        nats += F.cross_entropy(scored, wanted, reduction="sum").item()
        correct += int((scored.argmax(-1) == wanted).sum())
        tokens += len(wanted)
        characters += int(chars[wanted].sum())
    loss = nats / tokens
    return MaskedEvalResult(
        f"{dataset.name}/{split}",
        tokens,
        characters,
        loss,
        correct / tokens,
        nats / math.log(2) / max(characters, 1),
        recipe.whole_word,
    )
