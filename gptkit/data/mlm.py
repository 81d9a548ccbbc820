"""Masked-LM training data: padded batches of passages with BERT's masking applied.

`MaskedPassages` offers the same `draw` / `read` / `get_batch` as `Mixture`, so the training loop (and each
torchrun rank's share of a step) treats both alike; its batches are (inputs, targets, real) with `real`
the (B, T) key-padding mask. The tokenizer must have `<|mask|>` and `<|pad|>` (see
`gptkit.tokenizer.with_specials`). Entry point: `MaskedPassages(dataset, tokenizer, block_size, recipe)`.
"""

import torch

from gptkit.data.dataset import SPLITS, TokenDataset
from gptkit.data.masking import MaskingRecipe, mask_tokens, ordinary_ids, word_edges_table
from gptkit.data.segments import Passages
from gptkit.tokenizer import MASK_TOKEN, PAD_TOKEN


class MaskedPassages:
    def __init__(self, dataset: TokenDataset, tokenizer, block_size: int, recipe: MaskingRecipe, unit="paragraph"):
        self.dataset, self.recipe = dataset, recipe
        self.mask_id, self.pad_id = tokenizer.specials[MASK_TOKEN], tokenizer.specials[PAD_TOKEN]
        self.replacement_ids = ordinary_ids(tokenizer, dataset.vocab_size)  # the data's tokens, no specials
        self.passages = {
            split: Passages(dataset, split, block_size, tokenizer, unit)
            for split in SPLITS
            if dataset.has_windows(split, 1)
        }
        self.edges = word_edges_table(tokenizer, tokenizer.vocab_size) if recipe.whole_word else None

    def has_split(self, split: str) -> bool:
        return split in self.passages

    def draw(self, split, batch_size, block_size, generator) -> tuple[torch.Tensor, int]:
        """Which passages, and a seed for their masking: consumes `generator` the same whether read or not."""
        indices = torch.randint(len(self.passages[split]), (batch_size,), generator=generator)
        seed = int(torch.randint(2**62, (1,), generator=generator))
        return indices, seed

    def read(self, split, plan, block_size, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        indices, seed = plan
        ids, real = self.passages[split].batch(indices.numpy(), self.pad_id)
        inputs, targets = mask_tokens(
            ids,
            real,
            self.recipe,
            mask_id=self.mask_id,
            replacement_ids=self.replacement_ids,
            generator=torch.Generator().manual_seed(seed),
            edges=self.edges,
        )
        return inputs.to(device), targets.to(device), real.to(device)

    def get_batch(self, split, batch_size, block_size, generator, device):
        return self.read(split, self.draw(split, batch_size, block_size, generator), block_size, device)
