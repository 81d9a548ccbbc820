"""The optimizer (AdamW, or Muon + AdamW) and the learning-rate schedule as a pure function of the step.

AdamW decays matmul and embedding weights only; biases and norm gains are left alone (decaying them only
hurts). With `train.optimizer=muon` the blocks' matrices use Muon (momentum orthogonalised by Newton-Schulz,
Jordan et al. 2024; PyTorch's `torch.optim.Muon` update with the RMS matching of Liu et al. 2025, so AdamW's
lr and weight decay carry over; `gptkit.train.muon` batches the iteration and keeps it out of emulated bf16)
and embeddings, head, biases and gains keep AdamW. The schedule is linear warmup, then either
cosine decay to `min_lr` (constant after `lr_decay_iters`) or WSD: warmup, stable at `lr`, and a linear
cooldown to `min_lr` over the last `cooldown_frac` of the run (Hu et al. 2024, MiniCPM; `cooldown_shape=sqrt`
falls as 1 - sqrt of the cooldown's progress instead, Hägele et al. 2024). With
`time_budget_s` the run's progress after warmup is measured in wall-clock time, so the schedule fits the budget.
Entry points: `build_optimizer(model, train_config, device)`, `set_lr(optimizer, lr)`, `lr_at(step, cfg, s)`.
"""

import inspect
import math

import torch

from gptkit.config import TrainConfig
from gptkit.errors import GptkitError
from gptkit.train.optimizer_set import OptimizerSet


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: >=2-D tensors with `weight_decay`, the rest (biases, norm gains) with none."""
    params = [p for p in model.parameters() if p.requires_grad]  # shared (tied) tensors appear once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def muon_matrices(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The hidden matrices Muon is meant for: the 2-D weights inside the blocks (not embeddings or the head)."""
    return [p for name, p in model.named_parameters() if p.requires_grad and p.dim() == 2 and ".h." in f".{name}"]


def _adamw(groups: list[dict], cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW using the fused kernel where this PyTorch has one for `device`, else the foreach one."""
    extra = {}
    if "fused" in inspect.signature(torch.optim.AdamW).parameters and device.type in ("cuda", "cpu"):
        extra["fused"] = True
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **extra)


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device, agree=lambda native: native):
    """AdamW over all parameters, or (`train.optimizer=muon`) an OptimizerSet of Muon and AdamW; `agree` makes
    the ranks of a torchrun pick one Newton-Schulz dtype (`gptkit.train.muon.newton_schulz_dtype`)."""
    if cfg.optimizer == "adamw":
        return _adamw(param_groups(model, cfg.weight_decay), cfg, device)
    if not hasattr(torch.optim, "Muon"):
        raise GptkitError(
            f"`train.optimizer`=muon needs PyTorch >= 2.9 (torch.optim.Muon); this is {torch.__version__}: "
            "upgrade torch, or set `train.optimizer=adamw`"
        )
    from gptkit.train.muon import Muon, newton_schulz_dtype  # subclasses torch.optim.Muon: torch >= 2.9 only

    matrices = muon_matrices(model)
    chosen = {id(p) for p in matrices}
    groups = param_groups(model, cfg.weight_decay)
    rest = [group | {"params": [p for p in group["params"] if id(p) not in chosen]} for group in groups]
    muon = Muon(
        matrices,
        ns_dtype=newton_schulz_dtype(device, agree),
        lr=cfg.muon_lr or cfg.lr,
        weight_decay=cfg.weight_decay,
        momentum=cfg.muon_momentum,
        ns_steps=cfg.muon_ns_steps,
        adjust_lr_fn="match_rms_adamw",  # Moonshot's scaling: AdamW's lr and weight decay carry over
    )
    return OptimizerSet([(muon, (cfg.muon_lr or cfg.lr) / cfg.lr), (_adamw(rest, cfg, device), 1.0)])


def set_lr(optimizer, lr: float) -> None:
    """Set the schedule's learning rate on every group (Muon's groups scaled by `muon_lr / lr`)."""
    parts = optimizer.parts if isinstance(optimizer, OptimizerSet) else [(optimizer, 1.0)]
    for part, scale in parts:
        for group in part.param_groups:
            group["lr"] = lr * scale


def apply_optimizer_settings(optimizer, cfg: TrainConfig) -> None:
    """Settings from the config win over those restored with the optimizer state (on resume)."""
    parts = [part for part, _ in optimizer.parts] if isinstance(optimizer, OptimizerSet) else [optimizer]
    for part in parts:
        if isinstance(part, torch.optim.AdamW):
            decay, no_decay = part.param_groups
            decay["weight_decay"], no_decay["weight_decay"] = cfg.weight_decay, 0.0
            for group in part.param_groups:
                group["betas"] = (cfg.beta1, cfg.beta2)
        else:
            for group in part.param_groups:
                group["weight_decay"], group["momentum"] = cfg.weight_decay, cfg.muon_momentum
                group["ns_steps"] = cfg.muon_ns_steps
    if isinstance(optimizer, OptimizerSet):
        optimizer.parts[0] = (optimizer.parts[0][0], (cfg.muon_lr or cfg.lr) / cfg.lr)


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
        cooldown = min(1.0, max(0.0, progress - (1.0 - cfg.cooldown_frac)) / cfg.cooldown_frac)  # 0 until then
        if cfg.cooldown_shape == "sqrt":  # falls fast at first, then lingers at low LRs (Hägele et al. 2024)
            cooldown = math.sqrt(cooldown)
        return cfg.lr - cooldown * (cfg.lr - cfg.final_lr)
    return cfg.final_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.final_lr)
