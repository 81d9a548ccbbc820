"""The GPT network: one decoder-only transformer, GPT-2 by default, Llama-style by options, in one file.

Norm (LayerNorm | RMSNorm) -> rotary embedding -> causal self-attention (SDPA, grouped-query, optional
QK-norm, KV cache) -> MLP (GELU | SwiGLU | ReLU^2) -> Block -> GPT. Variants are chosen in `__init__`
through explicit dicts, so `forward` stays branch-light. Parameter names follow GPT-2's
(`transformer.wte`, `h.{i}.attn.c_attn`, `ln_f`, `lm_head`) so Hugging Face export is a key-for-key copy.
The model knows nothing of tokenizers, files or training: ids (B, T) -> logits (B, T, vocab) [+ loss].
"""

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from gptkit.bigram import BigramLM
from gptkit.config import GPTConfig
from gptkit.dropout import Dropout, dropout
from gptkit.linear_loss import linear_cross_entropy


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's own always has one when affine)."""

    def __init__(self, ndim: int, bias: bool = True, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight (Zhang & Sennrich 2019): LayerNorm without centring or bias."""

    def __init__(self, ndim: int, bias: bool = False, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In float32 (also under autocast), returned in x's dtype. PyTorch's own op: fused on GPUs; on CPU
        # (torch 2.13) it is as fast as the formula and about 2.5x slower than the fused LayerNorm kernel.
        return F.rms_norm(x.float(), self.weight.shape, self.weight.float(), self.eps).type_as(x)


NORMS = {"layernorm": LayerNorm, "rmsnorm": RMSNorm}


def dropout_layer(p: float) -> nn.Module | None:
    """Dropout, or None when p is 0: skipping the call saves real time when decoding token by token."""
    return Dropout(p) if p > 0 else None


def rope_tables(head_size: int, length: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position * frequency, each (length, head_size // 2) (RoFormer, Su et al. 2021)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_size, 2, device=device, dtype=torch.float32) / head_size)
    angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[i], x[i + hs/2]) by each position's angles: the "rotate half" layout of GPT-NeoX and
    Hugging Face Llama. x: (B, nh, T, hs); cos, sin: (B, 1, T, hs/2) or (T, hs/2)."""
    half = x.size(-1) // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).type_as(x)


class KVCache:
    """Keys and values of past positions, preallocated for `max_len` tokens in every layer.

    `length` counts the positions written so far (the same for every row of the batch); each layer writes
    its new keys/values at [length, length + T) and attends over [0, length + T); `advance` moves on. A layer's
    keys and values share one tensor (B, 2 * kv_heads, max_len, hs), keys first, so a decode step whose keys
    and values sit side by side (no RoPE) stores both with one copy (`update_kv`).
    """

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int, device, dtype=torch.float32):
        self.kv_heads = config.n_kv_head or config.n_head
        shape = (batch_size, 2 * self.kv_heads, max_len, config.n_embd // config.n_head)
        self.layers = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self._keys = [stored[:, : self.kv_heads] for stored in self.layers]  # views, made once
        self._values = [stored[:, self.kv_heads :] for stored in self.layers]
        # For `upto`: where each layer's keys and values start in its tensor's storage, and its strides
        value_start = self.kv_heads * self.layers[0].stride(1)
        self._starts = [(t, t.stride(), t.storage_offset(), t.storage_offset() + value_start) for t in self.layers]
        self._positions: dict[int, torch.Tensor] = {}
        self._upto: dict[int, list] = {}  # end -> `upto`'s views, made once (a kept cache serves many generations)
        self.max_len = max_len
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nkv, T, hs) after the cached ones; return all keys/values so far (B, nkv, L+T, hs)."""
        end = self._end(k.size(2))
        self._keys[layer].narrow(2, self.length, k.size(2)).copy_(k)
        self._values[layer].narrow(2, self.length, k.size(2)).copy_(v)
        return self._keys[layer].narrow(2, 0, end), self._values[layer].narrow(2, 0, end)

    def update_kv(self, layer: int, kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`update` for keys and values given side by side, kv (B, 2 * nkv, T, hs): one copy instead of two."""
        end = self._end(kv.size(2))
        self.layers[layer].narrow(2, self.length, kv.size(2)).copy_(kv)
        return self._keys[layer].narrow(2, 0, end), self._values[layer].narrow(2, 0, end)

    def position(self, index: int) -> torch.Tensor:
        """`index` as the (1,) long tensor `store_token` takes, on the cache's device (one per index, kept)."""
        position = self._positions.get(index)
        if position is None:
            position = self._positions[index] = torch.full((1,), index, dtype=torch.long, device=self.layers[0].device)
        return position

    def store_token(self, layer: int, position: torch.Tensor, k: torch.Tensor, v: torch.Tensor | None = None) -> None:
        """Write one token's keys and values at `position` (from `self.position`): k (B, nkv, 1, hs) and v, or
        with v None, k the (B, 2 * nkv, 1, hs) keys and values side by side."""
        stored = self.layers[layer]
        if k.dtype != stored.dtype:  # a caller's cache in another dtype: converted as `update`'s copy_ converts
            k, v = k.to(stored.dtype), None if v is None else v.to(stored.dtype)
        if v is None:
            stored.index_copy_(2, position, k)
        else:
            self._keys[layer].index_copy_(2, position, k)
            self._values[layer].index_copy_(2, position, v)

    def upto(self, end: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's keys and values of positions [0, end), (B, nkv, end, hs) each: views made by
        `as_strided` (about half the cost of `narrow`) once per end, since a decode step reads them for every
        layer and token and a kept cache serves many generations. Views see later writes, so a step may take
        them before it stores the token at end - 1."""
        views = self._upto.get(end)
        if views is None:
            if end > self.max_len:
                raise ValueError(f"KV cache holds {self.max_len} positions; {end} needed")
            stored = self.layers[0]
            shape = (stored.size(0), self.kv_heads, end, stored.size(3))
            view = torch.as_strided
            views = [(view(t, shape, strides, k), view(t, shape, strides, v)) for t, strides, k, v in self._starts]
            self._upto[end] = views
        return views

    def _end(self, new: int) -> int:
        end = self.length + new
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; {end} needed")
        return end

    def advance(self, steps: int) -> None:
        self.length += steps

    def reset(self) -> None:
        self.length = 0


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention; each position sees itself and earlier ones (unless `causal=False`).

    Grouped-query attention (Ainslie et al. 2023) when `n_kv_head < n_head`: heads share key/value heads.
    """

    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head = config.n_head
        self.n_kv_head = config.n_kv_head or config.n_head
        self.head_size = config.n_embd // config.n_head
        self.dropout = config.attention_dropout()
        self.causal = config.causal
        qkv = (self.n_head + 2 * self.n_kv_head) * self.head_size
        self.c_attn = nn.Linear(config.n_embd, qkv, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = dropout_layer(config.dropout)
        norm = NORMS[config.norm]
        self.q_norm = norm(self.head_size, bias=config.bias, eps=config.norm_eps) if config.qk_norm else None
        self.k_norm = norm(self.head_size, bias=config.bias, eps=config.norm_eps) if config.qk_norm else None
        self.recorder: list[torch.Tensor] | None = None  # set by `recording_attention` to capture weights

    def forward(self, x: torch.Tensor, rope, cache: KVCache | None, mask: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        nh, nkv, hs = self.n_head, self.n_kv_head, self.head_size
        qkv = self.c_attn(x).view(B, T, nh + 2 * nkv, hs)  # (B, T, heads of q, k and v, hs)
        if self.q_norm is not None:  # QK-norm: each query and key head normalised on its own
            qkv = torch.cat(
                [self.q_norm(qkv[:, :, :nh]), self.k_norm(qkv[:, :, nh : nh + nkv]), qkv[:, :, nh + nkv :]], 2
            )
        q, k, v = qkv.transpose(1, 2).split([nh, nkv, nkv], dim=1)  # (B, nh, T, hs), (B, nkv, T, hs) x 2
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (B, nkv, L+T, hs)
        if nkv != nh:
            k = k.repeat_interleave(nh // nkv, dim=1)  # (B, nh, L+T, hs)
            v = v.repeat_interleave(nh // nkv, dim=1)
        dropout = self.dropout if self.training else 0.0
        causal = self.causal and (cache is None or T > 1)  # one new token after a cache sees all keys
        # PyTorch's CPU attention kernels are slower in bf16 than in fp32 (the backward 2.5x at cpu-baby's shape,
        # bench/profile_step.py), so on a CPU attention runs in fp32, also under bf16 autocast (which would cast
        # SDPA's inputs back to bf16).
        in_fp32 = q.device.type == "cpu" and q.dtype == torch.bfloat16
        with torch.autocast("cpu", enabled=False) if in_fp32 else contextlib.nullcontext():
            if in_fp32:
                q, k, v = q.float(), k.float(), v.float()
            if self.recorder is not None:  # the explicit path, only when someone asked to see the weights
                y, weights = explicit_attention(q, k, v, mask, causal=causal, p=dropout)
                self.recorder.append(weights.detach())
            elif mask is None:  # causal over these T tokens, or, for one new token after a cache, all keys
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=causal)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)  # (B, nh, T, hs)
        y = self.c_proj(y.transpose(1, 2).reshape(B, T, C).type_as(qkv))  # (B, T, C): heads side by side again
        return y if self.resid_dropout is None else self.resid_dropout(y)


def explicit_attention(q, k, v, mask, *, causal: bool, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(hs)) v written out, as SDPA computes it; returns (output, weights (B, nh, T, S)).

    `mask` (bool, True = may attend) wins over `causal`, as in the SDPA calls above; causal aligns the T
    queries with the last T keys (the queries of a prefill after a cache see the cached keys)."""
    T, S = q.size(-2), k.size(-2)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (B, nh, T, S)
    if mask is None and causal:
        mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    attended = dropout(weights, p)
    return attended @ v, weights


@contextlib.contextmanager
def recording_attention(model: "GPT", layers=None):
    """Capture attention weights: yields a list that each forward fills with one (B, nh, T, S) tensor per
    recorded layer (all, or the indices in `layers`), in order. Those layers run the explicit path (the
    same output as SDPA, slower); the others stay on SDPA."""
    maps: list[torch.Tensor] = []
    chosen = range(len(model.transformer.h)) if layers is None else set(layers)
    for index, block in enumerate(model.transformer.h):
        if index in chosen:
            block.attn.recorder = maps
    try:
        yield maps
    finally:
        for block in model.transformer.h:
            block.attn.recorder = None


def mlp_hidden_size(config: GPTConfig) -> int:
    """4x the width, or for SwiGLU 2/3 of that rounded up to a multiple of 64 (Llama's choice: same params)."""
    if config.mlp_hidden:
        return config.mlp_hidden
    if config.mlp == "swiglu":
        return 64 * math.ceil(8 * config.n_embd / 3 / 64)
    return 4 * config.n_embd


class MLP(nn.Module):
    """Position-wise feed-forward: GELU (tanh, as GPT-2) or ReLU^2 (Primer, So et al. 2021) between two maps."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = mlp_hidden_size(config)
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = dropout_layer(config.dropout)
        self.activation = {"gelu": lambda h: F.gelu(h, approximate="tanh"), "relu2": lambda h: F.relu(h).square()}[
            config.mlp
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c_proj(self.activation(self.c_fc(x)))
        return y if self.dropout is None else self.dropout(y)


class SwiGLU(nn.Module):
    """(silu(x W_gate) * x W_up) W_down (Shazeer 2020, "GLU Variants Improve Transformer"), as in Llama."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = mlp_hidden_size(config)
        self.c_gate = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = dropout_layer(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c_proj(F.silu(self.c_gate(x)) * self.c_fc(x))
        return y if self.dropout is None else self.dropout(y)


MLPS = {"gelu": MLP, "relu2": MLP, "swiglu": SwiGLU}


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        norm = NORMS[config.norm]
        self.ln_1 = norm(config.n_embd, bias=config.bias, eps=config.norm_eps)
        self.attn = CausalSelfAttention(config, layer)
        self.ln_2 = norm(config.n_embd, bias=config.bias, eps=config.norm_eps)
        self.mlp = MLPS[config.mlp](config)

    def forward(self, x: torch.Tensor, rope, cache: KVCache | None, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope, cache, mask)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token embedding (+ learned positions or RoPE), `n_layer` blocks, final norm, LM head (tied by default)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.vocab_size > 0, "set config.vocab_size (from the tokenizer) before building the model"
        self.config = config
        layers = dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            drop=dropout_layer(config.dropout),
            h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
            ln_f=NORMS[config.norm](config.n_embd, bias=config.bias, eps=config.norm_eps),
        )
        if config.pos == "learned":
            layers["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        self.transformer = nn.ModuleDict(layers)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # weight tying (Press & Wolf 2017), as in GPT-2
        if config.pos == "rope":
            cos, sin = rope_tables(config.n_embd // config.n_head, config.block_size, config.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)  # (block_size, hs/2)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.recompute_blocks = False  # activation checkpointing, set by training (`train.recompute`)
        self.apply(self._init_weights)
        # GPT-2 scales the init of the projections that write into the residual stream by 1/sqrt(2 * n_layer),
        # so the stream's variance does not grow with depth (GPT-2 paper, section 2.3).
        # With `zero_init_proj` they start at zero instead: every block starts as the identity and the gradient
        # still reaches them, since their inputs are not zero (as in the modded-nanogpt speedruns).
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                if config.zero_init_proj:
                    nn.init.zeros_(param)
                else:
                    nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (the token one is shared with the head)."""
        total = sum(p.numel() for p in self.parameters())
        total += sum(getattr(m, "parameters_held", 0) for m in self.modules())  # int8 layers (gptkit.quantize)
        if non_embedding and "wpe" in self.transformer:
            total -= self.transformer.wpe.weight.numel()
        return total

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        last_only: bool = False,
        return_logits: bool = True,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Logits for each position and, given targets, the mean cross-entropy.

        Args:
            idx: (B, T) token ids.
            targets: (B, T) next-token ids, or None. Positions with -1 are ignored in the loss.
            cache: a KVCache; the new tokens follow the `cache.length` cached ones, and are added to it.
            positions: (B, T) position of each token; default `cache.length + arange(T)` (0-based).
            key_mask: (B, cache.length + T) bool, False for padding that no position may attend to.
            last_only: compute logits for the last position only, (B, 1, vocab); used when sampling.
            return_logits: False when only the loss is wanted: with targets and a plain head the loss then comes
                from `linear_cross_entropy`, which never holds all the logits, and the logits returned are None.
        Returns:
            logits (B, T, vocab) float32 (or None, see `return_logits`), and loss (a scalar) or None.
        """
        B, T = idx.shape
        past = cache.length if cache is not None else 0
        x = self.transformer.wte(idx)  # (B, T, C)
        rope = None
        if positions is None:  # consecutive positions from `past`: slices, cheaper than gathers when decoding
            if past + T > self.config.block_size:
                raise ValueError(f"{past + T} positions exceed block_size={self.config.block_size}")
            if "wpe" in self.transformer:
                x = x + self.transformer.wpe.weight[past : past + T]
            if self.config.pos == "rope":
                rope = (self.rope_cos[past : past + T], self.rope_sin[past : past + T])  # (T, hs/2), broadcast
        else:
            if "wpe" in self.transformer:
                x = x + self.transformer.wpe(positions)
            if self.config.pos == "rope":
                rope = (self.rope_cos[positions][:, None], self.rope_sin[positions][:, None])  # (B, 1, T, hs/2)
        if self.transformer.drop is not None:
            x = self.transformer.drop(x)
        mask = None  # None: SDPA's own causal path, or (one new token after a cache) no mask at all
        if key_mask is not None or (past > 0 and T > 1):
            mask = attention_mask(T, past, key_mask, idx.device, causal=self.config.causal)  # (B|1, 1, T, past+T)
        recompute = self.recompute_blocks and self.training and torch.is_grad_enabled() and cache is None
        for block in self.transformer.h:
            if recompute:  # keep only each block's input; its activations are recomputed in the backward pass
                x = torch.utils.checkpoint.checkpoint(block, x, rope, cache, mask, use_reentrant=False)
            else:
                x = block(x, rope, cache, mask)
        if cache is not None:
            cache.advance(T)
        x = self.transformer.ln_f(x)
        if last_only:
            x = x[:, -1:, :]  # (B, 1, C)
        if targets is not None and not return_logits and type(self.lm_head) is nn.Linear:
            return None, linear_cross_entropy(x, self.lm_head.weight, targets, self.config.logit_softcap)
        logits = self.lm_head(x).float()  # (B, T, vocab); float32 even under autocast, for a stable softmax
        if self.config.logit_softcap > 0:  # smooth bound on the logits' size, so none can run away
            logits = self.config.logit_softcap * torch.tanh(logits / self.config.logit_softcap)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def flops_per_token(self) -> float:
        """Training FLOPs per token: 6N for the matmuls with weights plus 12*L*C*T for attention scores.

        From the PaLM paper (Chowdhery et al. 2022, appendix B), as nanoGPT's `estimate_mfu` uses it; N counts
        the parameters without the position embedding.
        """
        cfg = self.config
        return 6 * self.num_params() + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size


def build_model(config: GPTConfig) -> nn.Module:
    """The network `config.arch` names: the GPT, or the bigram table (`gptkit.bigram`)."""
    if config.arch == "bigram":
        return BigramLM(config)
    return GPT(config)


def attention_mask(T: int, past: int, key_mask: torch.Tensor | None, device, causal: bool = True) -> torch.Tensor:
    """Bool mask (B or 1, 1, T, past + T): query t (at past + t) sees the keys that are not padding, up to
    itself when `causal`, all of them otherwise."""
    query = torch.arange(past, past + T, device=device)[:, None]  # (T, 1)
    key = torch.arange(past + T, device=device)[None, :]  # (1, past + T)
    mask = (key <= query if causal else torch.ones(T, past + T, dtype=torch.bool, device=device))[None, None]
    if key_mask is not None:
        # A padding query would see no key at all and give NaN, which would leak through its value vector even
        # at zero weight; letting every query see itself keeps padding finite (its output is never used).
        mask = (mask & key_mask[:, None, None, : past + T]) | (key == query)[None, None]  # (B, 1, T, past + T)
    return mask
