"""The lean decode path (gptkit.decode.DecodeStep) gives exactly GPT.forward's logits, for every architecture
option, with LoRA adapters and int8 layers, and generation falls back to GPT.forward where it must."""

import itertools

import pytest
import torch

from gptkit.config import GPTConfig, LoRAConfig
from gptkit.decode import DecodeStep
from gptkit.generate import generate_tokens
from gptkit.lora import apply_lora
from gptkit.model import GPT, KVCache, recording_attention
from gptkit.quantize import quantize_model

OPTIONS = list(
    itertools.product(["learned", "rope", "none"], ["layernorm", "rmsnorm"], ["gelu", "swiglu", "relu2"], [0, 2])
)


def build(pos="learned", norm="layernorm", mlp="gelu", n_kv_head=0, **kw) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=50, block_size=24, n_layer=2, n_head=4, n_embd=32, pos=pos, norm=norm, mlp=mlp, n_kv_head=n_kv_head
    )
    for key, value in kw.items():
        setattr(config, key, value)
    config.validate()
    model = GPT(config).eval()
    with torch.no_grad():  # lively weights: logits far from uniform, biases not zero
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    return model


def forward_logits(model: GPT, idx: torch.Tensor, prefill: int) -> list[torch.Tensor]:
    """Logits for the token after each position from `prefill` on, through GPT.forward with a KV cache."""
    cache = KVCache(model.config, idx.size(0), model.config.block_size, "cpu")
    out = [model(idx[:, :prefill], cache=cache, last_only=True)[0][:, -1]]
    out += [model(idx[:, t : t + 1], cache=cache)[0][:, -1] for t in range(prefill, idx.size(1))]
    return out


def lean_logits(model: GPT, idx: torch.Tensor, prefill: int) -> list[torch.Tensor]:
    step = DecodeStep(model)
    cache = KVCache(model.config, idx.size(0), model.config.block_size, "cpu")
    out = [step(idx[:, :prefill], cache)]
    out += [step(idx[:, t : t + 1], cache) for t in range(prefill, idx.size(1))]
    return out


def assert_same(model: GPT, batch: int = 2, prefill: int = 7, atol: float = 0.0) -> None:
    idx = torch.randint(0, model.config.vocab_size, (batch, model.config.block_size))
    with torch.inference_mode():
        expected, got = forward_logits(model, idx, prefill), lean_logits(model, idx, prefill)
    for position, (a, b) in enumerate(zip(expected, got)):
        assert a.shape == b.shape == (batch, model.config.vocab_size)
        exact = torch.equal(a, b) if atol == 0 else torch.allclose(a, b, rtol=0, atol=atol)
        assert exact, f"position {prefill + position}: max diff {(a - b).abs().max()}"


@pytest.mark.parametrize("pos, norm, mlp, n_kv_head", OPTIONS)
def test_decode_step_gives_forward_logits_exactly(pos, norm, mlp, n_kv_head):
    assert_same(build(pos, norm, mlp, n_kv_head))


@pytest.mark.parametrize(
    "options",
    [
        {"qk_norm": True, "pos": "rope", "norm": "rmsnorm"},
        {"logit_softcap": 15.0},
        {"bias": False, "tie_embeddings": False},
        {"qk_norm": True, "bias": False, "norm": "layernorm"},
    ],
)
def test_decode_step_exact_with_more_options(options):
    options = dict(options)
    assert_same(build(options.pop("pos", "learned"), options.pop("norm", "layernorm"), **options))


def test_decode_step_exact_for_one_row_and_a_one_token_prompt():
    assert_same(build("rope", "rmsnorm", "swiglu", 2), batch=1, prefill=1)


def test_decode_step_exact_with_lora_adapters_and_new_rows():
    model = build("learned", "layernorm", "gelu")
    apply_lora(model, LoRAConfig(r=4, targets="qkv,proj,fc,head"), first_new_row=45)
    with torch.no_grad():  # B starts at zero: give the adapters something to add
        for name, param in model.named_parameters():
            if "lora" in name or "new_rows" in name:
                param.add_(torch.randn_like(param) * 0.3)
    model.eval()
    assert DecodeStep.supports(model)
    # GPT.forward hands the head a (B, 1, C) slice of the prompt's rows, which LoRA's extra matmuls take through
    # another kernel than a (B, C) one: the prompt's last logits may differ in the last bit
    assert_same(model, atol=1e-5)


def test_decode_step_exact_with_int8_layers():
    model = quantize_model(build("learned", "layernorm", "gelu"), "int8", torch.device("cpu")).eval()
    assert_same(model)


def test_generation_takes_the_lean_path_and_gives_the_no_cache_tokens(monkeypatch):
    model = build("rope", "rmsnorm", "swiglu", 2)
    calls = []
    original = DecodeStep.__call__
    monkeypatch.setattr(DecodeStep, "__call__", lambda self, ids, cache: calls.append(1) or original(self, ids, cache))
    prompt = torch.randint(0, 50, (2, 5))
    options = dict(temperature=0, repetition_penalty=100.0)  # varied greedy text from a random model
    cached = torch.cat(list(generate_tokens(model, prompt, 40, **options)), dim=1)  # slides past block 24
    assert len(calls) >= 40
    calls.clear()
    plain = torch.cat(list(generate_tokens(model, prompt, 40, use_cache=False, **options)), dim=1)
    assert not calls and torch.equal(cached, plain)
    assert len(set(cached.flatten().tolist())) > 3


def test_generation_falls_back_where_the_lean_path_does_not_apply(monkeypatch):
    model = build()
    monkeypatch.setattr(DecodeStep, "__call__", lambda *a: pytest.fail("the lean path ran"))
    prompt = torch.randint(0, 50, (2, 5))
    mask = torch.ones_like(prompt, dtype=torch.bool)
    mask[0, :2] = False  # a left-padded row
    list(generate_tokens(model, prompt, 3, attention_mask=mask))
    with recording_attention(model) as maps:
        list(generate_tokens(model, prompt, 3))
    assert len(maps) == 2 * 3  # two layers, the prompt and two new tokens: the recorder saw every step
    handle = model.transformer.h[0].mlp.register_forward_hook(lambda *a: None)
    try:
        list(generate_tokens(model, prompt, 3))
    finally:
        handle.remove()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        assert not DecodeStep.supports(model)
    finally:
        handle.remove()
    assert DecodeStep.supports(model)
    assert not DecodeStep.supports(model.train())
    assert not DecodeStep.supports(build(causal=False))  # a masked LM's attention sees both sides


@pytest.mark.parametrize("pos, norm, mlp", [("learned", "layernorm", "gelu"), ("rope", "rmsnorm", "swiglu")])
def test_decode_step_exact_in_bf16_and_under_autocast(pos, norm, mlp):
    assert_same(build(pos, norm, mlp, 2).to(torch.bfloat16))  # attention runs in float32 on a CPU, as in forward
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert_same(build(pos, norm, mlp, 2))


def test_lora_layers_left_in_training_mode_do_not_sample_with_dropout():
    model = build()  # in eval mode; LoRA layers added afterwards start in training mode
    apply_lora(model, LoRAConfig(r=4, dropout=0.5, targets="qkv,proj,fc"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora" in name:
                param.add_(torch.randn_like(param))
    prompt = torch.randint(0, 50, (1, 5))
    runs = {tuple(torch.cat(list(generate_tokens(model, prompt, 12, temperature=0)), 1)[0].tolist()) for _ in range(4)}
    assert len(runs) == 1
