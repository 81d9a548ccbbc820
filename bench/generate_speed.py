"""Generation speed, as one JSON object: new tokens/s with and without the KV cache.

Models: `cpu-baby` (0.8M parameters, 65-token vocabulary) and `gpt2` (124M, 50,257 tokens), random
weights, float32, batch 1 and 8, greedy. `kv_speedup_gpt2_512` is cached vs recompute tokens/s for 512 new
tokens on `gpt2`. No ratio against Hugging Face: a peer counts only when it runs in this same script, on this
machine (issue 22 adds it).
Usage: python bench/generate_speed.py [--quick]
"""

import argparse
import json
import time

import torch

from gptkit.config import resolve_config
from gptkit.generate import generate_tokens
from gptkit.model import GPT


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
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
