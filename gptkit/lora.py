"""LoRA (Hu et al. 2021): a frozen model plus trained low-rank updates, y = W x + (alpha / r) B A x.

`apply_lora(model, config.lora)` freezes a GPT and turns its targeted linear layers into `LoRALinear`, which
keeps the layer's own `weight` and `bias` Parameters (so weight names stay GPT-2's and a tied head stays tied)
and adds `lora_A.NAME` (r, in) and `lora_B.NAME` (rows, r). The attention's fused q/k/v matrix takes one
adapter for all of it (`qkv`) or one per part (`q`, `k`, `v`) on that part's rows. Token rows added for the
fine-tuning (the chat template's tokens) stay trainable: `new_rows`, in the embedding and the head.
`merge_lora` folds everything into plain layers. Files, the base run and PEFT export live elsewhere
(`gptkit.checkpoint`, `gptkit.lora_base`, `gptkit.hf.peft`).
"""

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptkit.config import LORA_TARGETS, GPTConfig, LoRAConfig
from gptkit.dropout import dropout
from gptkit.errors import GptkitError


@dataclass(frozen=True)
class Part:
    """One adapter of a layer: the target's name and the output rows [start, stop) it updates."""

    name: str
    start: int
    stop: int


class LoRALinear(nn.Module):
    """A frozen linear layer with adapters on some of its output rows, and optionally trainable last rows
    (`new_rows` replaces rows [first_new_row:], for tokens added after the base was trained)."""

    def __init__(self, linear: nn.Linear, parts: list[Part], r: int, alpha: float, p: float):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.parts = sorted(parts, key=lambda part: part.start)
        self.r, self.scale, self.p = r, alpha / r, p
        like = dict(device=linear.weight.device, dtype=linear.weight.dtype)
        self.lora_A = nn.ParameterDict({x.name: nn.Parameter(torch.empty(r, self.in_features, **like)) for x in parts})
        self.lora_B = nn.ParameterDict({x.name: nn.Parameter(torch.zeros(x.stop - x.start, r, **like)) for x in parts})
        for a in self.lora_A.values():
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # as nn.Linear's own init, and PEFT's
        self.first_new_row = self.out_features
        self.new_rows: nn.Parameter | None = None
        self.shares_weight = False  # a head tied to the embedding: merging here would change the embedding too
        self.merged = False

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) with B @ A the whole unscaled update: A (k*r, in) stacks the parts' A; B (out, k*r) holds
        each part's B on its rows and its own r columns, zeros elsewhere (k = number of parts)."""
        k, r = len(self.parts), self.r
        if k == 1 and self.parts[0].stop - self.parts[0].start == self.out_features:  # the common case: no copies
            return self.lora_A[self.parts[0].name], self.lora_B[self.parts[0].name]
        a = torch.cat([self.lora_A[part.name] for part in self.parts])
        rows, at = [], 0
        for i, part in enumerate(self.parts):
            if part.start > at:
                rows.append(a.new_zeros(part.start - at, k * r))
            rows.append(F.pad(self.lora_B[part.name], (i * r, (k - 1 - i) * r)))
            at = part.stop
        if at < self.out_features:
            rows.append(a.new_zeros(self.out_features - at, k * r))
        return a, rows[0] if len(rows) == 1 else torch.cat(rows)

    def delta(self) -> torch.Tensor:
        """The update of the weight, (alpha / r) B A, (out, in)."""
        a, b = self.factors()
        return (b @ a) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        if self.new_rows is not None and not self.merged:
            # The trainable rows' outputs replace the last ones (the whole matmul runs as in the base, so the
            # base's tokens get bit-identical outputs); a tied head shares the rows with the embedding.
            first, bias = self.first_new_row, self.bias
            y[..., first:] = F.linear(x, self.new_rows, None if bias is None else bias[first:])  # no copy of y
        if self.merged or not self.parts:
            return y
        a, b = self.factors()
        h = dropout(x, self.p, self.training)
        return y + F.linear(F.linear(h, a) * self.scale, b)  # (..., k*r) scaled: cheaper than scaling (..., out)

    @torch.no_grad()
    def merge(self) -> None:
        """Write the trainable rows into `weight`'s last rows and add the update; forward then skips both.
        A head tied to the embedding is refused: `merge_lora` unties it first."""
        if self.shares_weight and self.parts:
            raise GptkitError("merge: this head shares its weight with the embedding; use gptkit.lora.merge_lora")
        if not self.merged:
            if self.new_rows is not None:
                self.weight[self.first_new_row :] = self.new_rows
            if self.parts:
                self.weight += self.delta().to(self.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of `weight` again (its last rows keep the trainable rows' values, which the
        unmerged forward replaces anyway)."""
        if self.merged:
            if self.parts:
                self.weight -= self.delta().to(self.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        parts = ", ".join(part.name for part in self.parts) or "none"
        return f"in={self.in_features}, out={self.out_features}, adapters={parts}, r={self.r}, scale={self.scale:g}"


class LoRAEmbedding(nn.Module):
    """A frozen token embedding whose rows from `first_new_row` on are replaced by trainable `new_rows`."""

    def __init__(self, embedding: nn.Embedding, first_new_row: int):
        super().__init__()
        self.weight = embedding.weight
        self.first_new_row = first_new_row
        self.new_rows = nn.Parameter(embedding.weight.detach()[first_new_row:].clone())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = F.embedding(idx, self.weight)  # (B, T, C)
        new = F.embedding((idx - self.first_new_row).clamp(min=0), self.new_rows)
        return torch.where((idx >= self.first_new_row)[..., None], new, x)


def attention_parts(config: GPTConfig) -> dict[str, Part]:
    """Where q, k and v sit in the rows of the fused attention matrix (queries, then keys, then values)."""
    hs = config.n_embd // config.n_head
    q, kv = config.n_head * hs, (config.n_kv_head or config.n_head) * hs
    return {"q": Part("q", 0, q), "k": Part("k", q, q + kv), "v": Part("v", q + kv, q + 2 * kv), "qkv": None}


def targeted_layers(model: nn.Module, lora: LoRAConfig) -> list[tuple[nn.Module, str, list[Part]]]:
    """(parent module, attribute name, adapters) for every layer the targets select, in model order."""
    config: GPTConfig = model.config
    targets = lora.target_list()
    if "gate" in targets and config.mlp != "swiglu":
        explicit = "gate" in [name.strip() for name in lora.targets.split(",")]
        if explicit:
            raise GptkitError(f"`lora.targets`: gate needs `model.mlp`=swiglu (this model's is {config.mlp})")
        targets.remove("gate")
    fused = attention_parts(config)
    chosen = []
    for block in model.transformer.h:
        out = block.attn.c_attn.out_features
        qkv = [fused[name] or Part("qkv", 0, out) for name in ("q", "k", "v", "qkv") if name in targets]
        if qkv:
            chosen.append((block.attn, "c_attn", qkv))
        if "proj" in targets:
            chosen.append((block.attn, "c_proj", [Part("proj", 0, block.attn.c_proj.out_features)]))
        for target, attribute in (("fc", "c_fc"), ("gate", "c_gate"), ("mlp_proj", "c_proj")):
            if target in targets:
                chosen.append((block.mlp, attribute, [Part(target, 0, getattr(block.mlp, attribute).out_features)]))
    if "head" in targets:
        chosen.append((model, "lm_head", [Part("head", 0, model.lm_head.out_features)]))
    return chosen


def check_rank(model: nn.Module, lora: LoRAConfig) -> None:
    """`lora.r` must not exceed any adapted matrix's smaller side (a rank-r update needs r rows and columns)."""
    for parent, attribute, parts in targeted_layers(model, lora):
        linear = getattr(parent, attribute)
        for part in parts:
            side = min(linear.in_features, part.stop - part.start)
            if lora.r > side:
                raise GptkitError(
                    f"`lora.r`={lora.r} is larger than the `{part.name}` matrix ({part.stop - part.start} x "
                    f"{linear.in_features}) allows; set it to at most {side}"
                )


def apply_lora(model: nn.Module, lora: LoRAConfig, first_new_row: int | None = None) -> None:
    """Freeze `model` and add adapters as `lora` says, in place; rows from `first_new_row` on (tokens the
    base did not have) stay trainable in the embedding and the head."""
    check_rank(model, lora)
    for param in model.parameters():
        param.requires_grad_(False)
    for parent, attribute, parts in targeted_layers(model, lora):
        setattr(parent, attribute, LoRALinear(getattr(parent, attribute), parts, lora.r, lora.alpha, lora.dropout))
    if isinstance(model.lm_head, LoRALinear):
        model.lm_head.shares_weight = model.lm_head.weight is model.transformer.wte.weight
    vocab = model.config.vocab_size
    if first_new_row is not None and first_new_row < vocab:
        embedding = LoRAEmbedding(model.transformer.wte, first_new_row)
        model.transformer.wte = embedding
        if not isinstance(model.lm_head, LoRALinear):
            model.lm_head = LoRALinear(model.lm_head, [], lora.r, lora.alpha, lora.dropout)
            model.lm_head.shares_weight = model.lm_head.weight is embedding.weight
        head = model.lm_head
        head.first_new_row = first_new_row
        tied = head.weight is embedding.weight
        head.new_rows = embedding.new_rows if tied else nn.Parameter(head.weight.detach()[first_new_row:].clone())


def adapted_targets(model: nn.Module) -> list[str]:
    """The targets that got adapters in `model`, in `LORA_TARGETS` order (`mlp` spelled out)."""
    names = {part.name for m in model.modules() if isinstance(m, LoRALinear) for part in m.parts}
    return [name for name in LORA_TARGETS if name in names]


def has_lora(model: nn.Module) -> bool:
    return any(isinstance(module, (LoRALinear, LoRAEmbedding)) for module in model.modules())


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trained tensors of a LoRA model by name (shared rows once): all that a LoRA run saves."""
    return {
        name: param.detach().contiguous()
        for name, param in model.named_parameters()
        if ".lora_A." in name or ".lora_B." in name or name.endswith("new_rows")
    }


def trainable_count(config: GPTConfig, lora: LoRAConfig, new_rows: int = 0) -> int:
    """Trainable parameters of a LoRA model, from the formula: r * (in + rows) per adapter, plus the new token
    rows (once for a tied head, twice for an untied one). Checked against the model by the tests."""
    from gptkit.model import mlp_hidden_size

    C, hidden, targets = config.n_embd, mlp_hidden_size(config), lora.target_list()
    if config.mlp != "swiglu" and "gate" in targets:
        targets.remove("gate")
    parts = attention_parts(config)
    qkv_rows = parts["v"].stop
    sizes = {  # (in, rows) of each target
        "q": (C, parts["q"].stop - parts["q"].start),
        "k": (C, parts["k"].stop - parts["k"].start),
        "v": (C, parts["v"].stop - parts["v"].start),
        "qkv": (C, qkv_rows),
        "proj": (C, C),
        "fc": (C, hidden),
        "gate": (C, hidden),
        "mlp_proj": (hidden, C),
    }
    per_layer = sum(lora.r * sum(sizes[name]) for name in targets if name in sizes)
    total = config.n_layer * per_layer + (lora.r * (C + config.vocab_size) if "head" in targets else 0)
    return total + new_rows * C * (1 if config.tie_embeddings else 2)


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter and trainable row into plain `nn.Linear` / `nn.Embedding` layers, in place; returns
    the model, now a plain GPT. An adapted head that shared the embedding's weight gets its own copy
    (`model.config.tie_embeddings` becomes False): the update belongs to the head alone."""
    embedding = model.transformer.wte
    if isinstance(embedding, LoRAEmbedding):
        embedding.weight[embedding.first_new_row :] = embedding.new_rows
        plain = nn.Embedding(*embedding.weight.shape, device="meta")
        plain.weight = embedding.weight  # the same Parameter: a tied head stays tied
        model.transformer.wte = plain
    head = model.lm_head
    if isinstance(head, LoRALinear) and head.parts and head.shares_weight:
        head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=False)
        head.shares_weight = False
        model.config = dataclasses.replace(model.config, tie_embeddings=False)
    for parent in list(model.modules()):
        for attribute, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                child.merge()
                linear = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None, device="meta")
                linear.weight, linear.bias = child.weight, child.bias
                setattr(parent, attribute, linear)
    for param in model.parameters():  # a plain model again, as `load_model` gives one
        param.requires_grad_(True)
    return model
