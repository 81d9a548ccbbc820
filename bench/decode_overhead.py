"""Where a small model's generated token goes, as one JSON object: the microseconds of one decode step
(`gptkit.decode.DecodeStep`, `cpu-baby`, batch 1, one token after 20 cached) and of a `Run.generate_ids`
call, split into its first token (checks, set-up, a 16-token prompt and one token) and each further token,
beside the cost of each kernel the step calls (timed alone at the step's shapes: the four linear layers of a
block, LayerNorm, tanh GELU, SDPA), of a near-empty PyTorch call (`torch.empty`), and the operator events of
one step (nested ones included).

A `cpu-baby` token is about 1.6 MFLOP, about 11 us at this machine's matmul peak; the rest is the cost of
calling PyTorch's kernels, which is what this shows (docs/benchmarks.md, "Generation speed"). numpy's `dot`
on the qkv layer's (1, 128) x (128, 384) product is timed for scale: a lighter call into another BLAS.
Usage: python bench/decode_overhead.py
"""

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from machine import machine

from gptkit.config import RunConfig, resolve_config
from gptkit.decode import DecodeStep
from gptkit.model import GPT, KVCache
from gptkit.run import Run


def microseconds(call, repeats: int) -> float:
    """The mean time of `call` over `repeats` calls, after a warm-up; in microseconds."""
    for _ in range(max(50, repeats // 20)):
        call()
    began = time.perf_counter()
    for _ in range(repeats):
        call()
    return round(1e6 * (time.perf_counter() - began) / repeats, 2)


def addmm(fan_in: int, fan_out: int):
    """One row through a linear layer as the decode step runs it: `addmm` on a transposed weight view."""
    x, weight, bias = torch.randn(1, fan_in), torch.randn(fan_out, fan_in), torch.randn(fan_out)
    transposed = weight.t()
    return lambda: torch.addmm(bias, x, transposed)


def kernels(width: int, heads: int, cached: int) -> dict:
    """Each kernel of a GPT-2 decode step alone, on one row of `width`: what the step pays per call."""
    x, gain, shift = torch.randn(1, width), torch.ones(width), torch.zeros(width)
    qkv_weight = torch.randn(3 * width, width)
    qkv_transposed = qkv_weight.t()
    q = torch.randn(1, heads, 1, width // heads)
    keys, values = torch.randn(1, heads, cached, width // heads), torch.randn(1, heads, cached, width // heads)
    hidden = torch.randn(1, 4 * width)
    x_np, qkv_np = x.numpy(), np.ascontiguousarray(qkv_transposed.numpy())
    calls = {
        "torch_empty": lambda: torch.empty(width),
        "add": lambda: x + x,
        "addmm_qkv": addmm(width, 3 * width),
        "addmm_attn_proj": addmm(width, width),
        "addmm_mlp_fc": addmm(width, 4 * width),
        "addmm_mlp_proj": addmm(4 * width, width),
        "mm_qkv": lambda: torch.mm(x, qkv_transposed),
        "numpy_dot_qkv": lambda: np.dot(x_np, qkv_np),
        "layer_norm": lambda: torch.layer_norm(x, (width,), gain, shift, 1e-5),
        "gelu_tanh_mlp": lambda: F.gelu(hidden, approximate="tanh"),
        "sdpa": lambda: F.scaled_dot_product_attention(q, keys, values),
    }
    return {name: microseconds(call, 20000) for name, call in calls.items()}


def calls_per_step(step) -> dict:
    """How many operator events a decode step makes: all `aten::` ones (nested ones included), and the main
    kernels' (top-level calls)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        for _ in range(10):
            step()
    counts = {event.key: event.count / 10 for event in profiled.key_averages() if event.key.startswith("aten::")}
    wanted = (
        "aten::addmm",
        "aten::mm",
        "aten::layer_norm",
        "aten::gelu_",  # in place on the MLP's output tensor (gptkit.decode's token path)
        "aten::scaled_dot_product_attention",
        "aten::index_copy_",  # the token's keys and values into the cache
        "aten::as_strided",  # the cache's keys and values so far (nested ones included)
    )
    return {"aten_events_all": sum(counts.values()), **{name: counts.get(name, 0) for name in wanted}}


def main() -> None:
    torch.set_grad_enabled(False)
    config = resolve_config(preset="cpu-baby").model
    config.vocab_size = 65  # Tiny Shakespeare's characters
    torch.manual_seed(0)
    model = GPT(config).eval()
    run = Run(Path("."), model, None, RunConfig(model=config), torch.device("cpu"))
    prompt, one = torch.randint(0, config.vocab_size, (1, 16)), torch.tensor([[3]])
    step, cache = DecodeStep(model), KVCache(config, 1, config.block_size, "cpu")

    def token() -> None:
        cache.length = 20
        with torch.inference_mode():
            step(one, cache)

    first = microseconds(lambda: run.generate_ids(prompt, 1, temperature=0), 500)
    longer = microseconds(lambda: run.generate_ids(prompt, 41, temperature=0), 200)
    result = {
        "preset": "cpu-baby",
        "params": model.num_params(),
        "decode_step_us": microseconds(token, 3000),
        "generate_ids_first_token_us": first,  # checks, set-up, the 16-token prompt and one token
        "generate_ids_per_further_token_us": round((longer - first) / 40, 2),
        "kernels_us": kernels(config.n_embd, config.n_head, 20),
        "calls_per_step": calls_per_step(token),
        "machine": machine(torch.device("cpu")),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
