"""LoRA: adapters start as the identity, merge exactly, train only themselves, resume exactly, and refuse bad input.

The layer is checked on every model option (GPT-2 style, Llama style with grouped-query attention, an untied
head, QK-norm); the runs are real: a LoRA run trained from the tiny run, sampled, merged and resumed through the
command line and the library.
"""

import copy
import json
import re
import shutil

import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file

import gptkit
from gptkit.checkpoint import load_model, read_run_config
from gptkit.cli import main
from gptkit.config import GPTConfig, LoRAConfig, resolve_config
from gptkit.errors import GptkitError
from gptkit.lora import LoRALinear, apply_lora, merge_lora, trainable_count
from gptkit.model import GPT
from gptkit.train.loop import train

OPTIONS = {
    "gpt2": {},
    "llama": dict(pos="rope", norm="rmsnorm", mlp="swiglu", bias=False, n_kv_head=2, tie_embeddings=False),
    "untied": dict(tie_embeddings=False),
    "qk_norm": dict(pos="rope", qk_norm=True),
}
TARGETS = ["qkv,proj", "q,v", "k,mlp,head", "v,proj,fc,mlp_proj,head"]


def model_for(option: str) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32, **OPTIONS[option])
    return GPT(config).eval()


def randomise(model: GPT, scale: float = 0.2) -> None:
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * scale)


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("targets", TARGETS)
def test_adapters_start_as_the_base_and_merge_exactly(option, targets, recwarn):
    base = model_for(option)
    idx = torch.randint(0, 50, (2, 16))
    lora = LoRAConfig(r=4, alpha=8, targets=targets)
    model = copy.deepcopy(base)
    apply_lora(model, lora, first_new_row=48)  # the last two tokens as if added for fine-tuning
    with torch.no_grad():
        logits, expected = model(idx)[0], base(idx)[0]
        assert torch.equal(logits[..., :48], expected[..., :48])  # B = 0: exactly the base's logits
        assert torch.allclose(logits, expected, atol=1e-6)  # the new rows start as they were
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == trainable_count(model.config, lora, new_rows=2)
    randomise(model)
    with torch.no_grad():
        unmerged = model(idx)[0]
        assert not torch.allclose(unmerged, base(idx)[0], atol=1e-3)
        merged = merge_lora(copy.deepcopy(model))
        assert not any(isinstance(m, LoRALinear) for m in merged.modules())
        assert torch.allclose(merged(idx)[0], unmerged, atol=1e-5)
        rebuilt = GPT(merged.config)  # the merged weights load into a plain model of the merged config
        rebuilt.load_state_dict(merged.state_dict())
        assert torch.allclose(rebuilt.eval()(idx)[0], unmerged, atol=1e-5)


def test_a_part_of_the_fused_matrix_changes_only_its_rows_and_unmerge_restores():
    model = model_for("llama")  # 4 query heads, 2 key/value heads of 8: q rows 0-31, k 32-47, v 48-63
    before = model.transformer.h[0].attn.c_attn.weight.detach().clone()
    apply_lora(model, LoRAConfig(r=2, targets="k"))
    randomise(model)
    layer = model.transformer.h[0].attn.c_attn
    changed = layer.delta().abs().sum(dim=1) > 0
    assert changed[32:48].all() and not changed[:32].any() and not changed[48:].any()
    layer.merge()
    assert not torch.equal(layer.weight, before)
    layer.unmerge()
    assert torch.allclose(layer.weight, before, atol=1e-6)


def test_the_layers_own_merge_keeps_the_added_rows_and_refuses_a_shared_head():
    model = model_for("untied")
    apply_lora(model, LoRAConfig(r=2, targets="head"), first_new_row=48)
    randomise(model)
    x = torch.randn(3, 32)
    head = model.lm_head
    with torch.no_grad():
        unmerged = head(x)
        head.merge()
        assert torch.allclose(head(x), unmerged, atol=1e-5)
        head.unmerge()
        assert torch.allclose(head(x), unmerged, atol=1e-5)
    tied = model_for("gpt2")
    apply_lora(tied, LoRAConfig(r=2, targets="head"))
    with pytest.raises(GptkitError, match="shares its weight with the embedding; use gptkit.lora.merge_lora"):
        tied.lm_head.merge()


def test_dropout_acts_on_the_adapter_path_only():
    model = model_for("gpt2")
    apply_lora(model, LoRAConfig(r=4, dropout=0.5, targets="qkv"))
    model.train()
    idx = torch.randint(0, 50, (2, 16))
    first, second = model(idx)[0], model(idx)[0]
    assert torch.equal(first, second)  # B = 0: the dropped adapter input changes nothing yet
    randomise(model)
    assert not torch.equal(model(idx)[0], model(idx)[0])


def lora_args(data, base, out, *overrides):
    settings = ["train.max_iters=20", "train.eval_interval=10", "train.device=cpu", "lora.r=4", *overrides]
    args = ["train", "--data", str(data), "--init-from", str(base), "--out", str(out), "--preset", "sft"]
    return args + [arg for item in settings for arg in ("--set", item)]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, trained_run, small_data):
    out = tmp_path_factory.mktemp("lora") / "run"
    args = lora_args(small_data, trained_run, out, "train.objective=causal", "lora.targets=qkv,proj,head")
    return out, args


def test_a_lora_run_trains_only_adapters_and_loads_merged(lora_run, trained_run, small_data, capsys):
    out, args = lora_run
    assert main(args) == 0
    log = capsys.readouterr().out
    config = read_run_config(out)
    printed = int(re.search(r"lora: .*: ([\d,]+) trainable parameters", log).group(1).replace(",", ""))
    assert printed == trainable_count(config.model, config.lora) > 0
    adapters = load_file(out / "model.safetensors")
    assert sum(t.numel() for t in adapters.values()) == printed  # the run saves the adapters alone
    assert all(".lora_" in name for name in adapters)
    checkpoint = load_file(out / "checkpoint.safetensors")
    optimizer = sum(t.numel() for name, t in checkpoint.items() if name.startswith("optim.") and t.dim() > 0)
    assert optimizer == 2 * printed  # AdamW's two moments, of the adapters only
    reference = json.loads((out / "base.json").read_text())
    assert reference["run"] == str(trained_run.resolve()) and len(reference["sha256"]) == 64
    # step 0 is the base model: the run's first eval equals a full fine-tune's from the same weights
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first["kind"] == "eval" and first["step"] == 0
    full = out.parent / "full"
    assert main(lora_args(small_data, trained_run, full, "train.objective=causal", "lora.r=0")) == 0
    first_full = json.loads((full / "metrics.jsonl").read_text().splitlines()[0])
    assert first_full["step"] == 0 and first_full["val_loss"] == first["val_loss"]
    # use: the library merges the adapters; the unmerged model gives the same logits
    unmerged = load_model(out, config).eval()
    run = gptkit.load(out, device="cpu")
    idx = torch.randint(0, config.model.vocab_size, (2, 24))
    with torch.no_grad():
        assert torch.allclose(run.model(idx)[0], unmerged(idx)[0], atol=1e-5)
    assert run.generate("ROMEO:", 20, temperature=0) == gptkit.load(out, device="cpu").generate(
        "ROMEO:", 20, temperature=0
    )
    # merge writes a plain run with the same logits; the head had its own adapter, so it is untied there
    assert main(["merge", str(out), "--out", str(out.parent / "merged")]) == 0
    merged = gptkit.load(out.parent / "merged", device="cpu")
    assert merged.config.lora.r == 0 and not merged.config.model.tie_embeddings
    with torch.no_grad():
        assert torch.allclose(merged.model(idx)[0], unmerged(idx)[0], atol=1e-5)
    assert main(["sample", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "5", "--device", "cpu"]) == 0


def test_resume_is_exact(tmp_path, trained_run, small_data):
    quiet = dict(echo=lambda line: None, progress=False)
    settings = ["lora.r=4", "lora.targets=q,v,fc", "lora.dropout=0.1", "train.max_iters=20", "train.lr_decay_iters=20"]
    train(tiny_config(small_data, *settings), tmp_path / "straight", init_from=trained_run, **quiet)
    half = tiny_config(small_data, *settings)
    half.train.max_iters = 10
    train(half, tmp_path / "resumed", init_from=trained_run, **quiet)
    train(tiny_config(small_data, *settings), tmp_path / "resumed", resume=True, **quiet)
    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "setting, message",
    [
        ("lora.r=-1", "`lora.r` must be >= 0"),
        ("lora.targets=qkv,attention", "unknown target 'attention'"),
        ("lora.targets=qkv,q", "qkv already covers q, k and v"),
        ("train.optimizer=muon", "`train.optimizer`=muon is for full weight matrices"),
    ],
)
def test_bad_settings_are_refused(setting, message):
    with pytest.raises(GptkitError, match=re.escape(message)):
        resolve_config(overrides=["lora.r=8", setting] if "lora.r" not in setting else [setting])


def test_bad_runs_are_refused_with_one_line(tmp_path, trained_run, small_data, capsys):
    quiet = dict(echo=lambda line: None, progress=False)
    with pytest.raises(GptkitError, match=r"`lora.r`=64 is larger than the `qkv` matrix \(96 x 32\).*at most 32"):
        train(tiny_config(small_data, "lora.r=64"), tmp_path / "big", init_from=trained_run, **quiet)
    with pytest.raises(GptkitError, match=r"gate needs `model.mlp`=swiglu"):
        train(tiny_config(small_data, "lora.r=2", "lora.targets=gate"), tmp_path / "g", init_from=trained_run, **quiet)
    with pytest.raises(GptkitError, match=r"init_from: LoRA .* pass the run to adapt \(--init-from RUN\)"):
        train(tiny_config(small_data, "lora.r=2"), tmp_path / "none", **quiet)
    assert main(["merge", str(trained_run), "--out", str(tmp_path / "m")]) == 2
    assert "has no LoRA adapters to merge" in capsys.readouterr().err
    # a base whose weights changed after the adapters were trained
    base = tmp_path / "base"
    shutil.copytree(trained_run, base)
    settings = ["lora.r=2", "train.max_iters=4", "train.eval_interval=4"]
    train(tiny_config(small_data, *settings), tmp_path / "adapted", init_from=base, **quiet)
    gptkit.load(tmp_path / "adapted", device="cpu")
    with torch.no_grad():
        weights = load_file(base / "model.safetensors")
        weights["transformer.ln_f.weight"] += 0.01
    from safetensors.torch import save_file

    save_file(weights, str(base / "model.safetensors"))
    for command in (["sample", str(tmp_path / "adapted")], ["merge", str(tmp_path / "adapted"), "--out", "x"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "changed since the adapters were trained (sha256 differs)" in err and err.count("\n") == 1
    with pytest.raises(GptkitError, match="is itself a LoRA run; merge it first"):
        train(tiny_config(small_data, *settings), tmp_path / "stacked", init_from=tmp_path / "adapted", **quiet)
    with pytest.raises(GptkitError, match=r"is a LoRA run \(adapters alone\); merge it first"):
        train(tiny_config(small_data), tmp_path / "full", init_from=tmp_path / "adapted", **quiet)


def test_adapters_cannot_change_on_resume(tmp_path, trained_run, small_data):
    quiet = dict(echo=lambda line: None, progress=False)
    settings = ["lora.r=2", "train.max_iters=4", "train.eval_interval=2"]
    train(tiny_config(small_data, *settings), tmp_path / "run", init_from=trained_run, **quiet)
    for change in (["lora.r=0"], ["lora.alpha=4"]):
        with pytest.raises(GptkitError, match=r"adapters \(`lora.r`=2 on qkv,proj, alpha 16\) cannot change on resume"):
            train(
                tiny_config(small_data, *settings, *change, "train.max_iters=6"), tmp_path / "run", resume=True, **quiet
            )
    reordered = tiny_config(small_data, *settings, "lora.targets=proj,qkv", "train.max_iters=6")
    train(reordered, tmp_path / "run", resume=True, **quiet)  # the same adapters, named in another order
    with pytest.raises(GptkitError, match=r"adapters \(`lora.r`=2 on proj,qkv, alpha 16\) cannot change on resume"):
        train(
            tiny_config(small_data, *settings, "lora.r=4", "train.max_iters=6"), tmp_path / "run", resume=True, **quiet
        )
