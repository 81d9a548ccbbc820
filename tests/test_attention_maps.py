"""Attention weights on request: the explicit path gives SDPA's output, and the weights are a causal softmax."""

import pytest
import torch
from test_model_options import OPTIONS, build, lively

from gptkit.model import KVCache, recording_attention


@pytest.mark.parametrize("pos, norm, mlp, qk_norm, n_kv_head", OPTIONS[::5])
def test_the_explicit_path_equals_sdpa(pos, norm, mlp, qk_norm, n_kv_head):
    model = lively(build(pos, norm, mlp, qk_norm, n_kv_head))
    idx = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(1))
    fast, _ = model(idx)
    with recording_attention(model) as maps:
        explicit, _ = model(idx)
    assert len(maps) == 2 and maps[0].shape == (2, 4, 20, 20)
    assert torch.allclose(explicit, fast, atol=1e-5)
    assert all(block.attn.recorder is None for block in model.transformer.h)  # the fast path is back


def test_the_explicit_path_equals_sdpa_with_padding_and_a_cache():
    model = lively(build("rope", n_kv_head=2))
    idx = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(2))
    key_mask = torch.ones(2, 12, dtype=torch.bool)
    key_mask[1, :4] = False  # left padding
    fast, _ = model(idx, key_mask=key_mask)
    with recording_attention(model):
        explicit, _ = model(idx, key_mask=key_mask)
    assert torch.allclose(explicit[1, 4:], fast[1, 4:], atol=1e-5) and torch.allclose(explicit[0], fast[0], atol=1e-5)
    outputs = []
    for recording in (False, True):  # prefill 5 tokens, then 3 at once (a mask), then 1 (no mask)
        cache = KVCache(model.config, 2, 24, "cpu")
        with recording_attention(model) if recording else torch.no_grad():
            steps = [model(idx[:, :5], cache=cache)[0], model(idx[:, 5:8], cache=cache)[0]]
            steps.append(model(idx[:, 8:9], cache=cache)[0])
        outputs.append(torch.cat(steps, 1))
    assert torch.allclose(outputs[1], outputs[0], atol=1e-5)


def test_weights_are_a_causal_softmax_that_sums_to_one():
    model = lively(build("learned"))
    idx = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(3))
    with recording_attention(model) as maps:
        model(idx)
    for weights in maps:  # (B, nh, T, T)
        assert torch.allclose(weights.sum(-1), torch.ones(3, 4, 16), atol=1e-6)
        above = torch.ones(16, 16, dtype=torch.bool).triu(diagonal=1)
        assert (weights[..., above] == 0).all()
        assert (weights[..., ~above] > 0).all()  # nothing below the diagonal is masked
        assert weights[0, 0, 0, 0] == 1  # the first token can only look at itself
