"""Model options (RoPE, RMSNorm, SwiGLU, ReLU^2, QK-norm, GQA, untied head, no bias): textbook formulas,
KV-cache decoding equal to a full recompute for every combination, and batches equal to single prompts."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from gptkit.config import GPTConfig
from gptkit.generate import generate_tokens
from gptkit.model import GPT, KVCache, RMSNorm, SwiGLU, apply_rope, rope_tables

OPTIONS = list(
    itertools.product(
        ["learned", "rope", "none"], ["layernorm", "rmsnorm"], ["gelu", "swiglu", "relu2"], [False, True], [0, 2]
    )
)


def build(pos="learned", norm="layernorm", mlp="gelu", qk_norm=False, n_kv_head=0, **kw) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=50,
        block_size=24,
        n_layer=2,
        n_head=4,
        n_embd=32,
        pos=pos,
        norm=norm,
        mlp=mlp,
        qk_norm=qk_norm,
        n_kv_head=n_kv_head,
        **kw,
    )
    config.validate()
    return GPT(config).eval()


@pytest.mark.parametrize("pos, norm, mlp, qk_norm, n_kv_head", OPTIONS)
def test_kv_cache_logits_equal_a_full_recompute(pos, norm, mlp, qk_norm, n_kv_head):
    model = build(pos, norm, mlp, qk_norm, n_kv_head, tie_embeddings=qk_norm, bias=not qk_norm)
    idx = torch.randint(0, 50, (2, 20))
    full, _ = model(idx)  # (2, 20, 50)
    cache = KVCache(model.config, 2, 24, "cpu")
    steps = [model(idx[:, :7], cache=cache)[0]]  # prefill 7, then one token at a time
    steps += [model(idx[:, t : t + 1], cache=cache)[0] for t in range(7, 20)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def lively(model: GPT) -> GPT:
    """Bigger random weights, so greedy generation varies from token to token (a fresh init repeats itself)."""
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    return model


@pytest.mark.parametrize("pos, norm, mlp, qk_norm, n_kv_head", OPTIONS)
def test_batched_unequal_prompts_equal_each_alone(pos, norm, mlp, qk_norm, n_kv_head):
    model = lively(build(pos, norm, mlp, qk_norm, n_kv_head))
    prompts = [torch.randint(0, 50, (n,)) for n in (3, 9, 6)]
    width = max(len(p) for p in prompts)
    idx = torch.zeros((3, width), dtype=torch.long)
    mask = torch.zeros((3, width), dtype=torch.bool)
    for row, prompt in enumerate(prompts):  # left padding
        idx[row, width - len(prompt) :] = prompt
        mask[row, width - len(prompt) :] = True
    # 9 + 15 new tokens: the padded batch stays inside block_size=24; a strong repetition penalty makes greedy
    # text vary (a random model tends to repeat one token, which would make the comparison empty)
    options = dict(temperature=0, repetition_penalty=100.0)
    for use_cache in (True, False):
        batch = torch.cat(
            list(generate_tokens(model, idx, 15, attention_mask=mask, use_cache=use_cache, **options)), dim=1
        )
        for row, prompt in enumerate(prompts):
            alone = torch.cat(list(generate_tokens(model, prompt[None], 15, use_cache=use_cache, **options)), 1)
            assert torch.equal(batch[row], alone[0]), (use_cache, row)
    assert len(set(batch.flatten().tolist())) > 3  # the test would be empty if the model repeated one token


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_cached_generation_equals_recompute_also_past_the_block_size(pos):
    model = lively(build(pos, "rmsnorm", "swiglu"))
    prompt = torch.randint(0, 50, (2, 5))
    options = dict(temperature=0, repetition_penalty=1.3)
    cached = torch.cat(list(generate_tokens(model, prompt, 70, **options)), 1)  # slides twice (block 24)
    plain = torch.cat(list(generate_tokens(model, prompt, 70, use_cache=False, **options)), 1)
    assert torch.equal(cached, plain) and len(set(cached.flatten().tolist())) > 3


def test_generated_ids_are_ordinary_tensors_and_the_mode_is_restored():
    model = build().train()
    ids = next(generate_tokens(model, torch.zeros((1, 2), dtype=torch.long), 1, temperature=0))
    assert model.training
    ids += 1  # not an inference tensor: in-place works, and it can feed a training step
    model(ids, ids)[1].backward()


def test_rope_depends_only_on_relative_position():
    cos, sin = rope_tables(16, 64, 10000.0)
    q, k = torch.randn(16), torch.randn(16)

    def score(i, j):  # rotated q at position i . rotated k at position j
        rq = apply_rope(q.view(1, 1, 1, 16), cos[i].view(1, 1, 1, 8), sin[i].view(1, 1, 1, 8))
        rk = apply_rope(k.view(1, 1, 1, 16), cos[j].view(1, 1, 1, 8), sin[j].view(1, 1, 1, 8))
        return (rq * rk).sum().item()

    assert score(5, 2) == pytest.approx(score(40, 37), abs=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)
    assert score(3, 3) == pytest.approx((q * k).sum().item(), abs=1e-4)  # same position: plain dot product


def test_a_rope_model_gives_the_same_result_at_a_shifted_position():
    model = build("rope", "rmsnorm", "swiglu", n_kv_head=2)
    idx = torch.randint(0, 50, (1, 10))
    at_zero, _ = model(idx)
    shifted, _ = model(idx, positions=torch.arange(7, 17)[None])  # positions it never saw this sequence at
    assert torch.allclose(at_zero, shifted, atol=1e-4)
    learned = build("learned")
    assert not torch.allclose(learned(idx)[0], learned(idx, positions=torch.arange(7, 17)[None])[0], atol=1e-4)


def test_rmsnorm_and_swiglu_match_their_textbook_formulas():
    x = torch.randn(3, 5, 32)
    norm = RMSNorm(32, eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    assert torch.allclose(norm(x), expected, atol=1e-6)
    # bf16 in (as under autocast): computed in float32, returned in bf16, as close as bf16 can be
    low = norm(x.bfloat16())
    assert low.dtype == torch.bfloat16 and torch.allclose(low.float(), expected, rtol=1e-2, atol=1e-2)
    mlp = SwiGLU(GPTConfig(vocab_size=10, n_embd=32, mlp="swiglu", bias=False))
    gate, up, down = mlp.c_gate.weight, mlp.c_fc.weight, mlp.c_proj.weight
    expected = ((x @ gate.T) * torch.sigmoid(x @ gate.T) * (x @ up.T)) @ down.T
    assert torch.allclose(mlp(x), expected, atol=1e-5)
    assert mlp.c_fc.weight.shape == (128, 32)  # 8/3 * 32 = 85.3, rounded up to a multiple of 64


def test_grouped_query_attention_shares_key_value_heads():
    model = build(n_kv_head=2)
    attn = model.transformer.h[0].attn
    assert attn.c_attn.weight.shape == ((4 + 2 * 2) * 8, 32)
    assert model.num_params(non_embedding=False) < build().num_params(non_embedding=False)


def test_untied_head_and_no_bias():
    model = build(tie_embeddings=False, bias=False)
    assert model.lm_head.weight is not model.transformer.wte.weight
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())
    idx = torch.randint(0, 50, (2, 8))
    assert abs(model(idx, idx)[1].item() - math.log(50)) < 0.1
    assert F.softmax(model(idx)[0], -1).sum(-1).allclose(torch.ones(2, 8))
