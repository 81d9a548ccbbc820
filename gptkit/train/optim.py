"""AdamW with weight decay on >=2-D weights only, and the learning-rate schedule as a pure function of the step.

Decay applies to matmul and embedding weights; biases and norm gains are left alone (decaying them only
hurts). The schedule is linear warmup, then either cosine decay to `min_lr` (constant after
`lr_decay_iters`) or WSD: warmup, stable at `lr`, and a linear cooldown to `min_lr` over the last
`cooldown_frac` of the run (Hu et al. 2024, MiniCPM). With `time_budget_s` the run's progress after warmup
is measured in wall-clock time instead of steps, so the schedule fits the budget.
Entry points: `build_optimizer(model, train_config, device)`, `lr_at(step, train_config, elapsed_s)`.
"""

import inspect
import math

import torch

from gptkit.config import TrainConfig


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: >=2-D tensors with `weight_decay`, the rest (biases, norm gains) with none."""
    params = [p for p in model.parameters() if p.requires_grad]  # shared (tied) tensors appear once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW using the fused kernel where this PyTorch has one for `device`, else the foreach one."""
    extra = {}
    if "fused" in inspect.signature(torch.optim.AdamW).parameters and device.type in ("cuda", "cpu"):
        extra["fused"] = True
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **extra)


def lr_at(step: int, cfg: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Learning rate for optimizer step `step` (0-based), `elapsed_s` seconds into a time-budgeted run."""
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / (cfg.warmup_iters + 1)
    decay_iters = cfg.lr_decay_iters or cfg.max_iters
    if step >= decay_iters:
        return cfg.final_lr
    progress = min(1.0, (step - cfg.warmup_iters) / max(1, decay_iters - cfg.warmup_iters))
    if cfg.time_budget_s > 0:  # whichever ends first, the budget or max_iters, ends the schedule
        progress = max(progress, min(1.0, elapsed_s / cfg.time_budget_s))
    if cfg.schedule == "wsd":
        cooldown = max(0.0, progress - (1.0 - cfg.cooldown_frac)) / cfg.cooldown_frac  # 0 until the cooldown
        return cfg.lr - min(1.0, cooldown) * (cfg.lr - cfg.final_lr)
    return cfg.final_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.final_lr)
