"""A gptkit model as llama.cpp's `gpt2` or `llama` architecture: which one, its metadata, its tensors.

llama.cpp names tensors `token_embd`, `blk.N.attn_qkv`, ... and keeps PyTorch's (out, in) layout for matrices.
Three differences from our weights: its `gpt2` graph requires every bias (a model trained with
`model.bias=false` gets zeros, which change nothing); its `llama` RoPE rotates adjacent pairs (x[2i], x[2i+1])
where ours rotates (x[i], x[i + hs/2]), so the rows of each query and key head are interleaved to match; and
llama.cpp aborts on a position its `gpt2` table lacks, while its tools open 4,096-token contexts by default
(llama-cpp-python 512), so the learned position table gets zero rows up to 4,096 (gptkit never reads past
block_size: it slides its window instead; llama.cpp then runs on without position information, not crashes).
Pure functions on tensors; writing the file is `gptkit.gguf_export`'s job.
"""

import numpy as np
import torch

from gptkit.checkpoint import weights_state
from gptkit.config import GPTConfig
from gptkit.errors import GptkitError
from gptkit.model import mlp_hidden_size


def gguf_architecture(m: GPTConfig) -> str:
    """ "gpt2" or "llama", or a one-line error naming the option llama.cpp has no architecture for."""
    if setting := m.beyond_gpt2_and_llama():
        raise GptkitError(f"export --format gguf: {setting} has no llama.cpp architecture (gpt2 or llama)")
    needs = {"learned": ("gpt2", "layernorm", "gelu"), "rope": ("llama", "rmsnorm", "swiglu")}
    if m.pos not in needs:
        raise GptkitError(
            f"export --format gguf: `model.pos`={m.pos!r} has no llama.cpp architecture (gpt2: learned, llama: rope)"
        )
    arch, norm, mlp = needs[m.pos]
    for key, wanted in (("norm", norm), ("mlp", mlp)):
        if getattr(m, key) != wanted:
            raise GptkitError(
                f"export --format gguf: a `model.pos`={m.pos} model is llama.cpp's {arch}, which needs "
                f"`model.{key}`={wanted} (this run has {getattr(m, key)!r})"
            )
    return arch


LLAMA_CPP_CONTEXT = 4096  # the context llama-cli, llama-server, Ollama and LM Studio open by default
LLAMA_CPP_CONTEXT_STEP = 256  # llama.cpp rounds every context up to a multiple of this


def context_length(m: GPTConfig, arch: str) -> int:
    """What the file says: block_size, or for learned positions the rows of the padded position table."""
    if arch != "gpt2":
        return m.block_size
    step = LLAMA_CPP_CONTEXT_STEP
    return max(LLAMA_CPP_CONTEXT, -(-m.block_size // step) * step)


def add_metadata(writer, m: GPTConfig, arch: str) -> None:
    """The hyper-parameters llama.cpp reads for `arch`, and the context gptkit trained with."""
    writer.add_context_length(context_length(m, arch))
    writer.add_uint32("gptkit.block_size", m.block_size)
    writer.add_embedding_length(m.n_embd)
    writer.add_block_count(m.n_layer)
    writer.add_feed_forward_length(mlp_hidden_size(m))
    writer.add_head_count(m.n_head)
    writer.add_head_count_kv(m.n_kv_head or m.n_head)
    writer.add_vocab_size(m.vocab_size)
    if arch == "gpt2":
        writer.add_layer_norm_eps(m.norm_eps)
    else:
        writer.add_layer_norm_rms_eps(m.norm_eps)
        writer.add_rope_freq_base(m.rope_theta)
        writer.add_rope_dimension_count(m.n_embd // m.n_head)


GPT2_LAYER = (
    ("ln_1", "attn_norm"),
    ("attn.c_attn", "attn_qkv"),
    ("attn.c_proj", "attn_output"),
    ("ln_2", "ffn_norm"),
    ("mlp.c_fc", "ffn_up"),
    ("mlp.c_proj", "ffn_down"),
)
LLAMA_LAYER = (
    ("ln_1", "attn_norm"),
    ("attn.c_proj", "attn_output"),
    ("ln_2", "ffn_norm"),
    ("mlp.c_gate", "ffn_gate"),
    ("mlp.c_fc", "ffn_up"),
    ("mlp.c_proj", "ffn_down"),
)


def gguf_tensors(model: torch.nn.Module, arch: str) -> dict[str, np.ndarray]:
    """Every tensor llama.cpp loads for `arch`, float32, under its names, in file order."""
    ours = {name: tensor.float().numpy() for name, tensor in weights_state(model).items()}
    m = model.config
    out = {"token_embd.weight": ours["transformer.wte.weight"]}
    if arch == "gpt2":
        table = ours["transformer.wpe.weight"]
        padding = np.zeros((context_length(m, arch) - len(table), m.n_embd), dtype=np.float32)
        out["position_embd.weight"] = np.concatenate([table, padding])
    for i in range(m.n_layer):
        prefix = f"transformer.h.{i}."
        if arch == "llama":
            out.update(_llama_attention(ours, prefix, f"blk.{i}.", m))
        for our_name, their_name in GPT2_LAYER if arch == "gpt2" else LLAMA_LAYER:
            weight = ours[f"{prefix}{our_name}.weight"]
            out[f"blk.{i}.{their_name}.weight"] = weight
            bias = ours.get(f"{prefix}{our_name}.bias")
            if bias is None and arch == "gpt2":  # llama.cpp's gpt2 graph requires all biases
                bias = np.zeros(weight.shape[0], dtype=np.float32)
            if bias is not None:
                out[f"blk.{i}.{their_name}.bias"] = bias
    out["output_norm.weight"] = ours["transformer.ln_f.weight"]
    if arch == "gpt2":
        out["output_norm.bias"] = ours.get("transformer.ln_f.bias", np.zeros(m.n_embd, dtype=np.float32))
    if "lm_head.weight" in ours:  # untied; a tied head is read from token_embd, as llama.cpp does
        out["output.weight"] = ours["lm_head.weight"]
    return out


def _llama_attention(ours: dict, prefix: str, blk: str, m: GPTConfig) -> dict[str, np.ndarray]:
    """q, k, v split from our fused matrix (and bias), q and k rows interleaved for llama.cpp's RoPE."""
    heads, kv_heads, hs = m.n_head, m.n_kv_head or m.n_head, m.n_embd // m.n_head
    out = {}
    for kind in ("weight", "bias"):
        fused = ours.get(f"{prefix}attn.c_attn.{kind}")
        if fused is None:
            continue
        q, k, v = np.split(fused, [heads * hs, (heads + kv_heads) * hs], axis=0)
        out[f"{blk}attn_q.{kind}"] = interleave_rope_rows(q, heads)
        out[f"{blk}attn_k.{kind}"] = interleave_rope_rows(k, kv_heads)
        out[f"{blk}attn_v.{kind}"] = v
    return out


def interleave_rope_rows(rows: np.ndarray, heads: int) -> np.ndarray:
    """Within each head, rows (0..hs/2-1, hs/2..hs-1) -> (0, hs/2, 1, hs/2+1, ...): rotate-half pairs become
    adjacent pairs, so llama.cpp's rotation of (2i, 2i+1) is ours of (i, i + hs/2)."""
    shape = rows.shape
    half = shape[0] // heads // 2
    return np.ascontiguousarray(rows.reshape(heads, 2, half, *shape[1:]).swapaxes(1, 2).reshape(shape))
