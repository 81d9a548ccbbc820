"""Where and how tensors run: device choice, seeding, mixed-precision context, and a peak-FLOP/s probe.

`pick_device("auto")` prefers cuda > mps > cpu and never hard-codes one. `autocast_for` gives bf16/fp16
autocast only where the hardware has fast support (on CPUs bf16 matmuls are ~100x slower, so auto means
float32 there). `measure_peak_flops` times a few large matmuls so MFU is against this machine, not a datasheet.
"""

import contextlib
import os
import shutil
import sys
import time

import torch

from gptkit.errors import GptkitError


def pick_device(requested: str = "auto") -> torch.device:
    """Return the device to use: `auto` picks cuda > mps > cpu; anything else is checked and returned."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise GptkitError(f"`train.device`={requested!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GptkitError(
            f"`train.device`={requested!r} but CUDA is not available here; use cpu or auto (--device cpu)"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GptkitError(f"`train.device`={requested!r} but MPS is not available here; use cpu or auto (--device cpu)")
    return device


def compile_blocker(device: torch.device) -> str | None:
    """Why `torch.compile` cannot run on `device` here, or None. On a CPU its backend (Inductor) builds C++
    kernels with `$CXX`, else g++ (clang++ on macOS, cl on Windows): without it the run would fail at its first
    step with a long traceback."""
    if device.type != "cpu":
        return None
    default = {"darwin": "clang++", "win32": "cl"}.get(sys.platform, "g++")
    compiler = os.environ.get("CXX") or default
    if shutil.which(compiler):
        return None
    return f"no C++ compiler {compiler!r}, which torch.compile needs on a CPU (install {default}, or set CXX)"


def resolve_dtype(requested: str, device: torch.device) -> torch.dtype:
    """The compute dtype for autocast: bf16 only on CUDA devices that support it unless asked explicitly (on a
    CPU, the trainer then probes whether bf16 pays: `gptkit.train.precision`)."""
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[requested]


def autocast_for(device: torch.device, dtype: torch.dtype):
    """A context manager running matmuls in `dtype` (a no-op for float32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_peak_flops(device: torch.device, dtype: torch.dtype = torch.float32, seconds: float = 0.3) -> float:
    """Achievable matmul FLOP/s on `device` in `dtype`, from square matmuls timed for about `seconds`."""
    n = 1024 if device.type == "cpu" else 4096
    # A private generator: the probe must not consume the global RNG that dropout (and exact resume) rely on.
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    for _ in range(2):  # warm up kernels and thread pools
        a @ b
    synchronize(device)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best
