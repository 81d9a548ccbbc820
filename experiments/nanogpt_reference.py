"""An independent check of gptkit's plain training path: nanoGPT's CPU recipe in plain PyTorch, no gptkit code.

Issue 10 asks that `cpu-baby` with nanoGPT's CPU recipe reach val loss <= 1.89 after 2000 iterations, as
nanoGPT did in one run on this machine class (1.886). This script trains that recipe a second way, written
here from the recipe's published settings (nanoGPT's README CPU command and its
`config/train_shakespeare_char.py`): 4 layers, 4 heads, 128 wide, block 64, batch 12, no biases, no
dropout, exact GELU, tied head, N(0, 0.02) init with the residual projections at 0.02/sqrt(2 * layers),
AdamW (betas 0.9/0.99, weight decay 0.1 on matrices only), lr 1e-3 with 100 linear warmup steps and cosine
decay to 1e-4 at step 2000, gradient clipping at 1.0, windows at uniform random offsets of the first 90% of
the characters. It then scores the last 10% the way `bench/speedrun.py` does (every val token once, in
windows of block_size + 1), so its per-seed figures compare with `bench/speedrun.py --preset cpu-baby
--iters 2000` seed for seed in distribution (the random streams differ, so not run for run).
Its step is importable for side-by-side speed benchmarks (`bench/train_speed.py`): `ReferenceStep(shape, vocab)`
builds the same recipe at any `Shape` (layers, heads, width, block, batch, dropout); `train_for_seconds` trains
it for a wall-clock budget instead of 2000 steps (`bench/speedrun.py` runs it beside gptkit's speedrun).
Usage: python experiments/nanogpt_reference.py [--seeds 5] [--iters 2000]   (prints one JSON line)
"""

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

TEXT = Path(__file__).resolve().parents[1] / "gptkit" / "data" / "tinyshakespeare.txt"
LR, MIN_LR, WARMUP, BETA2, WEIGHT_DECAY, CLIP = 1e-3, 1e-4, 100, 0.99, 0.1, 1.0


@dataclass(frozen=True)
class Shape:
    """The recipe's model and batch; the defaults are nanoGPT's CPU recipe (gptkit's `cpu-baby`)."""

    layers: int = 4
    heads: int = 4
    width: int = 128
    block: int = 64
    batch: int = 12
    dropout: float = 0.0


CPU_RECIPE = Shape()


class Layer(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then x + GELU MLP(norm(x)); no biases anywhere."""

    def __init__(self, shape: Shape = CPU_RECIPE):
        super().__init__()
        width = shape.width
        self.heads, self.dropout = shape.heads, shape.dropout
        self.norm1 = nn.LayerNorm(width, bias=False)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.attn_out = nn.Linear(width, width, bias=False)
        self.norm2 = nn.LayerNorm(width, bias=False)
        self.up = nn.Linear(width, 4 * width, bias=False)
        self.down = nn.Linear(4 * width, width, bias=False)
        self.drop = nn.Dropout(shape.dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.attn_out(y))
        return x + self.drop(self.down(F.gelu(self.up(self.norm2(x)))))


class ReferenceGPT(nn.Module):
    def __init__(self, vocab: int, shape: Shape = CPU_RECIPE):
        super().__init__()
        self.tokens = nn.Embedding(vocab, shape.width)
        self.positions = nn.Embedding(shape.block, shape.width)
        self.layers = nn.ModuleList(Layer(shape) for _ in range(shape.layers))
        self.norm = nn.LayerNorm(shape.width, bias=False)
        self.head = nn.Linear(shape.width, vocab, bias=False)
        self.head.weight = self.tokens.weight  # tied
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, 0.02)
        for layer in self.layers:  # projections into the residual stream (GPT-2, section 2.3)
            for proj in (layer.attn_out, layer.down):
                nn.init.normal_(proj.weight, 0.0, 0.02 / math.sqrt(2 * shape.layers))

    def forward(self, idx, targets):
        x = self.tokens(idx) + self.positions.weight[: idx.size(1)]
        for layer in self.layers:
            x = layer(x)
        logits = self.head(self.norm(x))
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")


def lr_at(it: int, iters: int) -> float:
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    ratio = min(1.0, (it - WARMUP) / (iters - WARMUP))
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


class ReferenceStep:
    """The recipe's model and AdamW at `shape`; `step(train, lr)` is one training step on random windows."""

    def __init__(self, vocab: int, shape: Shape = CPU_RECIPE, device: str = "cpu"):
        self.shape = shape
        self.model = ReferenceGPT(vocab, shape).to(device)
        matrices = [p for p in self.model.parameters() if p.dim() >= 2]
        vectors = [p for p in self.model.parameters() if p.dim() < 2]
        groups = [{"params": matrices, "weight_decay": WEIGHT_DECAY}, {"params": vectors, "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=LR, betas=(0.9, BETA2))

    def step(self, train: torch.Tensor, lr: float = LR) -> torch.Tensor:
        """One step on `shape.batch` windows at uniform random offsets of `train`; returns the loss (no sync)."""
        block = self.shape.block
        starts = torch.randint(len(train) - block, (self.shape.batch,))
        rows = torch.stack([train[s : s + block + 1] for s in starts.tolist()]).to(self.model.tokens.weight.device)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.model(rows[:, :-1], rows[:, 1:]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()


def train_and_score(train, val, vocab: int, seed: int, iters: int) -> float:
    torch.manual_seed(seed)
    reference = ReferenceStep(vocab)
    for it in range(iters):
        reference.step(train, lr_at(it, iters))
    return score(reference.model, val)


def train_for_seconds(train, val, vocab: int, seed: int, seconds: float) -> tuple[float, int]:
    """The recipe trained for `seconds` of wall-clock instead of 2000 steps: the same warmup, then the cosine
    runs over the time budget (the fraction of it spent, not of the steps). Returns (full val loss, steps)."""
    torch.manual_seed(seed)
    reference = ReferenceStep(vocab)
    began, steps = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - began) < seconds:
        if steps < WARMUP:
            lr = LR * (steps + 1) / (WARMUP + 1)
        else:
            lr = MIN_LR + 0.5 * (1.0 + math.cos(math.pi * elapsed / seconds)) * (LR - MIN_LR)
        reference.step(train, lr).item()  # .item(): each step is finished before the clock is read
        steps += 1
    return score(reference.model, val), steps


def shakespeare_splits() -> tuple[torch.Tensor, torch.Tensor, int]:
    """The bundled Tiny Shakespeare as character ids: the first 90% (train), the rest (val), the vocab size."""
    text = TEXT.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(len(ids) * 0.9)
    return ids[:split], ids[split:], len(chars)


def score(model: ReferenceGPT, val: torch.Tensor) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():  # every val token after the first, in consecutive windows of CPU_RECIPE.block + 1
        for start in range(0, len(val) - 1, CPU_RECIPE.block):
            window = val[start : start + CPU_RECIPE.block + 1][None]
            losses = model(window[:, :-1], window[:, 1:])
            total, count = total + losses.sum().item(), count + losses.numel()
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--iters", type=int, default=2000)
    args = parser.parse_args()
    train, val, vocab = shakespeare_splits()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    losses = {seed: train_and_score(train, val, vocab, seed, args.iters) for seed in seeds}
    values = list(losses.values())
    print(
        json.dumps(
            {
                "recipe": "nanoGPT CPU recipe, independent plain-PyTorch implementation",
                "iters": args.iters,
                "full_val_loss": {str(s): round(v, 4) for s, v in losses.items()},
                "mean": round(statistics.mean(values), 4),
                "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            }
        )
    )


if __name__ == "__main__":
    main()
