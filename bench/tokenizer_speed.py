"""BPE tokenizer speed beside Hugging Face tokenizers and tiktoken, run in the same process, as JSON.

Training (vocab 4096 and 16384, `<|endoftext|>` special) on Tiny Shakespeare with the GPT-4 pattern, and on a
~10 MB multilingual corpus with the GPT-2 pattern (vocab 4096): Tiny Shakespeare, War and Peace, the two
Korean stories of the test fixtures, and War and Peace written letter for letter in Cyrillic (a stand-in for
Russian: two-byte letters, other words). Each row gives both trainers' seconds, their ratio, and the
compression (UTF-8 bytes per token on the corpus) of both vocabularies. Encoding: MB/s on Tiny Shakespeare
with our tokenizer (default backend and the pure Python one), tiktoken and HF tokenizers, all holding the
same vocabulary (checked to give the same ids). The CPU model, its flags and the thread count are recorded.
Targets (issue 22): training within 3x of HF's time at compression within 1%; encoding within 1.5x of tiktoken.
Usage: python bench/tokenizer_speed.py [--quick] [--corpus FILE ...]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from machine import machine

from gptkit.data.prepare import BUNDLED
from gptkit.tokenizer.bpe_train import train_bpe
from gptkit.tokenizer.hf_json import write_hf_bpe
from gptkit.tokenizer.patterns import PATTERNS

GPT4 = "gpt4"
KOREAN = sorted((Path(__file__).parent.parent / "tests" / "fixtures" / "korean").glob("*.txt"))
CYRILLIC = {**{chr(65 + i): chr(0x410 + i) for i in range(26)}, **{chr(97 + i): chr(0x430 + i) for i in range(26)}}


def multilingual_corpus(path: Path) -> Path:
    """Write the ~10 MB multilingual corpus described above to `path`."""
    war_and_peace = BUNDLED["warandpeace"].read_text(encoding="utf-8")
    parts = [BUNDLED["shakespeare"].read_text(encoding="utf-8"), war_and_peace]
    parts += [korean.read_text(encoding="utf-8") for korean in KOREAN]
    parts.append(war_and_peace.translate(str.maketrans(CYRILLIC)))
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def hf_train(path: Path, vocab_size: int, pattern: str):
    """Seconds HF tokenizers' BPE trainer takes (byte-level, same pattern and special), and its tokenizer."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PATTERNS[pattern]), behavior="isolated"),
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
    return time.perf_counter() - began, tok


def ours_train(path: Path, vocab_size: int, pattern: str):
    began = time.perf_counter()
    tok = train_bpe([path], vocab_size, pattern=pattern, specials=["<|endoftext|>"], progress=False)
    return time.perf_counter() - began, tok


def training_row(name: str, path: Path, vocab_size: int, pattern: str) -> dict:
    """Both trainers on one corpus (ours first, then HF, in this process) and the compression each reaches."""
    ours_s, ours = ours_train(path, vocab_size, pattern)
    hf_s, hf = hf_train(path, vocab_size, pattern)
    text = path.read_text(encoding="utf-8")
    num_bytes = len(text.encode("utf-8"))
    ours_bpt = num_bytes / len(ours.encode(text))
    hf_bpt = num_bytes / len(hf.encode(text).ids)
    return {
        "corpus": name,
        "mb": round(num_bytes / 1e6, 2),
        "pattern": pattern,
        "vocab_size": vocab_size,
        "ours_s": round(ours_s, 3),
        "hf_s": round(hf_s, 3),
        "ratio": round(ours_s / hf_s, 2),
        "ours_bytes_per_token": round(ours_bpt, 4),
        "hf_bytes_per_token": round(hf_bpt, 4),
        "compression_difference": f"{(ours_bpt / hf_bpt - 1):+.2%}",
    }


def mb_per_s(encode, text: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        encode(text)
        best = min(best, time.perf_counter() - began)
    return len(text.encode("utf-8")) / best / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only Tiny Shakespeare at vocab 4096")
    parser.add_argument("--corpus", nargs="*", default=[], help="more text files to train on (GPT-2 pattern, 4096)")
    args = parser.parse_args()
    small = BUNDLED["shakespeare"]
    text = small.read_text(encoding="utf-8")
    result: dict = {"machine": {**machine(torch.device("cpu")), "cores": len(os.sched_getaffinity(0))}, "training": []}
    with tempfile.TemporaryDirectory() as tmp:
        rows = [("shakespeare", small, 4096, GPT4)]
        if not args.quick:
            rows += [("shakespeare", small, 16384, GPT4)]
            rows += [("multilingual", multilingual_corpus(Path(tmp) / "multilingual.txt"), 4096, "gpt2")]
        rows += [(Path(c).name, Path(c), 4096, "gpt2") for c in args.corpus]
        for name, path, vocab_size, pattern in rows:
            result["training"].append(training_row(name, path, vocab_size, pattern))

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
