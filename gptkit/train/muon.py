"""Muon for the blocks' matrices: PyTorch's `torch.optim.Muon` update, with its Newton-Schulz iteration batched
and in a dtype this device computes fast.

`torch.optim.Muon` orthogonalises each matrix on its own and always in bf16. On a CPU without native bf16
(AVX2-only x86, e.g. AMD Zen 3) bf16 matmuls are emulated, about 0.7 GFLOP/s against 136 in float32 on
this project's 2-core EPYC: 5 Newton-Schulz steps over `cpu-speedrun`'s 20 matrices took 520 of the 707 ms
of a training step (`python bench/profile_step.py --preset cpu-speedrun`). Here the iteration runs in bf16
where the device has it natively (Ampere and later GPUs, CPUs with AVX512-BF16 or AMX; under torchrun only
if every rank has it) and in float32 elsewhere, and on all
matrices of one shape at once (`bmm`: tall matrices are turned wide first, as the single-matrix version does),
which turns `cpu-speedrun`'s 20 matrices into 3 batches. Everything else is torch's: parameter groups, state
(`momentum_buffer`, so checkpoints of either load into the other), Nesterov momentum, decoupled weight decay,
the lr adjustment, the quintic coefficients (Jordan et al. 2024).
"""

import math
from collections import defaultdict

import torch

from gptkit.train.precision import native_bf16


def newton_schulz_dtype(device: torch.device, agree=lambda native: native) -> torch.dtype:
    """bf16 where matmuls in it are native (Ampere and later GPUs; CPUs with AVX512-BF16 or AMX), float32
    elsewhere. `agree(native)` combines the ranks' answers under torchrun (bf16 only if all have it), so every
    copy of the model takes the same steps; every rank calls it exactly once."""
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        native = device.type == "cpu" and native_bf16()
    return torch.bfloat16 if agree(native) else torch.float32


def orthogonalize(
    updates: list[torch.Tensor], coefficients: tuple[float, float, float], steps: int, eps: float, dtype: torch.dtype
) -> list[torch.Tensor]:
    """Newton-Schulz's approximate U V^T of each matrix (as torch's `_zeropower_via_newtonschulz`), matrices
    of one shape stacked into one batch. Returns them in `dtype`, in the order and shapes given."""
    a, b, c = coefficients
    by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, update in enumerate(updates):
        rows, cols = update.shape
        by_shape[(min(rows, cols), max(rows, cols))].append(index)
    result: list[torch.Tensor | None] = [None] * len(updates)
    for indices in by_shape.values():
        wide = [updates[i].T if updates[i].size(0) > updates[i].size(1) else updates[i] for i in indices]
        x = torch.stack(wide).to(dtype)  # (n, m, k) with m <= k
        x = x / x.norm(dim=(1, 2), keepdim=True).clamp(min=eps)  # spectral norm at most 1
        for _ in range(steps):
            gram = torch.bmm(x, x.transpose(1, 2))
            gram_update = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
            x = torch.baddbmm(x, gram_update, x, beta=a)
        for i, out in zip(indices, x.unbind(0)):
            result[i] = out.T if updates[i].size(0) > updates[i].size(1) else out
    return result  # type: ignore[return-value]


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """torch's lr adjustment: Keller's sqrt(max(1, A/B)) (None or "original"), Moonshot's 0.2 sqrt(max(A, B))
    ("match_rms_adamw"), none for anything else."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1.0, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class Muon(torch.optim.Muon):
    """`torch.optim.Muon` with a batched Newton-Schulz in `ns_dtype` (see the module's docstring)."""

    def __init__(self, params, *, ns_dtype: torch.dtype = torch.bfloat16, **options):
        super().__init__(params, **options)
        self.ns_dtype = ns_dtype

    def __getstate__(self) -> dict:  # torch's Optimizer pickles only its defaults, state and groups
        return {**super().__getstate__(), "ns_dtype": self.ns_dtype}

    def __setstate__(self, state: dict) -> None:  # also called by load_state_dict, without the dtype
        if "ns_dtype" in state:
            self.ns_dtype = state.pop("ns_dtype")
        elif not hasattr(self, "ns_dtype"):
            self.ns_dtype = torch.bfloat16
        super().__setstate__(state)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            buffers: list[torch.Tensor] = []
            self._init_group(group, params, grads, buffers)
            if not params:
                continue
            momentum = group["momentum"]
            updates = []
            for grad, buffer in zip(grads, buffers):
                buffer.lerp_(grad, 1 - momentum)
                updates.append(grad.lerp(buffer, momentum) if group["nesterov"] else buffer)
            ortho = orthogonalize(updates, group["ns_coefficients"], group["ns_steps"], group["eps"], self.ns_dtype)
            lr = float(group["lr"])
            for param, update in zip(params, ortho):
                param.mul_(1 - lr * group["weight_decay"])
                param.add_(update, alpha=-adjusted_lr(lr, group["adjust_lr_fn"], param.shape))
        return loss
