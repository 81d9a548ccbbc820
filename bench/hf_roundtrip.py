"""A `gpt2`-size (124M) export to Hugging Face format and import back: seconds, and whether it is bit-exact.

Random weights, a GPT-2 tokenizer-free run (a 65-character char tokenizer stands in; the weights are what is
timed). Target (issue 5): bit-exact and under 30 s on 2 cores. Usage: python bench/hf_roundtrip.py
"""

import json
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from gptkit.checkpoint import save_weights, write_run_config
from gptkit.config import RunConfig, resolve_config
from gptkit.hf import export_hf, import_hf
from gptkit.model import GPT
from gptkit.tokenizer.char import CharTokenizer


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_config = resolve_config(preset="gpt2").model
        model_config.vocab_size = 50257
        torch.manual_seed(0)
        model = GPT(model_config)
        write_run_config(tmp / "run", RunConfig(model=model_config))
        save_weights(model, tmp / "run" / "model.safetensors")
        CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz").save(tmp / "run" / "tokenizer.json")
        began = time.perf_counter()
        export_hf(tmp / "run", tmp / "hf")
        exported = time.perf_counter()
        import_hf(tmp / "hf", tmp / "back", echo=lambda line: None)
        done = time.perf_counter()
        a, b = load_file(tmp / "run" / "model.safetensors"), load_file(tmp / "back" / "model.safetensors")
        exact = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        print(
            json.dumps(
                {
                    "params": model.num_params(non_embedding=False),
                    "export_s": round(exported - began, 2),
                    "import_s": round(done - exported, 2),
                    "round_trip_s": round(done - began, 2),
                    "bit_exact": exact,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
