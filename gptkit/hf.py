"""Hugging Face `transformers` interop: export a run as a GPT-2 or Llama checkpoint folder, import one back.

GPT-2-style runs (learned positions, LayerNorm, GELU, biases) map to `GPT2LMHeadModel`: same names, with the
four Conv1D matrices transposed. RoPE + RMSNorm + SwiGLU runs map to `LlamaForCausalLM`: our fused q/k/v
matrix is split into q_proj, k_proj, v_proj; our rotary layout ("rotate half") is already HF Llama's, so no
permutation is needed. Importing reads `config.json` and `model.safetensors` (sharded too) or
`pytorch_model.bin` (with `weights_only=True`), never the network. Exporting needs `transformers` for the
config classes (`pip install gptkit[hf]`); importing does not. Entry points: `export_hf`, `import_hf`.
"""

import json
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gptkit.checkpoint import (
    WEIGHTS_FILE,
    load_weights,
    load_weights_state,
    read_run_config,
    save_weights,
    weights_state,
    write_run_config,
)
from gptkit.config import GPTConfig, RunConfig
from gptkit.errors import GptkitError
from gptkit.model import GPT, mlp_hidden_size
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.char import CharTokenizer

GPT2_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


# -- which HF architecture ---------------------------------------------------------------------------------


def hf_architecture(m: GPTConfig) -> str:
    """ "gpt2" or "llama" for a model config, or a one-line error naming the option HF has no architecture for."""
    if m.qk_norm:
        raise GptkitError("export: `model.qk_norm`=true has no GPT-2 or Llama architecture in transformers")
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
            for ours_name, hf_name in (
                ("attn.c_proj", "self_attn.o_proj"),
                ("mlp.c_gate", "mlp.gate_proj"),
                ("mlp.c_fc", "mlp.up_proj"),
                ("mlp.c_proj", "mlp.down_proj"),
            ):
                if f"{ours_i}{ours_name}.{kind}" in ours:
                    state[f"{hf_i}{hf_name}.{kind}"] = ours[f"{ours_i}{ours_name}.{kind}"]
    return state


def from_hf_state(hf: dict[str, torch.Tensor], config: GPTConfig, arch: str) -> dict[str, torch.Tensor]:
    """transformers' tensors under our names; missing tensors raise a one-line error naming one."""

    def take(name: str) -> torch.Tensor:
        if name not in hf:
            raise GptkitError(f"import: the checkpoint has no tensor `{name}`; it is incomplete or not {arch}")
        return hf[name]

    with torch.device("meta"):
        expected = weights_state(GPT(config))  # names (and shapes) our model needs
    ours: dict[str, torch.Tensor] = {}
    if arch == "gpt2":
        hf = {k.removeprefix("transformer.") if k.startswith("transformer.") else k: v for k, v in hf.items()}
        hf = {("transformer." + k if not k.startswith("lm_head") else k): v for k, v in hf.items()}
        for name in expected:
            if name == "lm_head.weight" and name not in hf:
                raise GptkitError("import: the config says the head is untied, but `lm_head.weight` is missing")
            tensor = take(name)
            ours[name] = tensor.t().contiguous() if name.endswith(GPT2_CONV1D) else tensor
        return ours
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
                ours[ours_i + "attn.c_attn." + kind] = torch.cat(parts, dim=0)
            for ours_name, hf_name in (
                ("attn.c_proj", "self_attn.o_proj"),
                ("mlp.c_gate", "mlp.gate_proj"),
                ("mlp.c_fc", "mlp.up_proj"),
                ("mlp.c_proj", "mlp.down_proj"),
            ):
                if f"{ours_i}{ours_name}.{kind}" in expected:
                    ours[f"{ours_i}{ours_name}.{kind}"] = take(f"{hf_i}{hf_name}.{kind}")
    return ours


# -- configs -----------------------------------------------------------------------------------------------


def hf_config(m: GPTConfig, arch: str, eos_id: int | None):
    try:
        import transformers
    except ImportError:
        raise GptkitError("export --format hf needs transformers: pip install 'gptkit[hf]'") from None
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
            attn_pdrop=m.dropout,
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
            attention_dropout=m.dropout,
            **common,
        )
        config.architectures = ["LlamaForCausalLM"]
    return config


def config_from_hf(raw: dict, source: str) -> tuple[GPTConfig, str]:
    """Our GPTConfig (and "gpt2" or "llama") from a transformers config.json dict."""
    kind = raw.get("model_type")
    try:
        if kind == "gpt2":
            if raw.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
                raise GptkitError(f"{source}: activation {raw['activation_function']!r} is not supported (gelu_new)")
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
            if raw.get("hidden_act", "silu") != "silu" or raw.get("attention_bias") != raw.get("mlp_bias", False):
                raise GptkitError(f"{source}: only silu activations and the same bias setting everywhere")
            rope = raw.get("rope_parameters") or raw.get("rope_scaling") or {}
            if rope.get("rope_type", rope.get("type", "default")) != "default":
                raise GptkitError(f"{source}: rope scaling {rope.get('rope_type') or rope.get('type')!r} unsupported")
            heads, hidden = raw["num_attention_heads"], raw["hidden_size"]
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
    except (KeyError, TypeError) as err:
        raise GptkitError(
            f"{source}: config.json lacks or mistypes {err}; not a complete transformers config"
        ) from None
    config.validate()
    return config, kind


# -- export ------------------------------------------------------------------------------------------------


def char_tokenizer_json(tok: CharTokenizer) -> dict:
    """A `tokenizer.json` for a char vocabulary: each character is a token (WordLevel), decoding joins them."""
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": False},
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {
            "type": "WordLevel",
            "vocab": {c: i for i, c in enumerate(tok.chars)},
            "unk_token": tok.unknown if tok.unknown is not None else "\ufffd",
        },
    }


def export_hf(run_dir, out_dir, *, weights: str = "last") -> Path:
    """Write `out_dir` as a transformers checkpoint folder (config, weights, generation config, tokenizer)."""
    from gptkit.run import WEIGHT_CHOICES

    run_dir, out = Path(run_dir), Path(out_dir)
    config = read_run_config(run_dir)
    arch = hf_architecture(config.model)
    tokenizer = load_tokenizer(run_dir)
    eos = tokenizer.specials.get("<|endoftext|>") if isinstance(tokenizer, BPETokenizer) else None
    hf_conf = hf_config(config.model, arch, eos)
    model = GPT(config.model)
    load_weights(model, run_dir / WEIGHT_CHOICES[weights])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        hf_conf.save_pretrained(staging)
        save_file(to_hf_state(model, arch), str(staging / "model.safetensors"), metadata={"format": "pt"})
        generation = {"do_sample": False, **({"bos_token_id": eos, "eos_token_id": eos} if eos is not None else {})}
        (staging / "generation_config.json").write_text(json.dumps(generation, indent=1))
        _export_tokenizer(tokenizer, staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _export_tokenizer(tokenizer, folder: Path) -> None:
    if isinstance(tokenizer, BPETokenizer):
        from gptkit.tokenizer.formats import export_hf as export_bpe

        export_bpe(tokenizer, folder)
    else:
        (folder / "tokenizer.json").write_text(json.dumps(char_tokenizer_json(tokenizer), ensure_ascii=False))
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1 << 30}
        (folder / "tokenizer_config.json").write_text(json.dumps(config))


# -- import ------------------------------------------------------------------------------------------------


def read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder: model.safetensors, its shards, or pytorch_model.bin (tensors only)."""
    index = folder / "model.safetensors.index.json"
    try:
        if (folder / "model.safetensors").is_file():
            return load_file(str(folder / "model.safetensors"))
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            tensors = {}
            for shard in shards:
                tensors.update(load_file(str(folder / shard)))
            return tensors
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as err:
        raise GptkitError(f"{folder}: unreadable safetensors checkpoint ({type(err).__name__}: {err})") from None
    binary = folder / "pytorch_model.bin"
    if binary.is_file():
        try:
            state = torch.load(binary, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
        except Exception as err:  # noqa: BLE001 - any failure here means "not plain tensors"
            raise GptkitError(
                f"{binary}: not a plain-tensor checkpoint ({type(err).__name__}); refusing to load it"
            ) from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise GptkitError(f"{binary}: does not hold a dict of tensors; refusing to load it")
        return state
    raise GptkitError(f"{folder}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin")


def import_tokenizer(folder: Path):
    """The folder's tokenizer (tokenizer.json, or GPT-2's vocab.json + merges.txt), or None if it has none."""
    from gptkit.tokenizer.formats import import_gpt2
    from gptkit.tokenizer.formats import import_hf as import_bpe

    path = folder / "tokenizer.json"
    if path.is_file():
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("model", {}).get("type") == "WordLevel":  # a char vocabulary, as `export_hf` writes one
            vocab = raw["model"]["vocab"]
            return CharTokenizer(sorted(vocab, key=vocab.get))
        return import_bpe(path)
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return import_gpt2(folder / "vocab.json", folder / "merges.txt")
    return None


def import_hf(src_dir, out_dir, *, tokenizer=None, echo=print) -> Path:
    """Turn a local transformers folder into a gptkit run directory (nothing is written on any error)."""
    src, out = Path(src_dir), Path(out_dir)
    if not (src / "config.json").is_file():
        raise GptkitError(f"{src}: no config.json; pass a local transformers checkpoint folder")
    if out.exists() and any(out.iterdir()):
        raise GptkitError(f"--out {out}: the folder exists and is not empty; choose a new folder")
    try:
        raw = json.loads((src / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GptkitError(f"{src / 'config.json'}: not valid JSON ({err})") from None
    model_config, arch = config_from_hf(raw, str(src / "config.json"))
    model = GPT(model_config)
    load_weights_state(model, from_hf_state(read_hf_weights(src), model_config, arch), str(src))
    tok = load_tokenizer(tokenizer) if tokenizer else import_tokenizer(src)
    if tok is not None and tok.vocab_size > model_config.vocab_size:
        raise GptkitError(f"the tokenizer has {tok.vocab_size} tokens but the model only {model_config.vocab_size}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_run_config(staging, RunConfig(model=model_config, preset=f"imported:{arch}"))
        save_weights(model, staging / WEIGHTS_FILE, {"imported_from": str(src)})
        if tok is not None:
            tok.save(staging / TOKENIZER_FILE)
        if out.exists():
            out.rmdir()  # an empty folder the user made; a non-empty one was refused above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if tok is None:
        echo(f"note: {src} has no tokenizer files; imported the weights alone. Attach one with --tokenizer PATH")
    return out
