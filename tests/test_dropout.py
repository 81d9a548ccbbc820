"""The CPU dropout (gptkit.dropout): PyTorch's distribution and gradient, reproducible under a seed, and
the attention-only switch `model.attn_dropout`, off (= `model.dropout`) by default."""

import pytest
import torch

from gptkit.config import GPTConfig
from gptkit.dropout import Dropout, dropout
from gptkit.hf.convert import hf_config
from gptkit.model import GPT


@pytest.mark.parametrize("p", [0.01, 0.1, 0.5, 0.9])
def test_drops_a_fraction_p_and_keeps_the_expectation(p):
    torch.manual_seed(0)
    x = torch.full((1000, 1000), 2.0)
    y = dropout(x, p)
    dropped = (y == 0).float().mean().item()
    sigma = (p * (1 - p) / x.numel()) ** 0.5
    assert abs(dropped - p) < 5 * sigma + 1 / 65536  # p is rounded to a multiple of 1/65536
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 2 / (1 - round(p * 65536) / 65536)))
    assert y.mean().item() == pytest.approx(2.0, abs=10 * 2 * sigma / (1 - p))


def test_every_bit_position_is_used():
    # Neighbouring elements come from the four 16-bit parts of one 64-bit draw: none may be stuck.
    torch.manual_seed(1)
    y = dropout(torch.ones(400_000), 0.5)
    for part in range(4):
        assert abs((y[part::4] == 0).float().mean().item() - 0.5) < 0.01


def test_gradient_is_the_same_mask_and_scale():
    torch.manual_seed(2)
    x = torch.randn(64, 128, requires_grad=True)
    y = dropout(x, 0.25)
    y.backward(torch.ones_like(y))
    expected = (y != 0).float() / 0.75
    assert torch.equal(x.grad, expected)


def test_identity_outside_training_and_at_zero():
    x = torch.randn(8, 8)
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0) is x
    layer = Dropout(0.3).eval()
    assert layer(x) is x


def test_a_seed_fixes_the_mask_and_keeps_the_dtype():
    x = torch.randn(32, 64, dtype=torch.bfloat16)
    torch.manual_seed(3)
    first = dropout(x, 0.2)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.2), first) and first.dtype == torch.bfloat16
    assert not torch.equal(dropout(x, 0.2), first)


def test_attn_dropout_follows_dropout_unless_set():
    assert GPTConfig().attn_dropout == -1.0 and GPTConfig(dropout=0.2).attention_dropout() == 0.2
    config = GPTConfig(vocab_size=50, n_layer=2, n_head=2, n_embd=32, dropout=0.2, attn_dropout=0.0)
    config.validate()
    model = GPT(config)
    assert all(block.attn.dropout == 0.0 for block in model.transformer.h)
    assert model.transformer.h[0].mlp.dropout.p == 0.2  # the residual branches still drop
    assert hf_config(config, "gpt2", 0).attn_pdrop == 0.0


def test_without_attention_dropout_a_model_in_training_mode_still_varies_only_through_residuals():
    torch.manual_seed(4)
    config = GPTConfig(vocab_size=50, n_layer=2, n_head=2, n_embd=32, block_size=16, dropout=0.3, attn_dropout=0.0)
    model = GPT(config).train()
    idx = torch.randint(0, 50, (2, 16))
    assert not torch.equal(model(idx)[0], model(idx)[0])
    for module in model.modules():
        if isinstance(module, Dropout):
            module.p = 0.0
    assert torch.equal(model(idx)[0], model(idx)[0])  # attention itself drops nothing
