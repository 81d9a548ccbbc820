import math

import torch

from gptkit.config import GPTConfig
from gptkit.model import GPT


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=32, **kw))


def test_changing_a_later_token_never_changes_earlier_logits():
    model = tiny().eval()
    idx = torch.randint(0, 65, (2, 32))
    changed = idx.clone()
    changed[:, 20:] = (changed[:, 20:] + 1) % 65
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[:, :20], b[:, :20], atol=1e-6)
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_loss_at_init_is_about_ln_vocab():
    model = tiny()
    idx = torch.randint(0, 65, (8, 32))
    _, loss = model(idx, torch.randint(0, 65, (8, 32)))
    assert abs(loss.item() - math.log(65)) < 0.05


def test_a_tiny_model_overfits_one_batch():
    model = tiny()
    idx = torch.randint(0, 65, (4, 32))
    targets = torch.randint(0, 65, (4, 32))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        _, loss = model(idx, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_gpt2_small_has_the_published_parameter_count():
    with torch.device("meta"):  # shapes only, no memory
        model = GPT(GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768))
    assert model.num_params(non_embedding=False) == 124_439_808  # Hugging Face's count for `gpt2`
    assert model.num_params() == 124_439_808 - 1024 * 768


def test_lm_head_is_tied_and_last_only_matches_full_logits():
    model = tiny().eval()
    assert model.lm_head.weight is model.transformer.wte.weight
    idx = torch.randint(0, 65, (3, 10))
    full, _ = model(idx)
    last, _ = model(idx, last_only=True)
    assert torch.allclose(full[:, -1:], last, atol=1e-6)


def test_residual_projections_get_the_scaled_init():
    model = GPT(GPTConfig(vocab_size=65, block_size=32, n_layer=8, n_head=2, n_embd=256))
    std = model.transformer.h[0].mlp.c_proj.weight.std().item()
    assert abs(std - 0.02 / math.sqrt(16)) < 0.0005
    assert abs(model.transformer.h[0].mlp.c_fc.weight.std().item() - 0.02) < 0.001


def test_dropout_only_in_training_mode():
    model = tiny(dropout=0.5)
    idx = torch.randint(0, 65, (2, 16))
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])


def test_recomputing_blocks_gives_the_same_loss_and_gradients_with_dropout():
    """`train.recompute` (activation checkpointing) trades memory for compute, never results: the dropout
    masks of the recomputed forward are the first forward's."""
    config = GPTConfig(vocab_size=40, block_size=16, n_layer=3, n_head=2, n_embd=32, dropout=0.2)
    idx = torch.randint(0, 40, (4, 16))
    results = []
    for recompute in (False, True):
        torch.manual_seed(0)
        model = GPT(config).train()
        model.recompute_blocks = recompute
        torch.manual_seed(1)
        _, loss = model(idx, idx)
        loss.backward()
        results.append((loss.detach(), [p.grad for p in model.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert torch.equal(loss_a, loss_b)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads_a, grads_b))
