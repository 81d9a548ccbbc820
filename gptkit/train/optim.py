"""AdamW with weight decay on >=2-D weights only, and the learning-rate schedule as a pure function of the step.

Decay applies to matmul and embedding weights; biases and norm gains are left alone (decaying them only
hurts). The schedule is linear warmup then cosine decay to `min_lr`, constant after `lr_decay_iters`.
Entry points: `build_optimizer(model, train_config, device)`, `lr_at(step, train_config)`.
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


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): warmup, cosine decay, then `min_lr`."""
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / (cfg.warmup_iters + 1)
    decay_iters = cfg.lr_decay_iters or cfg.max_iters
    if step >= decay_iters:
        return cfg.final_lr
    progress = (step - cfg.warmup_iters) / max(1, decay_iters - cfg.warmup_iters)
    return cfg.final_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.final_lr)
