"""The bigram language model: a table of next-token logits, one row per token, and nothing else.

The nanoGPT lecture starts here: each token reads its row of a (vocab x vocab) table, so the prediction sees
one token of context. It is the baseline every later model is measured against (about 2.5 val loss on Tiny
Shakespeare's characters, against cpu-baby's 1.9). `model.arch = "bigram"` (the `bigram` preset) builds this
instead of the transformer; it trains, samples, evaluates and plots like any run. The table is stored as
`transformer.wte.weight`, so the embedding picture shows its rows. Entry point: `BigramLM`.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptkit.config import GPTConfig


class BigramLM(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.vocab_size > 0, "set config.vocab_size (from the tokenizer) before building the model"
        self.config = config
        self.transformer = nn.ModuleDict({"wte": nn.Embedding(config.vocab_size, config.vocab_size)})
        nn.init.normal_(self.transformer.wte.weight, mean=0.0, std=0.02)
        self.recompute_blocks = False  # nothing to recompute; set by training like the GPT's

    def num_params(self, non_embedding: bool = True) -> int:
        return self.transformer.wte.weight.numel()

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache=None,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        last_only: bool = False,
        return_logits: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The GPT's signature: (logits (B, T, vocab) float32, mean cross-entropy or None). Positions, masks
        and the cache change nothing for a model that sees one token (the cache only counts tokens)."""
        if cache is not None:
            cache.advance(idx.size(1))
        if last_only:
            idx = idx[:, -1:]
        logits = self.transformer.wte(idx).float()
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def flops_per_token(self) -> float:
        """As a one-hot matmul with the table would take (6N): a lookup does far less, so MFU reads low."""
        return 6 * self.num_params()
