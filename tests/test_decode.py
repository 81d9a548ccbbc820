"""The lean decode path (gptkit.decode.DecodeStep) gives exactly GPT.forward's logits, for every architecture
option, with LoRA adapters and int8 layers, and generation falls back to GPT.forward where it must."""

import concurrent.futures
import copy
import gc
import itertools
import weakref

import pytest
import torch
import torch.nn as nn

import gptkit.decode as decode_module
import gptkit.generate as generate_module
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


def test_a_token_s_logits_survive_the_next_token_and_interleaved_generations_do_not_mix():
    """The one-token path reuses its tensors from token to token: what it hands out must not change later, and
    two generations of one model, advanced in turn, give what each gives alone."""
    model = build("learned", "layernorm", "gelu")
    step = DecodeStep(model, batch_size=2)  # its tensors made for 2 rows now
    cache = KVCache(model.config, 2, model.config.block_size, "cpu")
    idx = torch.randint(0, 50, (2, 9))
    with torch.inference_mode():
        step(idx[:, :7], cache)
        first = step(idx[:, 7:8], cache)
        kept = first.clone()
        step(idx[:, 8:9], cache)
        assert torch.equal(first, kept)
        one_row = DecodeStep(model, batch_size=2)  # then called with 1 row: remade for it, still exact
        row_cache = KVCache(model.config, 1, model.config.block_size, "cpu")
        one_row(idx[:1, :7], row_cache)
        assert torch.equal(one_row(idx[:1, 7:8], row_cache), forward_logits(model, idx[:1, :8], 7)[1])
    prompts = torch.randint(0, 50, (2, 1, 4))
    options = dict(temperature=0, repetition_penalty=100.0)
    alone = [torch.cat(list(generate_tokens(model, p, 12, **options)), 1) for p in prompts]
    streams = [generate_tokens(model, p, 12, **options) for p in prompts]
    turns = [[], []]
    for _ in range(12):
        for row, stream in enumerate(streams):
            turns[row].append(next(stream))
    assert all(torch.equal(torch.cat(t, 1), a) for t, a in zip(turns, alone))


def greedy(model: GPT, prompt: torch.Tensor, new: int = 10) -> torch.Tensor:
    return torch.cat(list(generate_tokens(model, prompt, new, temperature=0, repetition_penalty=100.0)), dim=1)


def sampled(model: GPT, prompt: torch.Tensor) -> torch.Tensor:
    """Tokens drawn with a fixed seed: any change in the logits (even one keeping their order) shows."""
    return torch.cat(list(generate_tokens(model, prompt, 20, temperature=1.0, seed=0)), dim=1)


def test_a_kept_step_follows_the_model_s_weights_and_layers():
    """A small model's decode step is kept between generations: whatever changed since (weights in place, a
    new weight, a replaced layer, another dtype), the tokens are those of a model that never generated."""
    model = build("rope", "rmsnorm", "swiglu", 2)
    prompt = torch.randint(0, 50, (1, 5))
    assert torch.equal(sampled(model, prompt), sampled(copy.deepcopy(model), prompt))
    changes = [
        lambda m: m.transformer.h[0].mlp.c_fc.weight.mul_(-1.5),  # in place
        lambda m: setattr(m.transformer.h[1].attn.c_proj, "weight", nn.Parameter(torch.randn(32, 32))),
        lambda m: setattr(m.transformer.h[0].mlp, "c_proj", nn.Linear(64 * 2, 32, bias=False)),
        lambda m: setattr(m.config, "logit_softcap", 2.0),  # the step reads it once
        lambda m: m.to(torch.bfloat16),
    ]
    for change in changes:
        torch.manual_seed(1)
        with torch.no_grad():
            change(model)
        fresh = copy.deepcopy(model)
        assert torch.equal(sampled(model, prompt), sampled(fresh, prompt))


def test_a_kept_step_does_not_keep_its_model_alive_and_serves_one_thread_at_a_time():
    model = build()
    prompts = torch.randint(0, 50, (4, 1, 5))
    alone = [greedy(model, p, 16) for p in prompts]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # the same model, four threads at once
        together = list(pool.map(greedy, [model] * 4, prompts, [16] * 4))
    assert all(torch.equal(a, b) for a, b in zip(alone, together))
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


def test_a_small_model_s_step_is_made_once_for_generations_one_after_another(monkeypatch):
    model, prompt = build(), torch.randint(0, 50, (1, 5))
    made = []
    original = DecodeStep.__init__
    monkeypatch.setattr(DecodeStep, "__init__", lambda self, *a: made.append(1) or original(self, *a))
    for _ in range(3):
        greedy(model, prompt)
    assert len(made) == 1
    first, second = generate_tokens(model, prompt, 3), generate_tokens(model, prompt, 3)
    next(first), next(second)  # two generations at once: the second gets its own step
    assert len(made) == 2
    first.close(), second.close()
    greedy(model, prompt)
    assert len(made) == 2
    with monkeypatch.context() as patched:  # a generation that fails at its first token...
        patched.setattr(generate_module, "sample_next", lambda *a: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            greedy(model, prompt)
    greedy(model, prompt)  # ...leaves the step it took free again
    assert len(made) == 2
    other = build()  # its kept step has no cache yet
    with monkeypatch.context() as patched:  # so does one whose cache cannot be made
        patched.setattr(decode_module, "KVCache", lambda *a: (_ for _ in ()).throw(MemoryError()))
        with pytest.raises(MemoryError):
            greedy(other, prompt)
    assert len(made) == 3
    greedy(other, prompt)
    assert len(made) == 3


def test_the_token_path_with_autograd_on_and_a_kept_step_letting_pytorch_swap_the_weights():
    model = build("rope", "rmsnorm", "swiglu", 2)
    idx = torch.randint(0, 50, (1, 8))
    step, cache = DecodeStep(model), KVCache(model.config, 1, model.config.block_size, "cpu")
    with torch.enable_grad():  # no out= ops under autograd: the token takes the path of any T
        step(idx[:, :7], cache)
        got = step(idx[:, 7:8], cache)
    with torch.no_grad():
        assert torch.equal(got, forward_logits(model, idx, 7)[1])
    del got, step, cache  # their autograd graph holds the weights
    greedy(model, idx)  # a kept step now holds the model's weights...
    swapping = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        model.to(torch.float64)  # ...without blocking a conversion that swaps them
    finally:
        torch.__future__.set_swap_module_params_on_conversion(swapping)
    assert torch.equal(greedy(model, idx), greedy(copy.deepcopy(model), idx))
