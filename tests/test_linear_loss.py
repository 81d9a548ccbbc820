"""The chunked head + cross-entropy gives the plain path's loss and gradients, and never keeps whole logits."""

import math

import pytest
import torch
import torch.nn.functional as F

from gptkit import linear_loss
from gptkit.config import LoRAConfig, resolve_config
from gptkit.linear_loss import linear_cross_entropy
from gptkit.lora import apply_lora
from gptkit.model import GPT

VOCAB = 50


def plain_loss(x, weight, targets, softcap):
    logits = (x @ weight.T).float()
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def loss_and_grads(loss_fn, x, weight, targets, softcap, dtype=None):
    x.grad = weight.grad = None
    with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = loss_fn(x, weight, targets, softcap)
    (3 * loss).backward()  # a scale other than 1, as gradient accumulation and loss scaling give
    return loss.detach(), x.grad.clone(), weight.grad.clone()


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(linear_loss, "CHUNK_LOGITS", 7 * VOCAB)  # 7 rows a chunk: 36 rows make 6 chunks


@pytest.mark.parametrize("softcap", [0.0, 15.0])
def test_matches_cross_entropy_of_the_whole_logits(small_chunks, softcap):
    torch.manual_seed(0)
    x = torch.randn(4, 9, 16, requires_grad=True)
    weight = torch.randn(VOCAB, 16, requires_grad=True)
    targets = torch.randint(VOCAB, (4, 9))
    targets[0, :3] = -1  # not scored, as padding and prompts are
    expected = loss_and_grads(plain_loss, x, weight, targets, softcap)
    got = loss_and_grads(linear_cross_entropy, x, weight, targets, softcap)
    for want, have in zip(expected, got):
        torch.testing.assert_close(have, want, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_matches_within_bf16_rounding(small_chunks):
    torch.manual_seed(0)
    x = torch.randn(36, 16, requires_grad=True)
    weight = torch.randn(VOCAB, 16, requires_grad=True)
    targets = torch.randint(VOCAB, (36,))
    expected = loss_and_grads(plain_loss, x, weight, targets, 0.0, torch.bfloat16)
    got = loss_and_grads(linear_cross_entropy, x, weight, targets, 0.0, torch.bfloat16)
    assert got[0].item() == pytest.approx(expected[0].item(), rel=1e-5)
    for want, have in zip(expected[1:], got[1:]):
        assert have.dtype == torch.float32
        assert (have - want).norm() / want.norm() < 1e-2


def test_no_scored_position_gives_nan_like_cross_entropy_and_zero_gradients():
    x = torch.randn(5, 8, requires_grad=True)
    weight = torch.randn(VOCAB, 8, requires_grad=True)
    targets = torch.full((5,), -1)
    assert math.isnan(plain_loss(x, weight, targets, 0.0).item())
    loss = linear_cross_entropy(x, weight, targets)
    assert math.isnan(loss.item())
    loss.backward()
    assert not x.grad.any() and not weight.grad.any()


def matmuls_run(fn) -> int:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key in ("aten::mm", "aten::addmm", "aten::addmm_"))


def test_evaluation_under_no_grad_makes_no_gradients(small_chunks):
    x = torch.randn(36, 16, requires_grad=True)
    weight = torch.randn(VOCAB, 16, requires_grad=True)
    targets = torch.randint(VOCAB, (36,))
    with torch.no_grad():
        assert matmuls_run(lambda: linear_cross_entropy(x, weight, targets)) == 6  # the 6 chunks' logits alone
    assert matmuls_run(lambda: linear_cross_entropy(x, weight, targets)) == 18  # and both gradients of each


def saved_for_backward_bytes(fn) -> int:
    """The largest tensor autograd keeps for the backward pass while `fn` runs."""
    sizes = []

    def pack(tensor):
        sizes.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return max(sizes)


def test_the_model_keeps_no_whole_logits_for_the_backward_pass():
    config = resolve_config(overrides=["model.n_layer=1", "model.n_embd=32", "model.n_head=2", "model.block_size=64"])
    config.model.vocab_size = 2**14  # a large vocabulary: the logits dwarf everything else
    model = GPT(config.model)
    idx = torch.randint(1000, (8, 64))
    whole_logits = 8 * 64 * config.model.vocab_size * 4
    head_weight = config.model.vocab_size * 32 * 4
    plain = saved_for_backward_bytes(lambda: model(idx, idx))
    lean = saved_for_backward_bytes(lambda: model(idx, idx, return_logits=False))
    assert plain >= whole_logits
    assert lean <= head_weight  # the head's gradient, 16x smaller than the logits here


@pytest.mark.parametrize("lora_targets", ["", "qkv,proj", "head"])
def test_model_loss_and_gradients_match_the_logits_path(small_chunks, lora_targets):
    """Every option that touches the head: tied weights, a soft cap, RMSNorm, LoRA (a LoRA head keeps the
    plain path)."""
    overrides = ["model.n_layer=2", "model.n_embd=32", "model.n_head=2", "model.block_size=16"]
    overrides += ["model.logit_softcap=10", "model.norm=rmsnorm", "model.dropout=0"]
    config = resolve_config(overrides=overrides)
    config.model.vocab_size = VOCAB
    torch.manual_seed(0)
    model = GPT(config.model)
    if lora_targets:
        apply_lora(model, LoRAConfig(r=2, targets=lora_targets), first_new_row=VOCAB)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param)  # non-zero, so the adapters' gradients are not trivially equal
    idx = torch.randint(VOCAB, (3, 16))
    targets = torch.randint(VOCAB, (3, 16))
    targets[1, :5] = -1
    results = []
    for return_logits in (True, False):
        model.zero_grad(set_to_none=True)
        logits, loss = model(idx, targets, return_logits=return_logits)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((logits, loss.detach(), grads))
    (logits, loss, grads), (no_logits, lean_loss, lean_grads) = results
    assert logits is not None and (no_logits is None) == (lora_targets != "head")
    torch.testing.assert_close(lean_loss, loss, atol=1e-6, rtol=1e-6)
    assert grads.keys() == lean_grads.keys() and grads
    for name in grads:
        torch.testing.assert_close(lean_grads[name], grads[name], atol=1e-6, rtol=1e-5, msg=name)
