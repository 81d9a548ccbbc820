"""Generation speed, as one JSON object: new tokens/s with and without the KV cache, and beside Hugging Face.

Models: `cpu-baby` (0.8M parameters, 65-token vocabulary) and `gpt2` (124M, 50,257 tokens), random
weights, float32, batch 1 and 8, greedy. `kv_speedup_gpt2_512` is cached vs recompute tokens/s for 512 new
tokens on `gpt2`. `vs_hf` runs gptkit's public API (`Run.generate_ids`) and `transformers`' `generate` on the
same weights (our model converted to GPT2LMHeadModel), greedy, the same new tokens, alternating in this
process: both tokens/s and their ratio, and the same for gptkit with int8 weights (`quantize="int8"`).
The machine is recorded (`bench/machine.py`).
Usage: python bench/generate_speed.py [--quick]
"""

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
from machine import machine

from gptkit.config import RunConfig, resolve_config
from gptkit.generate import generate_tokens
from gptkit.model import GPT
from gptkit.quantize import quantize_model


def build(preset: str, vocab_size: int) -> GPT:
    config = resolve_config(preset=preset).model
    config.vocab_size = vocab_size
    torch.manual_seed(0)
    return GPT(config).eval()


def tokens_per_s(model: GPT, batch: int, prompt_len: int, new_tokens: int, use_cache: bool) -> float:
    prompt = torch.randint(0, model.config.vocab_size, (batch, prompt_len))
    list(generate_tokens(model, prompt, 2, temperature=0, use_cache=use_cache))  # warm up
    began = time.perf_counter()
    for _ in generate_tokens(model, prompt, new_tokens, temperature=0, use_cache=use_cache):
        pass
    return batch * new_tokens / (time.perf_counter() - began)


def versus_hf(model: GPT, batch: int, new_tokens: int, rounds: int) -> dict:
    """tokens/s of `Run.generate_ids` and of transformers' `generate` on the same weights, alternating rounds."""
    from transformers import GPT2LMHeadModel

    from gptkit.hf.convert import hf_architecture, hf_config, to_hf_state
    from gptkit.run import Run

    arch = hf_architecture(model.config)
    hf = GPT2LMHeadModel(hf_config(model.config, arch, None)).eval()
    missing, unexpected = hf.load_state_dict(to_hf_state(model, arch), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)  # the tied head only
    cpu = torch.device("cpu")
    run = Run(Path("."), model, None, RunConfig(model=model.config), cpu)
    int8 = Run(Path("."), quantize_model(copy.deepcopy(model), "int8", cpu), None, RunConfig(model=model.config), cpu)
    prompt = torch.randint(0, model.config.vocab_size, (batch, 16))
    mask = torch.ones_like(prompt)

    def ours() -> None:
        run.generate_ids(prompt, new_tokens, temperature=0)

    def ours_int8() -> None:
        int8.generate_ids(prompt, new_tokens, temperature=0)

    def theirs() -> None:
        hf.generate(
            prompt,
            attention_mask=mask,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )

    same = run.generate_ids(prompt, 8, temperature=0)  # the same weights, so the same greedy tokens
    hf_ids = hf.generate(prompt, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
    assert torch.equal(same, hf_ids[:, prompt.size(1) :]), "the converted model does not match ours"
    agree = (int8.generate_ids(prompt, 8, temperature=0) == same).float().mean().item()
    times: dict = {"gptkit": [], "gptkit_int8": [], "hf": []}
    sides = (("gptkit", ours), ("gptkit_int8", ours_int8), ("hf", theirs))
    for repeat in range(rounds):
        for name, generate in sides[:: 1 if repeat % 2 == 0 else -1]:
            began = time.perf_counter()
            generate()
            times[name].append(time.perf_counter() - began)
    rates = {name: batch * new_tokens / statistics.median(t) for name, t in times.items()}
    return {
        "gptkit_tok_s": round(rates["gptkit"], 1),
        "gptkit_int8_tok_s": round(rates["gptkit_int8"], 1),
        "hf_tok_s": round(rates["hf"], 1),
        "ratio": round(rates["gptkit"] / rates["hf"], 2),
        "int8_ratio": round(rates["gptkit_int8"] / rates["hf"], 2),
        "int8_greedy_tokens_as_float32": agree,  # of the first 8 (random weights: near-ties are common)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens (a smoke test, not a measurement)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    result: dict = {"threads": torch.get_num_threads()}
    cases = [("cpu-baby", 65, 200 if not args.quick else 20), ("gpt2", 50257, 64 if not args.quick else 4)]
    for preset, vocab, new in cases:
        model = build(preset, vocab)
        for batch in (1, 8):
            for use_cache in (True, False):
                key = f"{preset}_b{batch}_{'cache' if use_cache else 'nocache'}_tok_s"
                prompt_len = min(16, model.config.block_size - new) if preset == "cpu-baby" else 16
                result[key] = round(tokens_per_s(model, batch, max(prompt_len, 1), new, use_cache), 1)
    gpt2 = build("gpt2", 50257)
    new = 512 if not args.quick else 8
    cached = tokens_per_s(gpt2, 1, 16, new, use_cache=True)
    plain = tokens_per_s(gpt2, 1, 16, new, use_cache=False)
    result["gpt2_512_cache_tok_s"] = round(cached, 1)
    result["gpt2_512_nocache_tok_s"] = round(plain, 1)
    result["kv_speedup_gpt2_512"] = round(cached / plain, 2)
    rounds = 5 if not args.quick else 1
    result["vs_hf"] = {
        "cpu-baby_b1": versus_hf(build("cpu-baby", 65), 1, 40 if not args.quick else 4, rounds),
        "cpu-baby_b8": versus_hf(build("cpu-baby", 65), 8, 40 if not args.quick else 4, rounds),
        "gpt2_b1": versus_hf(gpt2, 1, 32 if not args.quick else 4, rounds),
        "gpt2_b8": versus_hf(gpt2, 8, 32 if not args.quick else 4, rounds),
    }
    result["machine"] = machine(torch.device("cpu"))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
