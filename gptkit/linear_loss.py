"""The LM head and its cross-entropy in one step, a few rows at a time, so the logits are never whole.

For a 50,257-token vocabulary one 1,024-token row has 206 MB of float32 logits, and the plain
`F.cross_entropy(lm_head(x))` keeps them, their log-softmax and (in the backward pass) their gradient: often
more than the model's weights. Here each chunk of rows gets its logits, its share of the loss and, when a
gradient is wanted, its gradients with respect to the head's input and weight, which are all the backward
pass needs; the chunk's logits are then dropped. Same arithmetic as the plain path (matmuls in the autocast
dtype, softmax in float32), same FLOPs, no recomputation.
"""

import torch
from torch.autograd.function import once_differentiable

CHUNK_LOGITS = 2**24  # logits per chunk: 64 MB in float32 (334 rows of GPT-2's vocabulary)
IGNORE = -1  # target of a position that is not scored


def chunk_rows(vocab_size: int) -> int:
    return max(1, CHUNK_LOGITS // vocab_size)


class LinearCrossEntropy(torch.autograd.Function):
    """mean over scored rows of cross_entropy(softcap(x @ weight.T), targets); see `linear_cross_entropy`."""

    @staticmethod
    def forward(ctx, x, weight, targets, softcap: float, grad_enabled: bool):
        device_type = x.device.type
        dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else x.dtype
        # needs_input_grad ignores torch.no_grad (evaluation): without this no eval batch would skip the gradients
        want_x, want_weight = grad_enabled and ctx.needs_input_grad[0], grad_enabled and ctx.needs_input_grad[1]
        with torch.autocast(device_type, enabled=False):
            x_low, weight_low = x.to(dtype), weight.to(dtype)
            scored = targets != IGNORE
            count = scored.sum()
            share = 1 / count.clamp(min=1)  # each scored row's weight in the mean; no NaN gradients when none is
            grad_x = torch.empty_like(x) if want_x else None
            grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_weight else None
            total = torch.zeros((), dtype=torch.float32, device=x.device)
            step = chunk_rows(weight.shape[0])
            for start in range(0, x.shape[0], step):
                rows = slice(start, start + step)
                logits = (x_low[rows] @ weight_low.T).float()  # (rows, V)
                if softcap > 0:
                    squashed = torch.tanh(logits / softcap)
                    logits = softcap * squashed
                keep = scored[rows]
                safe_targets = torch.where(keep, targets[rows], 0)
                log_norm = torch.logsumexp(logits, dim=-1)  # (rows,)
                picked = logits.gather(1, safe_targets[:, None]).squeeze(1)
                total += ((log_norm - picked) * keep).sum()
                if not (want_x or want_weight):
                    continue
                # d(loss)/d(logits) = softmax - one_hot(target), on scored rows, each weighted 1/count
                grad = logits.sub_(log_norm[:, None]).exp_()
                grad[torch.arange(grad.shape[0], device=grad.device), safe_targets] -= 1
                grad *= keep[:, None] * share  # scaled before the low-precision matmuls, as the plain path is
                if softcap > 0:
                    grad *= 1 - squashed.square()
                grad = grad.to(dtype)
                if want_x:
                    grad_x[rows] = grad @ weight_low
                if want_weight and dtype == torch.float32:
                    grad_weight.addmm_(grad.T, x_low[rows])
                elif want_weight:  # addmm_ cannot add a bf16 product into float32
                    grad_weight += grad.T @ x_low[rows]
            loss = total / count  # NaN when nothing is scored, as F.cross_entropy gives
        ctx.save_for_backward(grad_x, grad_weight)
        ctx.weight_dtype = weight.dtype
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        grad_x, grad_weight = ctx.saved_tensors
        if grad_x is not None:
            grad_x = grad_x * grad_loss
        if grad_weight is not None:  # in place: a second (V, C) tensor would cost what the chunks saved
            grad_weight = grad_weight.mul_(grad_loss).to(ctx.weight_dtype)
        return grad_x, grad_weight, None, None, None


def linear_cross_entropy(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy of the logits `x @ weight.T` (bounded by `softcap * tanh(./softcap)` when softcap > 0)
    against `targets`, ignoring positions whose target is -1, without ever holding all the logits.

    Args:
        x: (..., C) the head's inputs.
        weight: (V, C) the head's weight (no bias).
        targets: (...) token ids, -1 where not scored.
    Returns:
        A scalar, NaN when no position is scored (as `F.cross_entropy` gives).
    """
    rows = x.reshape(-1, x.shape[-1])
    return LinearCrossEntropy.apply(rows, weight, targets.reshape(-1), float(softcap), torch.is_grad_enabled())
