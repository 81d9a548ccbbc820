"""Conversions between gptkit models and Hugging Face transformers' GPT-2 and Llama: names and configs.

GPT-2-style models (learned positions, LayerNorm, GELU, biases) map to `GPT2LMHeadModel`: same names, with
the four Conv1D matrices transposed. RoPE + RMSNorm + SwiGLU models map to `LlamaForCausalLM`: our fused
q/k/v matrix is split into q_proj, k_proj, v_proj; our rotary layout ("rotate half") is already HF
Llama's, so no permutation is needed. Pure functions on tensors and dicts; folders are `gptkit.hf`'s job.
"""

import re

import torch

from gptkit.checkpoint import weights_state
from gptkit.config import GPTConfig
from gptkit.errors import GptkitError
from gptkit.model import GPT, mlp_hidden_size

# Per-layer Llama matrices that are ours one to one (q/k/v are split from c_attn separately).
LLAMA_LAYER_NAMES = (
    ("attn.c_proj", "self_attn.o_proj"),
    ("mlp.c_gate", "mlp.gate_proj"),
    ("mlp.c_fc", "mlp.up_proj"),
    ("mlp.c_proj", "mlp.down_proj"),
)
GPT2_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


# -- which HF architecture ---------------------------------------------------------------------------------


def hf_architecture(m: GPTConfig) -> str:
    """ "gpt2" or "llama" for a model config, or a one-line error naming the option HF has no architecture for."""
    if setting := m.beyond_gpt2_and_llama():
        raise GptkitError(f"export: {setting} has no transformers architecture (GPT-2 or Llama)")
    if m.pos == "learned":
        wrong = [
            f"`model.{k}`={getattr(m, k)!r} (GPT-2 needs {v!r})"
            for k, v in (("norm", "layernorm"), ("mlp", "gelu"), ("bias", True))
            if getattr(m, k) != v
        ]
        if m.n_kv_head not in (0, m.n_head):
            wrong.append(f"`model.n_kv_head`={m.n_kv_head} (GPT-2 has no grouped-query attention)")
        if wrong:
            raise GptkitError(f"export: a learned-position model is GPT-2 in transformers, which blocks {wrong[0]}")
        return "gpt2"
    if m.pos == "rope":
        wrong = [
            f"`model.{k}`={getattr(m, k)!r} (Llama needs {v!r})"
            for k, v in (("norm", "rmsnorm"), ("mlp", "swiglu"))
            if getattr(m, k) != v
        ]
        if wrong:
            raise GptkitError(f"export: a RoPE model is Llama in transformers, which blocks {wrong[0]}")
        return "llama"
    raise GptkitError(f"export: `model.pos`={m.pos!r} has no transformers architecture (GPT-2: learned, Llama: rope)")


# -- name maps ----------------------------------------------------------------------------------------------


def to_hf_state(model: GPT, arch: str) -> dict[str, torch.Tensor]:
    """Our weights under transformers' names (tied head left out, as transformers saves it)."""
    ours = weights_state(model)
    if arch == "gpt2":
        state = {}
        for name, tensor in ours.items():
            state[name] = tensor.t().contiguous() if name.endswith(GPT2_CONV1D) else tensor
        return state
    m = model.config
    nh, nkv, hs = m.n_head, m.n_kv_head or m.n_head, m.n_embd // m.n_head
    state = {
        "model.embed_tokens.weight": ours["transformer.wte.weight"],
        "model.norm.weight": ours["transformer.ln_f.weight"],
    }
    if "lm_head.weight" in ours:
        state["lm_head.weight"] = ours["lm_head.weight"]
    for i in range(m.n_layer):
        ours_i, hf_i = f"transformer.h.{i}.", f"model.layers.{i}."
        state[hf_i + "input_layernorm.weight"] = ours[ours_i + "ln_1.weight"]
        state[hf_i + "post_attention_layernorm.weight"] = ours[ours_i + "ln_2.weight"]
        for kind in ("weight", "bias"):
            if ours_i + "attn.c_attn." + kind in ours:
                q, k, v = ours[ours_i + "attn.c_attn." + kind].split([nh * hs, nkv * hs, nkv * hs], dim=0)
                for proj, part in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                    state[f"{hf_i}self_attn.{proj}.{kind}"] = part.contiguous()
            for ours_name, hf_name in LLAMA_LAYER_NAMES:
                if f"{ours_i}{ours_name}.{kind}" in ours:
                    state[f"{hf_i}{hf_name}.{kind}"] = ours[f"{ours_i}{ours_name}.{kind}"]
    return state


IGNORED_BUFFERS = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")  # saved by older transformers


def from_hf_state(hf: dict[str, torch.Tensor], config: GPTConfig, arch: str) -> dict[str, torch.Tensor]:
    """transformers' tensors under our names; a missing or unexpected tensor raises a one-line error naming it."""
    ours = _map_from_hf(hf, config, arch)
    expected = set(to_hf_names(config, arch))
    extra = sorted(k for k in _normalized(hf, arch) if k not in expected and not k.endswith(IGNORED_BUFFERS))
    if extra:
        raise GptkitError(f"import: the checkpoint has tensors the config does not account for, e.g. `{extra[0]}`")
    return ours


FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_hf_tensors(hf: dict[str, torch.Tensor], config: GPTConfig, arch: str, src) -> None:
    """Before a model of `config` is built: every weight is floating point, and the checkpoint's number of
    layers and embedding shape are the ones config.json claims (a config may not ask for more than it holds)."""
    hf = _normalized(hf, arch)
    for name, tensor in hf.items():
        if not name.endswith(IGNORED_BUFFERS) and tensor.dtype not in FLOAT_DTYPES:
            raise GptkitError(
                f"{src}: tensor `{name}` is {str(tensor.dtype).removeprefix('torch.')}; gptkit imports float32, "
                "float16 and bfloat16 weights only"
            )
    layers = {int(match.group(1)) for name in hf if (match := _LAYER_INDEX.search(name))}
    held = max(layers) + 1 if layers else 0
    if held != config.n_layer:
        key = "n_layer" if arch == "gpt2" else "num_hidden_layers"
        raise GptkitError(
            f"{src}/config.json: says {key}={config.n_layer}, but the weights hold {held} layers; the config does not "
            "match the weights"
        )
    embedding = hf.get("transformer.wte.weight" if arch == "gpt2" else "model.embed_tokens.weight")
    if embedding is not None and tuple(embedding.shape) != (config.vocab_size, config.n_embd):
        raise GptkitError(
            f"{src}/config.json: says vocab_size={config.vocab_size} and width {config.n_embd}, but the token "
            f"embedding is {tuple(embedding.shape)}; the config does not match the weights"
        )


_LAYER_INDEX = re.compile(r"(?:^|\.)(?:h|layers)\.(\d+)\.")


def _normalized(hf: dict, arch: str) -> dict:
    """GPT-2 tensors saved from GPT2Model lack the `transformer.` prefix; give every name one form."""
    if arch != "gpt2":
        return hf
    return {(k if k.startswith(("transformer.", "lm_head")) else "transformer." + k): v for k, v in hf.items()}


def to_hf_names(config: GPTConfig, arch: str) -> list[str]:
    """The tensor names transformers uses for a model of this config."""
    with torch.device("meta"):
        return list(to_hf_state(GPT(config), arch))


def _map_from_hf(hf: dict[str, torch.Tensor], config: GPTConfig, arch: str) -> dict[str, torch.Tensor]:

    def take(name: str) -> torch.Tensor:
        if name not in hf:
            raise GptkitError(f"import: the checkpoint has no tensor `{name}`; it is incomplete or not {arch}")
        return hf[name]

    with torch.device("meta"):
        expected = weights_state(GPT(config))  # names (and shapes) our model needs
    ours: dict[str, torch.Tensor] = {}
    hf = _normalized(hf, arch)
    if arch == "gpt2":
        for name in expected:
            if name == "lm_head.weight" and name not in hf:
                raise GptkitError("import: the config says the head is untied, but `lm_head.weight` is missing")
            tensor = take(name)
            ours[name] = tensor.t().contiguous() if name.endswith(GPT2_CONV1D) else tensor
        return _shapes_checked(ours, expected)
    m = config
    for name in expected:
        if name == "transformer.wte.weight":
            ours[name] = take("model.embed_tokens.weight")
        elif name == "transformer.ln_f.weight":
            ours[name] = take("model.norm.weight")
        elif name == "lm_head.weight":
            ours[name] = take("lm_head.weight")
    for i in range(m.n_layer):
        ours_i, hf_i = f"transformer.h.{i}.", f"model.layers.{i}."
        ours[ours_i + "ln_1.weight"] = take(hf_i + "input_layernorm.weight")
        ours[ours_i + "ln_2.weight"] = take(hf_i + "post_attention_layernorm.weight")
        for kind in ("weight", "bias"):
            if ours_i + "attn.c_attn." + kind in expected:
                parts = [take(f"{hf_i}self_attn.{p}.{kind}") for p in ("q_proj", "k_proj", "v_proj")]
                if len({part.shape[1:] for part in parts}) > 1:
                    shapes = [tuple(part.shape) for part in parts]
                    raise GptkitError(f"import: layer {i}'s q/k/v projections have shapes {shapes} that do not fit")
                ours[ours_i + "attn.c_attn." + kind] = torch.cat(parts, dim=0)
            for ours_name, hf_name in LLAMA_LAYER_NAMES:
                if f"{ours_i}{ours_name}.{kind}" in expected:
                    ours[f"{ours_i}{ours_name}.{kind}"] = take(f"{hf_i}{hf_name}.{kind}")
    return _shapes_checked(ours, expected)


def _shapes_checked(ours: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`ours`, once every tensor has the shape the config's model (built on the meta device) needs: a config
    that asks for more than its weights hold is refused before a real model of that size is built."""
    for name, tensor in ours.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise GptkitError(
                f"import: `{name}` has shape {tuple(tensor.shape)} but the config needs {tuple(expected[name].shape)}"
                "; the config does not match the weights"
            )
    return ours


# -- configs -----------------------------------------------------------------------------------------------


def hf_config(m: GPTConfig, arch: str, eos_id: int | None):
    """A transformers GPT2Config or LlamaConfig for our config (needs the `transformers` package)."""
    try:
        import transformers
    except ImportError:
        raise GptkitError(
            "export_hf (`gptkit export --format hf`) needs transformers: pip install 'gptkit[hf]'"
        ) from None
    common = dict(
        vocab_size=m.vocab_size, tie_word_embeddings=m.tie_embeddings, bos_token_id=eos_id, eos_token_id=eos_id
    )
    if arch == "gpt2":
        config = transformers.GPT2Config(
            n_embd=m.n_embd,
            n_layer=m.n_layer,
            n_head=m.n_head,
            n_positions=m.block_size,
            n_inner=mlp_hidden_size(m),
            activation_function="gelu_new",
            layer_norm_epsilon=m.norm_eps,
            resid_pdrop=m.dropout,
            embd_pdrop=m.dropout,
            attn_pdrop=m.attention_dropout(),
            **common,
        )
        config.architectures = ["GPT2LMHeadModel"]
    else:
        config = transformers.LlamaConfig(
            hidden_size=m.n_embd,
            num_hidden_layers=m.n_layer,
            num_attention_heads=m.n_head,
            num_key_value_heads=m.n_kv_head or m.n_head,
            intermediate_size=mlp_hidden_size(m),
            max_position_embeddings=m.block_size,
            rms_norm_eps=m.norm_eps,
            rope_theta=m.rope_theta,
            hidden_act="silu",
            attention_bias=m.bias,
            mlp_bias=m.bias,
            attention_dropout=m.attention_dropout(),
            **common,
        )
        config.architectures = ["LlamaForCausalLM"]
        config.rope_theta = m.rope_theta  # also at the top level, where transformers 4.x reads it
    return config


def config_from_hf(raw: dict, source: str) -> tuple[GPTConfig, str]:
    """Our GPTConfig (and "gpt2" or "llama") from a transformers config.json dict."""
    if not isinstance(raw, dict):
        raise GptkitError(f"{source}: expected a JSON object")
    kind = raw.get("model_type")
    try:
        if kind == "gpt2":
            _refuse_gpt2_variants(raw, source)
            config = GPTConfig(
                vocab_size=raw["vocab_size"],
                block_size=raw.get("n_positions", 1024),
                n_layer=raw["n_layer"],
                n_head=raw["n_head"],
                n_embd=raw["n_embd"],
                mlp_hidden=raw.get("n_inner") or 0,
                norm_eps=raw.get("layer_norm_epsilon", 1e-5),
                tie_embeddings=raw.get("tie_word_embeddings", True),
                dropout=0.0,
                bias=True,
            )
        elif kind == "llama":
            if raw.get("hidden_act", "silu") != "silu":
                raise GptkitError(f"{source}: hidden_act {raw['hidden_act']!r} is not supported (silu)")
            if bool(raw.get("attention_bias", False)) != bool(raw.get("mlp_bias", False)):
                raise GptkitError(f"{source}: attention_bias and mlp_bias differ; gptkit has one `bias` setting")
            rope = raw.get("rope_parameters") or raw.get("rope_scaling") or {}
            if rope.get("rope_type", rope.get("type", "default")) != "default":
                raise GptkitError(f"{source}: rope scaling {rope.get('rope_type') or rope.get('type')!r} unsupported")
            heads, hidden = raw["num_attention_heads"], raw["hidden_size"]
            if not isinstance(heads, int) or isinstance(heads, bool) or heads <= 0:
                raise GptkitError(f"num_attention_heads must be a positive integer, got {heads!r}")
            if raw.get("head_dim") not in (None, hidden // heads):
                raise GptkitError(f"{source}: head_dim {raw['head_dim']} != hidden_size / heads is not supported")
            config = GPTConfig(
                vocab_size=raw["vocab_size"],
                block_size=raw.get("max_position_embeddings", 2048),
                n_layer=raw["num_hidden_layers"],
                n_head=heads,
                n_embd=hidden,
                n_kv_head=raw.get("num_key_value_heads") or heads,
                mlp_hidden=raw["intermediate_size"],
                norm_eps=raw.get("rms_norm_eps", 1e-6),
                rope_theta=rope.get("rope_theta", raw.get("rope_theta", 1e4)),
                tie_embeddings=raw.get("tie_word_embeddings", False),
                pos="rope",
                norm="rmsnorm",
                mlp="swiglu",
                bias=bool(raw.get("attention_bias", False)),
                dropout=0.0,
            )
        else:
            raise GptkitError(f"{source}: model_type {kind!r} is not supported; gptkit imports gpt2 and llama")
        config.validate()
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        if isinstance(err, GptkitError):
            raise GptkitError(f"{source}: {err}") from None
        raise GptkitError(
            f"{source}: config.json lacks or mistypes {err}; not a complete transformers config"
        ) from None
    return config, kind


def _refuse_gpt2_variants(raw: dict, source: str) -> None:
    """GPT-2 config switches that change the maths, which our model does not have."""
    if raw.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise GptkitError(f"{source}: activation {raw['activation_function']!r} is not supported (gelu_new)")
    for key, plain in (
        ("scale_attn_by_inverse_layer_idx", False),
        ("scale_attn_weights", True),
        ("add_cross_attention", False),
    ):
        if bool(raw.get(key, plain)) != plain:
            raise GptkitError(f"{source}: {key}={raw[key]} changes the model and is not supported")
