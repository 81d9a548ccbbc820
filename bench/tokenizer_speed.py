"""BPE tokenizer speed beside Hugging Face tokenizers and tiktoken, run in the same process, as JSON.

Training seconds for vocab 4096 and 16384 (GPT-4 pattern, `<|endoftext|>` special) on Tiny Shakespeare and on
a 20x concatenation of it; encode MB/s on Tiny Shakespeare with our tokenizer (default backend and the pure
Python one), tiktoken and HF tokenizers, all holding the same vocabulary (and checked to give the same ids).
Targets (issue 3): training within 3x of HF's time, encoding within 1.5x of tiktoken.
Usage: python bench/tokenizer_speed.py [--repeat 20] [--quick]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from gptkit.data.prepare import BUNDLED
from gptkit.tokenizer.bpe_train import train_bpe
from gptkit.tokenizer.hf_json import write_hf_bpe

GPT4 = "gpt4"


def hf_train_seconds(path: Path, vocab_size: int) -> float:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    from gptkit.tokenizer.patterns import GPT4_PATTERN

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    began = time.perf_counter()
    tok.train([str(path)], trainer=trainer)
    return time.perf_counter() - began


def ours_train_seconds(path: Path, vocab_size: int):
    began = time.perf_counter()
    tok = train_bpe([path], vocab_size, pattern=GPT4, specials=["<|endoftext|>"], progress=False)
    return time.perf_counter() - began, tok


def mb_per_s(encode, text: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        encode(text)
        best = min(best, time.perf_counter() - began)
    return len(text.encode("utf-8")) / best / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="copies of Tiny Shakespeare in the big corpus")
    parser.add_argument("--quick", action="store_true", help="skip the big corpus")
    args = parser.parse_args()
    small = BUNDLED["shakespeare"]
    text = small.read_text(encoding="utf-8")
    result: dict = {"training": []}
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.txt"
        big.write_text(text * args.repeat, encoding="utf-8")
        corpora = [("shakespeare", small)] + ([] if args.quick else [(f"shakespeare_x{args.repeat}", big)])
        for name, path in corpora:
            for vocab_size in (4096, 16384):
                ours, tok = ours_train_seconds(path, vocab_size)
                hf = hf_train_seconds(path, vocab_size)
                result["training"].append(
                    {
                        "corpus": name,
                        "vocab_size": vocab_size,
                        "ours_s": round(ours, 3),
                        "hf_s": round(hf, 3),
                        "ratio": round(ours / hf, 2),
                    }
                )

        tok = train_bpe([small], 16384, pattern=GPT4, specials=["<|endoftext|>"], progress=False)
        from tokenizers import Tokenizer

        write_hf_bpe(tok, tmp)
        hf_tok = Tokenizer.from_file(str(Path(tmp) / "tokenizer.json"))
        reference = tok._tiktoken_encoding()
        ids = tok.encode(text)
        assert ids == tok.encode_python(text) == reference.encode_ordinary(text) == hf_tok.encode(text).ids
        speeds = {
            "ours_mb_s": mb_per_s(tok.encode, text),
            "ours_python_backend_mb_s": mb_per_s(lambda t: (tok._cache.clear(), tok.encode_python(t)), text),
            "tiktoken_mb_s": mb_per_s(reference.encode_ordinary, text),
            "hf_tokenizers_mb_s": mb_per_s(lambda t: hf_tok.encode(t).ids, text),
        }
        result["encoding"] = {k: round(v, 2) for k, v in speeds.items()}
        result["encoding"]["ours_vs_tiktoken"] = round(speeds["tiktoken_mb_s"] / speeds["ours_mb_s"], 2)
        result["encoding"]["backend"] = tok.backend
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
