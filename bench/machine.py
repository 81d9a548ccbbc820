"""What machine a benchmark ran on, for its JSON: the CPU model, its SIMD flags (AVX-512, AMX), the kernels
PyTorch picked, the thread count, and the matmul peak measured here in fp32 and bf16. Ratios between peers
hold only on one machine, so every benchmark records this beside its figures."""

import platform

import torch

from gptkit.runtime import measure_peak_flops

SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
)


def cpu_info() -> dict:
    """The CPU model and its SIMD flags from /proc/cpuinfo, and the kernels PyTorch picked for it."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    present = set(value.split())
                    flags = [flag for flag in SIMD_FLAGS if flag in present]
                    break
    except OSError:
        pass
    return {"cpu": model, "simd_flags": flags, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def machine(device: torch.device) -> dict:
    """`cpu_info`, threads and the measured matmul peaks (GFLOP/s) in fp32 and bf16 on `device`."""
    peaks = {
        str(dtype).removeprefix("torch."): measure_peak_flops(device, dtype)
        for dtype in (torch.float32, torch.bfloat16)
    }
    return {
        **cpu_info(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "peak_gflops": {name: round(flops / 1e9, 1) for name, flops in peaks.items()},
    }
