"""Options added for the CPU speedrun (issue 10): zero-initialised output projections, logit soft-capping and
Muon. Each changes the result only when asked for, keeps shapes, and lets gradients reach every weight."""

import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file

from gptkit.config import GPTConfig, TrainConfig, resolve_config
from gptkit.errors import GptkitError
from gptkit.model import GPT
from gptkit.train.loop import train
from gptkit.train.optim import build_optimizer, muon_matrices, set_lr
from gptkit.train.optimizer_set import OptimizerSet

QUIET = {"echo": lambda line: None, "progress": False}


def build(seed: int = 0, **options) -> GPT:
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32, **options)
    config.validate()
    return GPT(config)


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 40, (4, 17), generator=generator)
    return ids[:, :-1], ids[:, 1:]


def test_new_options_are_off_by_default():
    model, train_config = GPTConfig(), TrainConfig()
    assert not model.zero_init_proj and model.logit_softcap == 0 and train_config.optimizer == "adamw"
    plain = build()
    projections = [p for n, p in plain.named_parameters() if n.endswith("c_proj.weight")]
    assert all(abs(p.std().item() - 0.02 / 2) < 0.003 for p in projections)  # GPT-2's 0.02 / sqrt(2 * layers)
    plain.lm_head.weight.data *= 1000
    assert plain(batch()[0])[0].abs().max() > 100  # logits are not capped
    assert isinstance(build_optimizer(plain, TrainConfig(), torch.device("cpu")), torch.optim.AdamW)


@pytest.mark.parametrize("mlp", ["gelu", "swiglu", "relu2"])
def test_zero_init_blocks_start_as_the_identity_and_still_learn(mlp):
    model = build(zero_init_proj=True, mlp=mlp)
    projections = [p for n, p in model.named_parameters() if n.endswith("c_proj.weight")]
    assert len(projections) == 4 and all((p == 0).all() for p in projections)
    x, y = batch()
    t = model.transformer
    skipped = model.lm_head(t.ln_f(t.wte(x) + t.wpe.weight[: x.shape[1]]))  # the blocks add nothing yet
    logits, loss = model(x, y)
    assert logits.shape == (4, 16, 40) and torch.allclose(logits, skipped, atol=1e-6)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # step 1 moves the projections off zero; then the gradient reaches every weight
        optimizer.zero_grad()
        model(x, y)[1].backward()
        optimizer.step()
    optimizer.zero_grad()
    model(x, y)[1].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_soft_capped_logits_are_bounded_and_tanh_of_the_raw_ones():
    raw, capped = build(), build(logit_softcap=2.0)
    capped.load_state_dict(raw.state_dict())
    x, y = batch()
    raw_logits = raw(x)[0] * 20  # scale the head up so the cap matters
    raw.lm_head.weight.data *= 20
    capped.lm_head.weight.data *= 20
    logits, loss = capped(x, y)
    assert logits.shape == raw_logits.shape and logits.abs().max() < 2.0 and raw_logits.abs().max() > 2.0
    assert torch.allclose(logits, 2.0 * torch.tanh(raw(x)[0] / 2.0), atol=1e-5)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in capped.parameters())


def test_soft_capping_is_refused_by_export_and_a_negative_cap_by_the_config():
    from gptkit.hf.convert import hf_architecture

    with pytest.raises(GptkitError, match="logit_softcap"):
        hf_architecture(GPTConfig(logit_softcap=30.0))
    with pytest.raises(GptkitError, match="logit_softcap"):
        GPTConfig(logit_softcap=-1.0).validate()


needs_muon = pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch.optim.Muon needs PyTorch >= 2.9")


@needs_muon
def test_muon_takes_the_block_matrices_and_adamw_everything_else():
    model = build(pos="rope", norm="rmsnorm", mlp="swiglu", bias=False, tie_embeddings=False)
    optimizer = build_optimizer(model, TrainConfig(optimizer="muon", lr=1e-3, muon_lr=2e-2), torch.device("cpu"))
    assert isinstance(optimizer, OptimizerSet)
    (muon, _), (adamw, _) = optimizer.parts
    muon_ids = {id(p) for g in muon.param_groups for p in g["params"]}
    adamw_ids = {id(p) for g in adamw.param_groups for p in g["params"]}
    assert muon_ids == {id(p) for p in muon_matrices(model)} and not muon_ids & adamw_ids
    assert muon_ids | adamw_ids == {id(p) for p in model.parameters()}
    assert id(model.transformer.wte.weight) in adamw_ids and id(model.lm_head.weight) in adamw_ids
    assert len(muon_ids) == 2 * 5  # per block: attention in and out; MLP gate, in and out
    set_lr(optimizer, 1e-3)
    assert muon.param_groups[0]["lr"] == pytest.approx(2e-2) and adamw.param_groups[0]["lr"] == 1e-3
    x, y = batch()
    first = model(x, y)[1].item()
    for _ in range(20):
        optimizer.zero_grad()
        model(x, y)[1].backward()
        optimizer.step()
    assert model(x, y)[1].item() < first - 1.0  # it learns a fixed batch


@needs_muon
def test_a_muon_run_resumes_exactly_and_refuses_another_optimizer(tmp_path, small_data):
    fixed = ("train.optimizer=muon", "train.lr_decay_iters=30", "train.peak_flops=0")
    train(tiny_config(small_data, "train.max_iters=30", *fixed), tmp_path / "whole", **QUIET)
    train(tiny_config(small_data, "train.max_iters=10", *fixed), tmp_path / "split", **QUIET)
    train(tiny_config(small_data, "train.max_iters=30", *fixed), tmp_path / "split", resume=True, **QUIET)
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    config = tiny_config(small_data, "train.max_iters=40", "train.lr_decay_iters=30", "train.optimizer=adamw")
    with pytest.raises(GptkitError, match="train.optimizer"):
        train(config, tmp_path / "split", resume=True, **QUIET)


def test_the_options_reach_the_model_from_the_command_line_settings():
    config = resolve_config(
        preset="cpu-baby", overrides=["model.zero_init_proj=true", "model.logit_softcap=15", "train.optimizer=muon"]
    )
    assert config.model.zero_init_proj and config.model.logit_softcap == 15.0 and config.train.optimizer == "muon"
    with pytest.raises(GptkitError, match="train.optimizer"):
        resolve_config(overrides=["train.optimizer=sgd"])


@needs_muon
def test_the_loss_scaler_skips_an_overflowing_step_of_both_optimizers_and_takes_the_next():
    model = build(pos="rope", mlp="swiglu", bias=False)
    optimizer = build_optimizer(model, TrainConfig(optimizer="muon"), torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    x, y = batch()
    before = [p.detach().clone() for p in model.parameters()]
    scaler.scale(model(x, y)[1]).backward()
    model.lm_head.weight.grad[0, 0] = float("inf")  # an overflow, as float16 can produce
    scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())) and scaler.get_scale() < 2.0**8
    optimizer.zero_grad()
    scaler.scale(model(x, y)[1]).backward()
    scaler.step(optimizer)
    scaler.update()
    moved = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert all(moved)  # the Muon matrices and the AdamW tensors alike


@needs_muon
def test_resumed_settings_reach_both_optimizers():
    from gptkit.train.optim import apply_optimizer_settings

    model = build(pos="rope", mlp="swiglu", bias=False)
    optimizer = build_optimizer(model, TrainConfig(optimizer="muon"), torch.device("cpu"))
    changed = TrainConfig(
        optimizer="muon", lr=1e-3, muon_lr=5e-3, muon_momentum=0.9, weight_decay=0.05, beta2=0.95, muon_ns_steps=3
    )
    apply_optimizer_settings(optimizer, changed)
    set_lr(optimizer, 1e-3)
    (muon, _), (adamw, _) = optimizer.parts
    assert muon.param_groups[0]["lr"] == pytest.approx(5e-3) and muon.param_groups[0]["momentum"] == 0.9
    assert muon.param_groups[0]["weight_decay"] == 0.05 and adamw.param_groups[0]["weight_decay"] == 0.05
    assert muon.param_groups[0]["ns_steps"] == 3
    assert adamw.param_groups[0]["betas"] == (0.9, 0.95) and adamw.param_groups[1]["weight_decay"] == 0.0
    with pytest.raises(GptkitError, match="muon_lr"):
        resolve_config(overrides=["train.muon_lr=-1"]).validate()


@needs_muon
def test_fewer_newton_schulz_steps_change_the_update_and_five_is_the_default():
    assert TrainConfig().muon_ns_steps == 5  # PyTorch's and Jordan et al.'s choice
    x, y = batch()
    updated = []
    for steps in (5, 5, 2):
        model = build(pos="rope", mlp="swiglu", bias=False)
        optimizer = build_optimizer(model, TrainConfig(optimizer="muon", muon_ns_steps=steps), torch.device("cpu"))
        assert optimizer.parts[0][0].param_groups[0]["ns_steps"] == steps
        model(x, y)[1].backward()
        optimizer.step()
        updated.append(model.transformer.h[0].mlp.c_fc.weight.detach().clone())
    assert torch.equal(updated[0], updated[1]) and not torch.allclose(updated[0], updated[2])
    with pytest.raises(GptkitError, match="muon_ns_steps"):
        resolve_config(overrides=["train.muon_ns_steps=0"]).validate()
