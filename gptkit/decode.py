"""The decode path: a prompt, then one new token per row at a time, through a GPT with a KV cache, with as
little work per token as the numbers allow.

Sampling a small model is dominated by per-call overhead, not arithmetic: at `cpu-baby`'s size a token costs
a few dozen tiny ops, and each `nn.Module` call adds several microseconds of hook bookkeeping to an op that itself
takes a few. `DecodeStep` walks the same layers as `GPT.forward` with the same weights, kernels and order, so
it gives the same logits (tests/test_decode.py checks every architecture option, int8 layers, bf16 weights
and autocast against `GPT.forward`; with LoRA adapters the prompt's last logits can differ in the last bit,
as their extra matmuls see a (B, C) rather than a (B, 1, C) input). It calls the plain layers' kernels
directly (the `addmm` that `F.linear` runs on rows, the `layer_norm` that `F.layer_norm` calls), works on
(B*T, C) rows, and skips what generation never needs (masks, dropout, position gathers, logits of any
position but the last). Each new token (on a CPU or a CUDA GPU, without autocast or autograd) allocates almost
nothing: the plain linear layers write into tensors made once per step, the residual adds and the
activation work in place, and the KV cache is written by `index_copy_` and read through `as_strided` views
(cheaper calls than `narrow` and `copy_`; same values). `generate_tokens` uses it whenever the rows have no
padding; padded batches, attention recording, hooks and training mode take `GPT.forward`. A step binds the
layers it finds when made: hooks or modules changed while a generation is paused at a token take effect from
the next generation. A small model's step (and its KV cache) is kept for its next generation
(`decode_step_for`), and made again when a layer or a weight tensor has changed since. Measured in
`bench/generate_speed.py` and `bench/decode_overhead.py` (docs/benchmarks.md).
"""

import threading
import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.modules.module as module_registry

from gptkit.model import GPT, KVCache, LayerNorm, apply_rope


def _linear(layer: nn.Module, rows: int = 0):
    """x (B, in) -> layer(x) without the module-call overhead: for a plain nn.Linear the very `addmm` (or `mm`)
    that `F.linear` runs on 2-D inputs, on a transposed view made once; other layers (LoRA, int8) keep theirs.
    Returns (that call, the call for the token path, the tensor it writes): for a plain layer and `rows` > 0 the
    same product written into one output tensor made here for `rows` rows, so a token allocates nothing; for
    other layers their own call again, and no tensor (their call returns a new one)."""
    if type(layer) is not nn.Linear:
        return layer.forward, layer.forward, None
    params = layer._parameters  # not nn.Module.__getattr__, which costs ~1 us a call in a build of ~100
    weight, bias = _alias(params["weight"]), _alias(params["bias"])
    transposed = weight.t()
    out = weight.new_empty(rows, weight.size(0)) if rows else None
    if bias is None:
        return (lambda x: torch.mm(x, transposed)), (lambda x: torch.mm(x, transposed, out=out)), out
    return (lambda x: torch.addmm(bias, x, transposed)), (lambda x: torch.addmm(bias, x, transposed, out=out)), out


# The MLP activations of gptkit.model, in place on a tensor the step owns: the same kernels as F.gelu and
# F.relu(h).square() (which is h * h), without an allocation. PyTorch has no public in-place GELU, hence
# torch._C._nn.gelu_ (the op behind F.gelu's tensor method family).
_ACTIVATIONS_IN_PLACE = {
    "gelu": lambda h: torch._C._nn.gelu_(h, approximate="tanh"),
    "relu2": lambda h: torch.relu_(h).mul_(h),
}


# A small model's step is kept between its generations (`decode_step_for`): building one costs about 0.3 ms, two
# thirds of a `cpu-baby` token. One generation at a time uses it (its output tensors and KV cache serve one token
# at a time); another at the same time gets its own. A larger model's token costs milliseconds and its weights
# hundreds of MB, which a kept step would hold after `.to()` until the next generation: it gets a new step each
# time. model -> (what the step bound, the step), one per model.
_KEPT_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_KEPT_LOCK = threading.Lock()
_KEEP_BYTES = 64 << 20  # weights (and a KV cache) up to this size are kept; GPT-2 124M's weights take 500 MB


# The one-token path's devices: its `index_copy_` into the cache and `as_strided` views of it are plain
# kernels there; elsewhere (MPS) a token takes the path of any T.
_TOKEN_PATH_DEVICES = ("cpu", "cuda")


def _norm(layer: nn.Module):
    """x -> layer(x): for gptkit's LayerNorm the very `torch.layer_norm` call `F.layer_norm` makes."""
    if type(layer) is not LayerNorm:
        return layer.forward
    shape, weight, bias, eps = layer.weight.shape, _alias(layer.weight), _alias(layer.bias), layer.eps
    return lambda x: torch.layer_norm(x, shape, weight, bias, eps)


def _embedding(layer: nn.Module):
    if type(layer) is not nn.Embedding:
        return layer.forward  # LoRA's embedding with trainable new rows
    weight = _alias(layer.weight)
    return lambda ids: torch.index_select(weight, 0, ids)  # the rows F.embedding would gather, one op


def _alias(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """The same memory without the autograd link to a Parameter, which a kept step would otherwise hold: a view of
    a Parameter blocks PyTorch's tensor-swapping conversions (`.to()` under swap_module_params_on_conversion)."""
    return None if tensor is None else tensor.detach()


class DecodeStep:
    """`step(ids, cache)`: ids (B, T) of the tokens at positions `cache.length`.. -> logits (B, vocab) float32 of
    the token after them, for a model in eval mode that `supports` accepts; serves one generation at a time."""

    def __init__(self, model: GPT, batch_size: int = 0):
        """batch_size: the rows of the generation, to make the one-token path's tensors now (else at its first
        token)."""
        config = model.config
        self.config = config
        self.blocks = list(model.transformer.h)  # not the model: a kept step must not keep its model alive
        modules = model.transformer._modules
        self.wte = _embedding(modules["wte"])
        self.wte_fresh = type(modules["wte"]) is nn.Embedding  # index_select: a new tensor, ours to add into
        self.wpe = _alias(modules["wpe"].weight) if "wpe" in modules else None
        self.rope = (model.rope_cos, model.rope_sin) if config.pos == "rope" else None
        self.block_size = config.block_size
        self.heads = (config.n_head, config.n_kv_head or config.n_head, config.n_embd // config.n_head)
        self.ln_f = _norm(modules["ln_f"])
        self.head = _linear(model.lm_head)[0]
        self.softcap = config.logit_softcap
        embedding = modules["wte"].weight  # the activations' dtype and device
        self.token_attention = self._token_attention(embedding)
        self.token_device = embedding.device.type if embedding.device.type in _TOKEN_PATH_DEVICES else None
        with torch.inference_mode(False):  # its tensors serve calls in and out of inference mode
            self.layers, token_layers = self._build(batch_size)
        self.token_layers = (batch_size, token_layers) if batch_size else None  # made at the first token otherwise
        self.own_cache = None  # see `new_cache`
        self.in_use = False  # by a generation, when kept (`decode_step_for`)
        self.at_position: dict[int, tuple] = {}  # position -> its row of wpe and of the RoPE tables

    def new_cache(self, rows: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        """An empty KV cache for a generation of `rows` rows through this step: the step's own, made at its first
        generation and kept (with its views) where it is small, or a new one."""
        cache = self.own_cache
        stored = None if cache is None else cache.layers[0]
        if stored is None or (stored.shape[0], stored.device, stored.dtype) != (rows, torch.device(device), dtype):
            cache = KVCache(self.config, rows, self.block_size, device, dtype)
            if sum(t.numel() * t.element_size() for t in cache.layers) <= _KEEP_BYTES:
                self.own_cache = cache
        cache.reset()
        return cache

    def release(self) -> None:
        """The generation through this step has ended: a kept step may serve the next (`decode_step_for`)."""
        self.in_use = False

    def _build(self, rows: int) -> tuple[list, list | None]:
        """Each block's calls: for the path of any T (`_rows`), and for `rows` rows of one token (`_token`; None
        when rows is 0), where the plain linear layers write into tensors made here (with the q, k, v views of
        the attention's output) and the MLP's activation works in place."""
        nh, nkv, hs = self.heads
        layers, token_layers = [], [] if rows else None
        for block in self.blocks:
            parts = block._modules
            attn, mlp = parts["attn"], parts["mlp"]
            ln_1, ln_2 = _norm(parts["ln_1"]), _norm(parts["ln_2"])
            qkv_proj, qkv_into, qkv = _linear(attn.c_attn, rows)
            out_proj, out_into, _ = _linear(attn.c_proj, rows)
            qk_norm = None if attn.q_norm is None else (attn.q_norm.forward, attn.k_norm.forward)
            mlp_rows, mlp_token = self._mlp(mlp, rows)
            layers.append((ln_1, qkv_proj, qk_norm, out_proj, ln_2, mlp_rows))
            if rows:
                views = None
                if qkv is not None:
                    heads = qkv.view(rows, nh + 2 * nkv, 1, hs)
                    kv = heads.narrow(1, nh, 2 * nkv)
                    views = (qkv, heads.narrow(1, 0, nh), kv, kv.narrow(1, 0, nkv), kv.narrow(1, nkv, nkv))
                token_layers.append((ln_1, qkv_into, views, qk_norm, out_into, ln_2, mlp_token))
        return layers, token_layers

    def _mlp(self, mlp: nn.Module, rows: int):
        """The MLP's call for any rows, and for the token path: its hidden tensors are the linear layers' own
        outputs (or new ones), so the activation (and SwiGLU's product) can work in place."""
        (up, up_into, _), (down, down_into, _) = _linear(mlp.c_fc, rows), _linear(mlp.c_proj, rows)
        if "c_gate" in mlp._modules:  # SwiGLU: silu(gate) * up, as F.silu(...) * ... computes it
            gate, gate_into, _ = _linear(mlp.c_gate, rows)
            return (
                lambda x: down(F.silu(gate(x)) * up(x)),
                lambda x: down_into(F.silu(gate_into(x), inplace=True).mul_(up_into(x))),
            )
        activation, in_place = mlp.activation, _ACTIVATIONS_IN_PLACE[self.config.mlp]
        return lambda x: down(activation(up(x))), lambda x: down_into(in_place(up_into(x)))

    @staticmethod
    def supports(model: nn.Module, modules: list | None = None) -> bool:
        """Whether `model` is a GPT this step reproduces exactly: causal, nothing recording attention, no hooks.
        `modules`: `list(model.modules())` where the caller has it already."""
        if type(model) is not GPT or not model.config.causal or model.training:
            return False
        if any(block.attn.recorder is not None for block in model.transformer.h):
            return False
        if getattr(module_registry, "_global_forward_hooks", None) or getattr(
            module_registry, "_global_forward_pre_hooks", None
        ):  # hooks on every module (nn.modules.module.register_module_forward_hook)
            return False
        return not any(m._forward_hooks or m._forward_pre_hooks for m in modules or model.modules())

    def __call__(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """ids (B, T) at positions cache.length.. -> logits (B, vocab) float32 for the token after the last one.

        T > 1 only into an empty cache (a prompt, or the window after a slide); then T = 1 per new token."""
        B, T = ids.shape
        past = cache.length
        if past + T > self.block_size:
            raise ValueError(f"{past + T} positions exceed block_size={self.block_size}")
        if T > 1 and past > 0:
            raise ValueError("DecodeStep: several tokens only into an empty cache")
        # The token path's output tensors fit neither autocast (which casts outputs) nor autograd (no out= ops)
        if (
            T == 1
            and self.token_device
            and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled(self.token_device)
        ):
            return self._token(ids, cache)
        return self._rows(ids, cache)

    def _rows(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """The step for any T (the prompt, and every token under autocast), each op returning a new tensor."""
        B, T = ids.shape
        past = cache.length
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
            y = self._attend(q, keys, values, T > 1)
            y = y.view(B, nh * hs) if T == 1 else y.transpose(1, 2).reshape(B * T, nh * hs)
            x = x + out_proj(y if y.dtype == qkv.dtype else y.type_as(qkv))
            x = x + mlp(ln_2(x))
        cache.advance(T)
        if T > 1:
            x = x.view(B, T, -1)[:, -1]  # (B, C): only the last position's logits are wanted
        return self._logits(x)

    def _token(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One token per row (B, 1): `_rows`' arithmetic, but every plain linear layer writes into a tensor made
        once, the residual and the activation work in place, the keys and values are stored by `index_copy_`
        and read through `as_strided` views: a small model's token is mostly the cost of calling ops, so fewer
        and cheaper calls are what make it faster (docs/benchmarks.md, "Generation speed")."""
        B = ids.size(0)
        if self.token_layers is None or self.token_layers[0] != B:
            with torch.inference_mode(False):
                self.token_layers = (B, self._build(B)[1])
        layers = self.token_layers[1]
        past = cache.length
        position = cache.position(past)
        nh, nkv, hs = self.heads
        x = self.wte(ids.view(-1))  # (B, C)
        at = self.at_position.get(past)
        if at is None:  # the position's rows of the tables, kept: a kept step serves many generations
            at = self.at_position[past] = (
                None if self.wpe is None else self.wpe[past],
                None if self.rope is None else (self.rope[0][past], self.rope[1][past]),
            )
        if at[0] is not None:
            x = x + at[0]
        elif not self.wte_fresh:
            x = x.clone()  # another layer's output may be shared: the residual below adds in place
        rope = at[1]
        attend = self.token_attention
        for index, ((ln_1, qkv_proj, views, qk_norm, out_proj, ln_2, mlp), (keys, values)) in enumerate(
            zip(layers, cache.upto(past + 1))
        ):
            qkv = qkv_proj(ln_1(x))  # (B, heads * hs)
            if views is not None:  # the layer's own output tensor, whose views are made already
                _, q, kv, k, v = views
            else:
                heads = qkv.view(B, nh + 2 * nkv, 1, hs)
                q, kv = heads.narrow(1, 0, nh), heads.narrow(1, nh, 2 * nkv)
                k, v = kv.narrow(1, 0, nkv), kv.narrow(1, nkv, nkv)
            if qk_norm is None and rope is None:  # keys and values side by side: stored with one copy
                cache.store_token(index, position, kv)
            else:
                if qk_norm is not None:
                    q, k = qk_norm[0](q), qk_norm[1](k)
                if rope is not None:
                    q, k = apply_rope(q, *rope), apply_rope(k, *rope)
                cache.store_token(index, position, k, v)
            x.add_(out_proj(attend(q, keys, values).view(B, nh * hs)))
            x.add_(mlp(ln_2(x)))
        cache.length = past + 1
        return self._logits(x)

    def _token_attention(self, embedding: torch.Tensor):
        """(q, keys, values) -> attention output in q's dtype for one token: plain SDPA, or `_attend` where it
        must repeat the key/value heads or attend in float32; chosen once for the activations' dtype."""
        nh, nkv, _ = self.heads
        if nkv == nh and not (embedding.dtype == torch.bfloat16 and embedding.device.type == "cpu"):
            return F.scaled_dot_product_attention
        return lambda q, keys, values: DecodeStep._attend(q, keys, values, False).type_as(q)  # no cycle via self

    @staticmethod
    def _attend(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, causal: bool) -> torch.Tensor:
        nh, nkv = q.shape[1], keys.shape[1]
        if nkv != nh:
            keys = keys.repeat_interleave(nh // nkv, dim=1)
            values = values.repeat_interleave(nh // nkv, dim=1)
        if q.dtype == torch.bfloat16 and q.device.type == "cpu":  # as GPT.forward: CPU attention in fp32
            with torch.autocast("cpu", enabled=False):
                return F.scaled_dot_product_attention(q.float(), keys.float(), values.float(), is_causal=causal)
        return F.scaled_dot_product_attention(q, keys, values, is_causal=causal)  # (B, nh, T, hs)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.ln_f(x)).float()  # (B, vocab)
        if self.softcap > 0:
            logits = self.softcap * torch.tanh(logits / self.softcap)
        return logits


def decode_step_for(model: GPT, batch_size: int, modules: list) -> DecodeStep:
    """A DecodeStep of `model` for `batch_size` rows, for one generation (`release` it at the end). For a model
    of at most `_KEEP_BYTES`, the one kept from its last generation, unless another generation is using it, it
    was for another batch size, or the layers and tensors it bound are no longer the model's (LoRA, int8,
    `.to()`, a replaced layer or weight); a new one otherwise. Plain attributes of the layers (a LayerNorm's
    eps, an MLP's activation) are read when a step is made. `modules`: `list(model.modules())`; the caller has
    checked `DecodeStep.supports`."""
    tensors = [t for m in modules for t in (*m._parameters.values(), *m._buffers.values()) if t is not None]
    if sum(t.numel() * t.element_size() for t in tensors) > _KEEP_BYTES:
        return DecodeStep(model, batch_size)
    # Each module (its type picks the kernels), each tensor's memory (a kept step holds the tensors it bound, so
    # an equal address is the same tensor), and the soft-cap the step reads once
    bound = batch_size, tuple(map(id, modules)), tuple(t.data_ptr() for t in tensors), model.config.logit_softcap
    with _KEPT_LOCK:
        kept = _KEPT_STEPS.get(model)
        if kept is not None and kept[0] == bound:
            step = kept[1]
            if step.in_use:
                return DecodeStep(model, batch_size)  # a generation running beside another
        else:  # the step kept before (old tensors, other rows) goes
            step = DecodeStep(model, batch_size)
            _KEPT_STEPS[model] = (bound, step)
        step.in_use = True  # until `release`
        return step
