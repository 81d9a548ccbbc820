"""Dropout that is cheap on the CPU.

PyTorch's CPU dropout draws one Bernoulli sample per element: 50 ms for the `shakespeare` preset's
64 x 256 x 384 activation on this project's 2-core machine (AMD EPYC, 2 threads, torch 2.13). Here 16 random
bits per element come from one `randint` over int64 (four elements per draw) and are compared with a
threshold: the same distribution to 1/65536 in p, from the same global generator (seeded runs and exact resume
still hold), in 12 ms. In a `shakespeare` training step (13 dropouts, 11.2 s with `nn.Dropout`) that saves
0.53 s, 4.7% of the step, and whole steps ran 5-6% faster (median of 4 alternating pairs, two runs):
`python bench/dropout_speed.py`, figures in docs/benchmarks.md ("Dropout"). Every other preset, `cpu-speedrun`
included, has dropout 0 and builds no dropout module. On other devices PyTorch's fused kernel is already fast
and is used as is.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

_LEVELS = 1 << 16  # p is rounded to a multiple of 1/65536


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """Bool tensor of `shape`, each element True with probability 1 - p (p rounded to 1/65536)."""
    count = shape.numel()
    draws = torch.randint(-(2**63), 2**63 - 1, ((count + 3) // 4,), dtype=torch.int64, device=device)
    bits = draws.view(torch.int16)[:count].view(shape)  # uniform over [-32768, 32767]
    return bits >= _dropped_levels(p) - _LEVELS // 2


def _dropped_levels(p: float) -> int:
    return min(round(p * _LEVELS), _LEVELS - 1)  # p < 1 always keeps something


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p); x itself when not training."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    scale = _LEVELS / (_LEVELS - _dropped_levels(p))  # the rounded p, so the expectation stays exactly x
    # A float mask keeps the backward to one multiply (a bool mask would be converted again there).
    return x * keep_mask(x.shape, p, x.device).to(x.dtype).mul_(scale)


class Dropout(nn.Module):
    """`nn.Dropout` with the fast CPU path above."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
