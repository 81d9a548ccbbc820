"""No config may take the machine's memory: sizes are worked out from the config and refused before anything is
allocated, through --set, TOML and an imported config.json alike, with an escape for those who know better."""

import itertools
import json
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from helpers import tiny_config

from gptkit.config import resolve_config
from gptkit.errors import GptkitError
from gptkit.memory import param_count, training_bytes
from gptkit.model import GPT, build_model
from gptkit.presets import PRESETS

# Runs a command and prints its peak RSS in KiB: a fresh parent, so no earlier child of pytest counts.
PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "print(code.returncode); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(code.stderr)"
)


def run_measured(*args: str) -> tuple[int, int, str, float]:
    """(exit code, peak RSS in bytes, stderr, seconds) of `gptkit ARGS`."""
    began = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "gptkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    code, rss, stderr = out.split("\n", 2)
    return int(code), int(rss) * 1024, stderr.strip(), time.monotonic() - began


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_count_from_the_config_is_the_models_own(preset):
    base = resolve_config(preset=preset).model
    base.vocab_size = 97
    options = itertools.product(["learned", "rope"], ["layernorm", "rmsnorm"], ["gelu", "swiglu"], [True, False])
    for pos, norm, mlp, flag in options:
        kv = 1 if flag and base.n_head % 2 == 0 else 0
        config = replace(base, pos=pos, norm=norm, mlp=mlp, bias=flag, tie_embeddings=not flag, qk_norm=flag)
        config = replace(config, n_kv_head=kv, mlp_hidden=96 if flag else 0)
        with torch.device("meta"):
            model = build_model(config)
        assert param_count(config) == model.num_params(non_embedding=False), config


def test_the_estimate_is_a_floor_of_what_training_really_takes(small_data):
    config = tiny_config(small_data, "train.batch_size=16", "model.block_size=64", "model.vocab_size=65")
    need = training_bytes(config)
    model = GPT(config.model)
    params = sum(p.numel() for p in model.parameters())
    assert need.state >= 16 * params  # weights, gradients and two AdamW moments in float32
    x = torch.randint(0, 65, (16, 64))
    saved = []

    def keep(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model(x, x)
    assert need.activations <= sum(saved)  # a floor: what autograd keeps is more


@pytest.mark.parametrize(
    "setting",
    [
        ["--set", "model.n_layer=10000"],
        ["--set", "train.batch_size=10000000"],
        ["--set", "model.n_embd=1048576", "model.n_head=1"],
        ["--config", "HUGE_TOML"],
    ],
)
def test_a_config_that_cannot_fit_is_refused_in_seconds_and_little_memory(small_data, tmp_path, setting):
    toml = tmp_path / "huge.toml"
    toml.write_text("[model]\nn_layer = 100000000000000000000000000\n")
    args = [str(toml) if a == "HUGE_TOML" else a for a in setting]
    code, rss, stderr, seconds = run_measured("train", "--data", str(small_data), "--out", str(tmp_path / "r"), *args)
    assert code == 2, stderr
    assert stderr.startswith("error: the run needs at least") and stderr.count("\n") == 0
    assert "--skip-memory-check" in stderr
    named = "train.batch_size" if "batch_size" in " ".join(args) else "model.n_layer"
    assert f"`{named}`=" in stderr
    assert rss < 1 << 30 and seconds < 10, (rss, seconds)
    assert not (tmp_path / "r").exists()  # nothing written


def test_an_imported_config_may_not_claim_more_than_its_weights_hold(tmp_path):
    transformers = pytest.importorskip("transformers")
    small = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64, vocab_size=100)
    folder = tmp_path / "hf"
    transformers.GPT2LMHeadModel(small).save_pretrained(folder)
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**raw, "n_layer": 10000}))
    code, rss, stderr, seconds = run_measured("import", str(folder), "--out", str(tmp_path / "run"))
    assert code == 2 and "n_layer=10000, but the weights hold 2 layers" in stderr, stderr
    assert rss < 1 << 30 and seconds < 10
    (folder / "config.json").write_text(json.dumps({**raw, "n_embd": 1 << 20, "n_head": 1}))
    code, _, stderr, _ = run_measured("import", str(folder), "--out", str(tmp_path / "run"))
    assert code == 2 and "the token embedding is (100, 32)" in stderr, stderr
    assert not (tmp_path / "run").exists()


def test_a_config_json_edited_to_a_huge_model_is_refused_before_it_is_built(trained_run, tmp_path):
    import shutil

    run = tmp_path / "edited"
    shutil.copytree(trained_run, run)
    raw = json.loads((run / "config.json").read_text())
    raw["model"]["n_layer"] = 10000
    (run / "config.json").write_text(json.dumps(raw))
    for command in (["sample", str(run), "--max-new-tokens", "2"], ["export", str(run), "--out", str(tmp_path / "x")]):
        code, rss, stderr, seconds = run_measured(*command)
        assert code == 2 and "config.json describes a model of" in stderr, stderr
        assert rss < 1 << 30 and seconds < 10


def test_the_check_can_be_skipped_by_those_who_know_better(small_data, tmp_path, monkeypatch):
    from gptkit.train import loop

    monkeypatch.setattr("gptkit.memory.available_bytes", lambda device: 1 << 20)  # a machine with 1 MB free
    config = tiny_config(small_data, "train.max_iters=2", "train.eval_interval=2")
    with pytest.raises(GptkitError, match="has 1.0 MB free"):
        loop.train(config, tmp_path / "refused", echo=lambda line: None, progress=False)
    result = loop.train(config, tmp_path / "forced", echo=lambda line: None, progress=False, check_memory=False)
    assert result.step == 2
    cli = subprocess.run(
        [sys.executable, "-m", "gptkit", "train", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "--skip-memory-check" in cli


def test_a_rope_run_edited_to_a_huge_context_is_refused_before_its_tables_are_built(tmp_path):
    from gptkit.checkpoint import save_weights, write_run_config
    from gptkit.config import RunConfig
    from gptkit.tokenizer.char import CharTokenizer

    run = tmp_path / "rope"
    config = RunConfig(model=resolve_config(preset="llama-tiny").model)
    config.model.vocab_size = 65
    save_weights(GPT(config.model), run / "model.safetensors")
    CharTokenizer.from_text("".join(chr(32 + i) for i in range(65))).save(run / "tokenizer.json")
    config.model.block_size = 10**12  # the weights do not say how long the context is; the RoPE tables do
    write_run_config(run, config)
    code, rss, stderr, seconds = run_measured("sample", str(run), "--max-new-tokens", "2")
    assert code == 2 and "`model.block_size`=1000000000000" in stderr and "free" in stderr, stderr
    assert rss < 1 << 30 and seconds < 10


@pytest.mark.parametrize(
    "change, says", [("intermediate_size", "but the config needs (100000000, 32)"), ("heads", "must be a positive")]
)
def test_an_imported_llama_config_must_match_its_weights_even_without_the_memory_check(tmp_path, change, says):
    transformers = pytest.importorskip("transformers")
    small = transformers.LlamaConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=100
    )
    folder = tmp_path / "hf"
    transformers.LlamaForCausalLM(small).save_pretrained(folder)
    raw = json.loads((folder / "config.json").read_text())
    raw.update({"intermediate_size": 100_000_000} if change == "intermediate_size" else {"num_attention_heads": 0})
    (folder / "config.json").write_text(json.dumps(raw))
    out = str(tmp_path / "run")
    code, rss, stderr, seconds = run_measured("import", str(folder), "--out", out, "--skip-memory-check")
    assert code == 2 and says in stderr, stderr
    assert rss < 1 << 30 and seconds < 10


def test_the_floor_holds_for_bf16_activations_and_counts_them_at_half_size():
    config = resolve_config(overrides=["model.n_layer=2", "model.n_embd=64", "model.n_head=2", "model.vocab_size=65"])
    fp32, bf16 = training_bytes(config), training_bytes(config, torch.bfloat16)
    logits = 4 * 2 * config.train.batch_size * config.model.block_size * 65
    assert bf16.activations - logits == (fp32.activations - logits) // 2
    model = GPT(config.model)
    x = torch.randint(0, 65, (config.train.batch_size, config.model.block_size))
    saved = []

    def keep(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        model(x, x)
    assert bf16.activations <= sum(saved)


def test_a_lora_run_needs_the_frozen_weights_once_and_state_for_its_adapters_only():
    from gptkit.lora import trainable_count
    from gptkit.memory import param_count, training_bytes

    full = resolve_config(preset="gpt2")
    full.model.vocab_size = 50257
    lora = resolve_config(preset="gpt2", overrides=["lora.r=8"])
    lora.model.vocab_size = 50257
    saved = training_bytes(full).state - training_bytes(lora).state
    frozen = param_count(full.model) - trainable_count(lora.model, lora.lora)
    assert saved == 12 * frozen  # a gradient and two AdamW moments, float32, for every frozen weight
    assert training_bytes(lora).activations == training_bytes(full).activations


def _saved_bytes(module, *inputs) -> int:
    """The activations autograd saves for the backward pass while `module(*inputs)` runs: each tensor once,
    the module's own weights left out."""
    weights = {p.data_ptr() for p in module.parameters()}
    saved = {}

    def keep(tensor):
        if tensor.data_ptr() not in weights:
            saved[tensor.data_ptr()] = max(saved.get(tensor.data_ptr(), 0), tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        module(*inputs)
    return sum(saved.values())


def test_with_recompute_the_floor_counts_block_inputs_and_one_rebuilt_block(small_data, tmp_path, monkeypatch):
    from gptkit.train import loop

    settings = ("model.n_layer=6", "model.n_embd=64", "model.n_head=2", "model.vocab_size=65", "train.batch_size=32")
    config = resolve_config(overrides=list(settings))
    checkpointed = resolve_config(overrides=[*settings, "train.recompute=true"])
    full, light = training_bytes(config).activations, training_bytes(checkpointed).activations
    assert light < full / 3  # six blocks' activations become six inputs and one block's activations
    model = GPT(config.model).train()
    x = torch.randint(0, 65, (32, config.model.block_size))
    model.recompute_blocks = True
    kept = _saved_bytes(model, x, x)  # the blocks' inputs are held by the checkpoints, not counted here
    block = model.transformer.h[-1]
    rope = (model.rope_cos[None, None], model.rope_sin[None, None]) if config.model.pos == "rope" else None
    rebuilt = _saved_bytes(block, torch.randn(32, config.model.block_size, 64), rope, None, None)
    inputs = 4 * config.model.n_layer * x.numel() * 64
    # at its peak training holds every block's input and either the head's saved tensors or one rebuilt block
    assert light <= inputs + max(kept, rebuilt)
    # a run that only fits with recompute is let through with it, and refused without
    data = ("model.n_layer=6", "model.n_embd=64", "model.n_head=2", "train.batch_size=32", "train.max_iters=1")
    plain, with_recompute = tiny_config(small_data, *data), tiny_config(small_data, *data, "train.recompute=true")
    vocab = json.loads((small_data / "meta.json").read_text())["vocab_size"]
    sized = [replace(c, model=replace(c.model, vocab_size=vocab)) for c in (plain, with_recompute)]
    between = (training_bytes(sized[0]).total + training_bytes(sized[1]).total) // 2
    monkeypatch.setattr("gptkit.memory.available_bytes", lambda device: between)
    with pytest.raises(GptkitError, match=r"the run needs at least .* set `train.recompute=true`"):
        loop.train(plain, tmp_path / "refused", echo=lambda line: None, progress=False)
    assert loop.train(with_recompute, tmp_path / "fits", echo=lambda line: None, progress=False).step == 1
