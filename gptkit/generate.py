"""Sampling from a model: logits filtering (temperature, top-k, top-p) and a generator of new token ids.

One place for generation, used by `gptkit sample`, `Run.generate`/`Run.stream` and `Run.generate_ids`.
Temperature 0 means greedy. When the context grows past `block_size`, the model sees the last `block_size`
tokens (a sliding window, recomputed each step; there is no KV cache yet). Works on ids only; text is the
caller's business (see `gptkit.run`).
"""

from collections.abc import Iterator

import torch

from gptkit.errors import GptkitError


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None, max_new_tokens: int) -> None:
    if temperature < 0:
        raise GptkitError(f"--temperature {temperature}: must be >= 0 (0 = greedy)")
    if top_k is not None and top_k < 1:
        raise GptkitError(f"--top-k {top_k}: must be >= 1 (or omitted for no top-k filtering)")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise GptkitError(f"--top-p {top_p}: must be in (0, 1]")
    if max_new_tokens < 0:
        raise GptkitError(f"--max-new-tokens {max_new_tokens}: must be >= 0")


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Scale by temperature and mask (to -inf) what top-k / top-p exclude. logits: (B, V) -> (B, V)."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1): the k-th largest logit
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        # Nucleus sampling (Holtzman et al. 2019): keep the smallest set of tokens whose probability reaches top_p.
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs  # probability of the tokens ranked above each one
        drop_sorted = mass_before >= top_p  # the top token always has 0 before it, so it is always kept
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token for each row. logits: (B, V) -> ids (B, 1)."""
    if temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    probs = torch.softmax(filter_logits(logits.float(), temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


@torch.no_grad()
def generate_tokens(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the next token ids, (B, 1) each, `max_new_tokens` times.

    Args:
        model: a GPT (put in eval mode here).
        idx: (B, T) prompt ids on the model's device, T >= 1.
        seed: seeds a private generator, so the same seed gives the same text without touching global RNG.
    """
    check_sampling_args(temperature, top_k, top_p, max_new_tokens)
    if idx.size(1) == 0:
        raise GptkitError("generate: the prompt is empty; give at least one token")
    model.eval()
    block_size = model.config.block_size
    generator = None
    if seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    for _ in range(max_new_tokens):
        context = idx[:, -block_size:]  # (B, <=block_size): a sliding window once the context is full
        logits, _ = model(context, last_only=True)  # (B, 1, V)
        next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
        idx = torch.cat([idx, next_id], dim=1)
        yield next_id
