"""A LoRA run's adapters in Hugging Face PEFT's layout: `adapter_config.json` + `adapter_model.safetensors`.

`peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), OUT)` then gives gptkit's logits,
where BASE is the base run exported with `gptkit export BASE_RUN --out BASE`. Names follow transformers' GPT-2
(the same as ours; its Conv1D layers take `fan_in_fan_out`) or Llama (our fused q/k/v matrix is three
matrices there: an adapter on all of it becomes three that share A and split B by rows). Several adapters on
parts of GPT-2's fused `c_attn` become one of rank k*r whose B holds each part on its rows, and alpha k*alpha,
so the scale alpha / r is unchanged. Token rows added for fine-tuning go in as PEFT's
`trainable_token_indices`; the base then needs that many rows (`resize_token_embeddings`).
Entry point: `export_peft`.
"""

import json
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from gptkit.chat.template import IM_END, JINJA_TEMPLATE, is_chat_tokenizer
from gptkit.checkpoint import load_model, read_run_config
from gptkit.errors import GptkitError
from gptkit.hf.convert import hf_architecture
from gptkit.hf.folder import check_export_target, replace_folder
from gptkit.lora import LoRALinear, adapted_targets, attention_parts
from gptkit.lora_base import read_base_reference
from gptkit.paths import shown
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.tokenizer.hf_json import write_hf_tokenizer

PREFIX = "base_model.model."
LLAMA_MODULES = {"attn.c_proj": "self_attn.o_proj", "mlp.c_gate": "mlp.gate_proj", "mlp.c_fc": "mlp.up_proj"}
LLAMA_MODULES["mlp.c_proj"] = "mlp.down_proj"


def _llama_name(name: str) -> str:
    """`transformer.h.3.attn.c_proj` -> `model.layers.3.self_attn.o_proj` (the head keeps its name)."""
    if name == "lm_head":
        return name
    layer, inner = name.removeprefix("transformer.h.").split(".", 1)
    return f"model.layers.{layer}.{LLAMA_MODULES[inner]}"


def peft_adapters(model, arch: str) -> dict[str, tuple[torch.Tensor, torch.Tensor, int]]:
    """Each PEFT module's (A, B, rank multiple k) under transformers' module names."""
    adapters = {}
    for name, layer in model.named_modules():
        if not isinstance(layer, LoRALinear) or not layer.parts:
            continue
        if arch == "gpt2":
            a, b = layer.factors()
            adapters[name] = (a, b, len(layer.parts))
        elif name.endswith("attn.c_attn"):
            prefix = name.removeprefix("transformer.h.").split(".", 1)[0]
            for part in layer.parts:
                a, b = layer.lora_A[part.name], layer.lora_B[part.name]
                pieces = _split_fused(model.config, part, a, b)
                for proj, (pa, pb) in pieces.items():
                    adapters[f"model.layers.{prefix}.self_attn.{proj}"] = (pa, pb, 1)
        else:
            a, b = layer.factors()
            adapters[_llama_name(name)] = (a, b, 1)
    return adapters


def _split_fused(config, part, a: torch.Tensor, b: torch.Tensor) -> dict:
    """An adapter on (part of) the fused q/k/v rows as Llama's q_proj/k_proj/v_proj adapters."""
    pieces = {}
    for letter, rows in attention_parts(config).items():
        if rows is None or rows.stop <= part.start or rows.start >= part.stop:
            continue
        pieces[f"{letter}_proj"] = (a, b[rows.start - part.start : rows.stop - part.start])
    return pieces


def adapter_config(config, arch: str, adapters: dict, new_rows: list[int], tied: bool) -> dict:
    lora = config.lora
    modules = sorted({".".join(name.split(".")[-2:]) if name != "lm_head" else name for name in adapters})
    ranks = {name: k for name, (_, _, k) in adapters.items() if k > 1}
    pattern = {".".join(name.split(".")[-2:]): k for name, k in ranks.items()}
    tokens = None
    if new_rows:
        embedding = "transformer.wte" if arch == "gpt2" else "model.embed_tokens"
        tokens = {embedding: new_rows} if tied else {embedding: new_rows, "lm_head": new_rows}
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": modules,
        "fan_in_fan_out": arch == "gpt2",  # GPT-2's Conv1D weights are stored (in, out)
        "bias": "none",
        "rank_pattern": {name: lora.r * k for name, k in pattern.items()},
        "alpha_pattern": {name: lora.alpha * k for name, k in pattern.items()},
        "use_rslora": False,
        "use_dora": False,
        "init_lora_weights": True,
        "inference_mode": True,
        "modules_to_save": None,
        "trainable_token_indices": tokens,
        "base_model_name_or_path": None,
    }


def export_peft(run_dir, out_dir, *, weights: str = "last", echo=print) -> Path:
    """Write a LoRA run's adapters (and tokenizer) as a PEFT adapter folder `out_dir`."""
    from gptkit.run import WEIGHT_CHOICES

    run_dir, out = Path(run_dir), Path(out_dir)
    config = read_run_config(run_dir)
    if not config.lora.r:
        raise GptkitError(
            f"{shown(run_dir)} has no LoRA adapters (`lora.r` is 0); `--format peft` writes adapters, "
            "`--format hf` the whole model"
        )
    arch = hf_architecture(config.model)
    check_export_target(out, run_dir)
    model = load_model(run_dir, config, WEIGHT_CHOICES[weights])  # checks the base's sha256
    reference = read_base_reference(run_dir, check=False)
    adapters = peft_adapters(model, arch)
    tensors = {}
    for name, (a, b, _) in adapters.items():
        tensors[f"{PREFIX}{name}.lora_A.weight"] = a.detach().clone()  # Llama q/k/v may share one A
        tensors[f"{PREFIX}{name}.lora_B.weight"] = b.detach().clone()
    first = int(reference["vocab_rows"])
    new_rows = list(range(first, config.model.vocab_size))
    if new_rows and not config.model.tie_embeddings and "head" in adapted_targets(model):
        raise GptkitError(
            f"{shown(run_dir)}: PEFT cannot put the added tokens' rows on an untied head that also has an adapter; "
            "export the whole model instead (`--format hf`), or train without `head` in `lora.targets`"
        )
    if new_rows:
        embedding = "transformer.wte" if arch == "gpt2" else "model.embed_tokens"
        rows = model.transformer.wte.new_rows.detach().contiguous()
        tensors[f"{PREFIX}{embedding}.token_adapter.trainable_tokens_delta"] = rows
        if not config.model.tie_embeddings:
            tensors[f"{PREFIX}lm_head.token_adapter.trainable_tokens_delta"] = model.lm_head.new_rows.detach().clone()
    settings = adapter_config(config, arch, adapters, new_rows, config.model.tie_embeddings)
    tokenizer = load_tokenizer(run_dir) if (run_dir / TOKENIZER_FILE).exists() else None
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "adapter_config.json").write_text(json.dumps(settings, indent=1))
        save_file(tensors, str(staging / "adapter_model.safetensors"), metadata={"format": "pt"})
        if tokenizer is not None:
            chat = is_chat_tokenizer(tokenizer)
            write_hf_tokenizer(
                tokenizer, staging, **({"chat_template": JINJA_TEMPLATE, "eos_token": IM_END} if chat else {})
            )
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    base = shown(reference["run"])
    grow = f"; base.resize_token_embeddings({config.model.vocab_size}) first" if new_rows else ""
    echo(f"base model: `gptkit export {base} --format hf --out BASE`, then load BASE with transformers{grow}")
    return out
