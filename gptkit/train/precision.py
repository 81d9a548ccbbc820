"""What `train.dtype=auto` means on a CPU: bf16 autocast where a start-up probe shows it faster, else float32.

CPUs with native bf16 matmuls (AVX512-BF16, AMX) multiply about twice as fast in bf16, but every autocast
matmul also casts its inputs, and PyTorch's CPU kernels for attention and element-wise work gain nothing,
so whether a step gets faster depends on the model's shapes. The probe times a few forward + backward passes
of the real model, in float32 and in bf16, alternating, on random tokens (rows of the real block size, at
most 4096 tokens), and takes bf16 only when its median is at least 10% faster: near-ties stay float32. It
leaves no trace: the global RNG is restored (dropout draws from it) and the gradients are cleared. Models
below 1 GFLOP per probe pass (6 x parameters x tokens) are not probed (casting costs more than it saves
there), nor CPUs without native bf16. A run keeps its first choice when resumed (it is saved in the
checkpoint), so a resume is exact.
Entry point: `choose_cpu_dtype`.
"""

import statistics
import time
from dataclasses import dataclass

import torch

from gptkit.runtime import autocast_for

PROBE_TOKENS = 4096
PROBE_STEPS = 3  # timed passes of each dtype, after one untimed
MIN_GFLOP_PER_PROBE = 1.0
SPEEDUP_NEEDED = 0.9  # bf16 median / float32 median at most this


@dataclass(frozen=True)
class DtypeChoice:
    dtype: torch.dtype
    reason: str  # for the start-up line


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (x86 AVX512-BF16 or AMX; PyTorch's own checks)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def choose_cpu_dtype(model: torch.nn.Module, batch_size: int, agree=lambda faster: faster) -> DtypeChoice:
    """float32 or bf16 for training `model` on this CPU. `agree(faster)` combines the ranks' verdicts under
    torchrun (bf16 only if every rank found it faster), so all of them train in one dtype; every rank calls
    it exactly once, whatever its own verdict, so the collective always pairs up."""
    config = model.config
    rows = max(1, min(batch_size, PROBE_TOKENS // config.block_size))
    verdict, reason = False, None
    if model.flops_per_token() * rows * config.block_size < MIN_GFLOP_PER_PROBE * 1e9:
        reason = "auto: the model is too small for bf16 to pay on a CPU"
    elif not native_bf16():
        reason = "auto: this CPU has no native bf16 (AVX512-BF16 or AMX)"
    else:
        try:
            fp32_s, bf16_s = probe_step_seconds(model, rows)
        except RuntimeError as err:  # e.g. out of memory: float32, which the memory check allowed for
            reason = f"auto: the bf16 probe failed ({str(err)[:80]})"
        else:
            verdict = bf16_s <= SPEEDUP_NEEDED * fp32_s
            measured = f"a probe step took {bf16_s * 1e3:.0f} ms in bf16, {fp32_s * 1e3:.0f} ms in float32"
            reason = f"auto: {measured}" + ("" if verdict else f"; bf16 must save {1 - SPEEDUP_NEEDED:.0%}")
    if agree(verdict):
        return DtypeChoice(torch.bfloat16, reason)
    if verdict:
        reason = "auto: another process found bf16 not faster"
    return DtypeChoice(torch.float32, reason)


def probe_step_seconds(model: torch.nn.Module, rows: int) -> tuple[float, float]:
    """Median seconds of a forward + backward pass of `model` on `rows` random windows: (float32, bf16)."""
    config, device = model.config, next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    windows = torch.randint(config.vocab_size, (rows, config.block_size + 1), generator=generator).to(device)
    inputs, targets = windows[:, :-1], windows[:, 1:]
    rng, was_training = torch.get_rng_state(), model.training

    def seconds(dtype: torch.dtype) -> float:
        began = time.perf_counter()
        with autocast_for(device, dtype):
            _, loss = model(inputs, targets, return_logits=False)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - began

    times: dict[torch.dtype, list[float]] = {torch.float32: [], torch.bfloat16: []}
    model.train()
    try:
        for dtype in times:  # warm-up: kernels, thread pools, autocast's first casts
            seconds(dtype)
        for repeat in range(PROBE_STEPS):
            for dtype in list(times)[:: 1 if repeat % 2 == 0 else -1]:
                times[dtype].append(seconds(dtype))
    finally:
        torch.set_rng_state(rng)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return statistics.median(times[torch.float32]), statistics.median(times[torch.bfloat16])
