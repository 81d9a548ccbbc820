"""The decode path: a prompt, then one new token per row at a time, through a GPT with a KV cache, with as
little work per token as the numbers allow.

Sampling a small model is dominated by per-call overhead, not arithmetic: at `cpu-baby`'s size a token costs
about 80 tiny ops, and each `nn.Module` call adds several microseconds of hook bookkeeping to an op that itself
takes a few. `DecodeStep` walks the same layers as `GPT.forward` with the same weights, kernels and order, so
it gives the same logits (tests/test_decode.py checks every architecture option, int8 layers, bf16 weights
and autocast against `GPT.forward`; with LoRA adapters the prompt's last logits can differ in the last bit,
as their extra matmuls see a (B, C) rather than a (B, 1, C) input). It calls the plain layers' kernels
directly (the `addmm` that `F.linear` runs on rows, the `layer_norm` that `F.layer_norm` calls), works on
(B*T, C) rows, and skips what generation never needs (masks, dropout, position gathers, logits of any
position but the last). `generate_tokens` uses it whenever the rows have no padding; padded batches,
attention recording, hooks and training mode take `GPT.forward`. It is built per generation and binds the
layers it finds then: hooks or modules changed while a generation is paused at a token take effect from the
next generation. Measured in `bench/generate_speed.py` (docs/benchmarks.md).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.modules.module as module_registry

from gptkit.model import GPT, KVCache, LayerNorm, apply_rope


def _linear(layer: nn.Module):
    """x (B, in) -> layer(x) without the module-call overhead: for a plain nn.Linear the very `addmm` (or `mm`)
    that `F.linear` runs on 2-D inputs, on a transposed view made once; other layers (LoRA, int8) keep theirs."""
    if type(layer) is not nn.Linear:
        return layer.forward
    transposed, bias = layer.weight.t(), layer.bias
    if bias is None:
        return lambda x: torch.mm(x, transposed)
    return lambda x: torch.addmm(bias, x, transposed)


def _norm(layer: nn.Module):
    """x -> layer(x): for gptkit's LayerNorm the very `torch.layer_norm` call `F.layer_norm` makes."""
    if type(layer) is not LayerNorm:
        return layer.forward
    shape, weight, bias, eps = layer.weight.shape, layer.weight, layer.bias, layer.eps
    return lambda x: torch.layer_norm(x, shape, weight, bias, eps)


def _embedding(layer: nn.Module):
    if type(layer) is not nn.Embedding:
        return layer.forward  # LoRA's embedding with trainable new rows
    weight = layer.weight
    return lambda ids: torch.index_select(weight, 0, ids)  # the rows F.embedding would gather, one op


class DecodeStep:
    """`step(ids, cache)`: ids (B, T) of the tokens at positions `cache.length`.. -> logits (B, vocab) float32 of
    the token after them; built per generation, for a model in eval mode that `supports` accepts."""

    def __init__(self, model: GPT):
        config = model.config
        self.wte = _embedding(model.transformer.wte)
        self.wpe = model.transformer.wpe.weight if "wpe" in model.transformer else None
        self.rope = (model.rope_cos, model.rope_sin) if config.pos == "rope" else None
        self.block_size = config.block_size
        self.layers = []
        for block in model.transformer.h:
            attn, mlp = block.attn, block.mlp
            self.layers.append(
                (
                    _norm(block.ln_1),
                    _linear(attn.c_attn),
                    None if attn.q_norm is None else (attn.q_norm.forward, attn.k_norm.forward),
                    _linear(attn.c_proj),
                    _norm(block.ln_2),
                    self._mlp(mlp),
                )
            )
        self.heads = (config.n_head, config.n_kv_head or config.n_head, config.n_embd // config.n_head)
        self.ln_f = _norm(model.transformer.ln_f)
        self.head = _linear(model.lm_head)
        self.softcap = config.logit_softcap

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """Whether `model` is a GPT this step reproduces exactly: causal, nothing recording attention, no hooks."""
        if type(model) is not GPT or not model.config.causal or model.training:
            return False
        if any(block.attn.recorder is not None for block in model.transformer.h):
            return False
        if getattr(module_registry, "_global_forward_hooks", None) or getattr(
            module_registry, "_global_forward_pre_hooks", None
        ):  # hooks on every module (nn.modules.module.register_module_forward_hook)
            return False
        return not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())

    @staticmethod
    def _mlp(mlp: nn.Module):
        up, down = _linear(mlp.c_fc), _linear(mlp.c_proj)
        if hasattr(mlp, "c_gate"):  # SwiGLU
            gate = _linear(mlp.c_gate)
            return lambda x: down(F.silu(gate(x)) * up(x))
        activation = mlp.activation
        return lambda x: down(activation(up(x)))

    def __call__(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """ids (B, T) at positions cache.length.. -> logits (B, vocab) float32 for the token after the last one.

        T > 1 only into an empty cache (a prompt, or the window after a slide); then T = 1 per new token."""
        B, T = ids.shape
        past = cache.length
        if past + T > self.block_size:
            raise ValueError(f"{past + T} positions exceed block_size={self.block_size}")
        if T > 1 and past > 0:
            raise ValueError("DecodeStep: several tokens only into an empty cache")
        nh, nkv, hs = self.heads
        x = self.wte(ids.reshape(-1))  # (B*T, C): rows of the batch, position by position
        if self.wpe is not None:
            if T == 1:
                x = x + self.wpe[past]
            else:
                x = (x.view(B, T, -1) + self.wpe[:T]).view(B * T, -1)
        rope = None
        if self.rope is not None:
            rope = (self.rope[0][past], self.rope[1][past]) if T == 1 else (self.rope[0][:T], self.rope[1][:T])
        for index, (ln_1, qkv_proj, qk_norm, out_proj, ln_2, mlp) in enumerate(self.layers):
            qkv = qkv_proj(ln_1(x))  # (B*T, heads * hs)
            qkv = qkv.view(B, nh + 2 * nkv, 1, hs) if T == 1 else qkv.view(B, T, nh + 2 * nkv, hs).transpose(1, 2)
            q, kv = qkv.narrow(1, 0, nh), qkv.narrow(1, nh, 2 * nkv)  # narrow: cheaper than split
            if qk_norm is None and rope is None:  # keys and values side by side: stored with one copy
                keys, values = cache.update_kv(index, kv)  # (B, nkv, L+T, hs) each
            else:
                k, v = kv.narrow(1, 0, nkv), kv.narrow(1, nkv, nkv)
                if qk_norm is not None:
                    q, k = qk_norm[0](q), qk_norm[1](k)
                if rope is not None:
                    q, k = apply_rope(q, *rope), apply_rope(k, *rope)
                keys, values = cache.update(index, k, v)
            if nkv != nh:
                keys = keys.repeat_interleave(nh // nkv, dim=1)
                values = values.repeat_interleave(nh // nkv, dim=1)
            if q.dtype == torch.bfloat16 and q.device.type == "cpu":  # as GPT.forward: CPU attention in fp32
                with torch.autocast("cpu", enabled=False):
                    y = F.scaled_dot_product_attention(q.float(), keys.float(), values.float(), is_causal=T > 1)
            else:
                y = F.scaled_dot_product_attention(q, keys, values, is_causal=T > 1)  # (B, nh, T, hs)
            y = y.view(B, nh * hs) if T == 1 else y.transpose(1, 2).reshape(B * T, nh * hs)
            x = x + out_proj(y if y.dtype == qkv.dtype else y.type_as(qkv))
            x = x + mlp(ln_2(x))
        cache.advance(T)
        if T > 1:
            x = x.view(B, T, -1)[:, -1]  # (B, C): only the last position's logits are wanted
        logits = self.head(self.ln_f(x)).float()  # (B, vocab)
        if self.softcap > 0:
            logits = self.softcap * torch.tanh(logits / self.softcap)
        return logits
