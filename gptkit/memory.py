"""Memory a model needs, worked out from its config before anything is allocated, and the check that refuses
what cannot fit.

A config is a few bytes of text, but `n_layer = 10000` or `batch_size = 10000000` asks for terabytes: building
such a model first and failing later hands the machine to the kernel's OOM killer. `param_count` counts the
parameters exactly from the config (no tensor is made); `training_bytes` adds the optimizer state and a lower
bound on activations; `check_training_fits` and `check_model_fits` compare that with the memory this device has
free and raise a one-line `GptkitError` naming the settings. The estimate is a floor, so what it refuses would
not fit. Entry points: `param_count`, `check_training_fits`, `check_model_fits`.
"""

import os
from dataclasses import dataclass, replace

import torch

from gptkit.config import GPTConfig, RunConfig
from gptkit.errors import GptkitError
from gptkit.linear_loss import chunk_rows
from gptkit.lora import trainable_count
from gptkit.model import mlp_hidden_size

FLOAT_BYTES = 4  # weights, gradients and optimizer moments are float32, whatever the compute dtype
ADAMW_BYTES_PER_PARAM = 4 * FLOAT_BYTES  # weight, gradient, two moments
SKIP_HINT = "pass check_memory=False (--skip-memory-check) if you know better"


def param_count(m: GPTConfig) -> int:
    """Parameters of `GPT(m)`, each shared (tied) tensor once, counted from the config alone.

    Python integers, so a config asking for 10**26 layers gives an exact, huge number instead of an overflow."""
    if m.arch == "bigram":  # one (vocab x vocab) table
        return m.vocab_size * m.vocab_size
    C, hs = m.n_embd, m.n_embd // m.n_head
    kv = m.n_kv_head or m.n_head
    bias = 1 if m.bias else 0
    norm_per_width = 2 if m.norm == "layernorm" and m.bias else 1  # a gain, and a bias for LayerNorm (not RMSNorm)
    norm = C * norm_per_width
    qkv_out = (m.n_head + 2 * kv) * hs
    attention = C * qkv_out + bias * qkv_out + C * C + bias * C
    if m.qk_norm:
        attention += 2 * hs * norm_per_width
    hidden = mlp_hidden_size(m)
    matrices_in = 2 if m.mlp == "swiglu" else 1
    mlp = matrices_in * (C * hidden + bias * hidden) + hidden * C + bias * C
    block = 2 * norm + attention + mlp
    embeddings = m.vocab_size * C + (m.block_size * C if m.pos == "learned" else 0)
    head = 0 if m.tie_embeddings else m.vocab_size * C
    return embeddings + m.n_layer * block + norm + head


def buffer_bytes(m: GPTConfig) -> int:
    """The RoPE tables (cos and sin for every position), the model's only buffers."""
    return FLOAT_BYTES * 2 * m.block_size * (m.n_embd // m.n_head // 2) if m.pos == "rope" else 0


def model_bytes(m: GPTConfig) -> int:
    """The model's float32 weights and buffers."""
    return FLOAT_BYTES * param_count(m) + buffer_bytes(m)


def activation_bytes(
    m: GPTConfig,
    batch_size: int,
    dtype: torch.dtype = torch.float32,
    device_type: str = "cpu",
    recompute: bool = False,
) -> int:
    """A floor on what one micro-batch keeps for its backward pass: per layer the block's inputs, q/k/v, the
    attention output and the MLP's hidden activations (in the compute `dtype`); one chunk of logits and their
    softmax (always float32; `gptkit.linear_loss` never holds more); and, where attention with dropout has no
    fused kernel (CPU, MPS), one T x T score matrix per head and layer. With `recompute` (activation
    checkpointing) every block keeps only its input, and one block's activations are rebuilt at a time in the
    backward pass, after the logits are gone: the larger of the two is added."""
    tokens = batch_size * m.block_size
    if m.arch == "bigram":  # the looked-up logits and their softmax
        return FLOAT_BYTES * 2 * tokens * m.vocab_size
    hidden = mlp_hidden_size(m) * (3 if m.mlp == "swiglu" else 2)
    per_layer = tokens * (8 * m.n_embd + hidden)
    if m.attention_dropout() > 0 and device_type != "cuda":
        per_layer += batch_size * m.n_head * m.block_size * m.block_size
    compute_bytes = torch.empty((), dtype=dtype).element_size()
    logits = FLOAT_BYTES * 2 * min(tokens, chunk_rows(m.vocab_size)) * m.vocab_size
    if recompute:
        block_inputs = compute_bytes * m.n_layer * tokens * m.n_embd
        return block_inputs + max(compute_bytes * per_layer, logits)
    return compute_bytes * m.n_layer * per_layer + logits


def available_bytes(device: torch.device) -> int:
    """Memory free for this process on `device` (a CPU's available RAM; a GPU's free memory)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:  # macOS and other Unixes: the physical memory (an MPS device shares it too)
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: check nothing


def human(size: int) -> str:
    """Bytes as a short text: 912 MB, 1.2 TB, 3.4e+22 bytes."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if size < 1e15 else f"{float(size):.1e} bytes"
    return f"{size} bytes"


def _where(device: torch.device) -> str:
    return "this machine" if device.type == "cpu" else str(device)


def _shape_settings(m: GPTConfig) -> str:
    return (
        f"`model.n_layer`={m.n_layer}, `model.n_embd`={m.n_embd}, `model.vocab_size`={m.vocab_size}, "
        f"`model.block_size`={m.block_size}"
    )


@dataclass
class TrainingMemory:
    """What a training run needs at least, in bytes."""

    state: int  # weights, gradients, optimizer moments
    activations: int  # one micro-batch's saved activations
    batch: int  # the micro-batch's token ids (inputs and targets, int64)

    @property
    def total(self) -> int:
        return self.state + self.activations + self.batch


def training_bytes(config: RunConfig, dtype: torch.dtype = torch.float32, device_type: str = "cpu") -> TrainingMemory:
    m, t = config.model, config.train
    weights = param_count(m)
    trained = trainable_count(m, config.lora) if config.lora.r else weights  # LoRA: the adapters alone
    return TrainingMemory(
        state=FLOAT_BYTES * weights + (ADAMW_BYTES_PER_PARAM - FLOAT_BYTES) * trained + buffer_bytes(m),
        activations=activation_bytes(m, t.batch_size, dtype, device_type, recompute=t.recompute),
        batch=2 * 8 * t.batch_size * m.block_size,
    )


def check_training_fits(
    config: RunConfig, device: torch.device, processes: int = 1, dtype: torch.dtype = torch.float32
) -> None:
    """Refuse a run whose weights, optimizer state and one micro-batch cannot fit in `device`'s free memory.

    `processes` that share this memory (torchrun on one machine's CPU) each need their own copy; `dtype` is
    the compute dtype of autocast (bf16 activations take half the room)."""
    need = training_bytes(config, dtype, device.type)
    free = available_bytes(device)
    if need.total * processes <= free:
        return
    m, t = config.model, config.train
    shared = f" for {processes} processes" if processes > 1 else ""
    lighter = training_bytes(replace(config, train=replace(t, recompute=True)), dtype, device.type)
    recompute = (
        "set `train.recompute=true` (activation checkpointing), "
        if not t.recompute and lighter.total * processes <= free
        else ""
    )
    raise GptkitError(
        f"the run needs at least {human(need.total * processes)}{shared} but {_where(device)} has {human(free)} free: "
        f"{param_count(m):,} parameters ({_shape_settings(m)}) take {human(need.state)} with gradients and AdamW "
        f"state, and a micro-batch (`train.batch_size`={t.batch_size} x block {m.block_size}) "
        f"{human(need.activations + need.batch)}; {recompute}make them smaller, or {SKIP_HINT}"
    )


def check_model_fits(m: GPTConfig, device: torch.device, source: str) -> None:
    """Refuse to build a model whose weights alone cannot fit in `device`'s free memory."""
    need, free = model_bytes(m), available_bytes(device)
    if need > free:
        raise GptkitError(
            f"{source}: the model has {param_count(m):,} parameters ({_shape_settings(m)}), {human(need)} of "
            f"weights, but {_where(device)} has {human(free)} free; {SKIP_HINT}"
        )
