"""Masked-LM accuracy with a character tokenizer vs byte-level BPE, with and without whole-word masking.

Four runs on Tiny Shakespeare (the `cpu-baby` model, bidirectional, BERT's 15% / 80-10-10 recipe, the same
steps and block_size 64): char, char + whole-word masking, BPE (vocabulary 1024, GPT-4 pattern, trained
here), BPE + whole-word. Each model is then scored on the val split under both kinds of masking (a fixed
seed, every val passage): accuracy per masked token and bits per masked character (the loss in bits over
the characters the masked tokens spell, which compares tokenizers fairly). Prints a table and JSON.
About 5 minutes on 2 CPU cores. Usage: python experiments/mlm_char_vs_bpe.py [--steps 1500] [--out DIR]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from gptkit.config import DataSource, resolve_config
from gptkit.data.prepare import prepare
from gptkit.data.sources import BUNDLED
from gptkit.evaluate_mlm import evaluate_masked
from gptkit.run import load_run
from gptkit.tokenizer.bpe_train import train_bpe
from gptkit.train.loop import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--bpe-vocab", type=int, default=1024)
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temp folder)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="gptkit-mlm-"))
    root.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()

    tokenizer = train_bpe([BUNDLED["shakespeare"]], args.bpe_vocab, pattern="gpt4", progress=False)
    tokenizer.save(root / "bpe.json")
    data = {"char": root / "data-char", "bpe": root / "data-bpe"}
    prepare(["shakespeare"], data["char"], tokenizer="char")
    prepare(["shakespeare"], data["bpe"], tokenizer=str(root / "bpe.json"))

    rows = []
    for kind in ("char", "bpe"):
        for whole_word in (False, True):
            name = f"{kind}{'-wwm' if whole_word else ''}"
            overrides = [
                "train.objective=mlm",
                "model.causal=false",
                f"train.mlm_whole_word={str(whole_word).lower()}",
                f"train.max_iters={args.steps}",
                f"train.eval_interval={args.steps}",
            ]
            config = resolve_config(preset="cpu-baby", overrides=overrides)
            config.data = [DataSource(path=str(data[kind]))]
            train(config, root / name, overwrite=True, echo=lambda line: None, progress=False)
            run = load_run(root / name, device="cpu")
            row = {"run": name, "tokenizer": kind, "trained_whole_word": whole_word}
            for eval_whole_word in (False, True):
                result = evaluate_masked(run, data[kind], whole_word=eval_whole_word)
                key = "eval_words" if eval_whole_word else "eval_tokens"
                row[key] = {
                    "accuracy": round(result.accuracy, 4),
                    "bits_per_char": round(result.bits_per_character, 4),
                    "masked_tokens": result.selected_tokens,
                    "chars_per_masked_token": round(result.selected_characters / result.selected_tokens, 3),
                }
            rows.append(row)
            print(f"{name}: done ({time.perf_counter() - began:.0f} s)", flush=True)

    print()
    print(
        "| run | masking in training | accuracy, token masking | bits/char, token masking "
        "| accuracy, whole-word masking | bits/char, whole-word masking | chars per token |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        t, w = r["eval_tokens"], r["eval_words"]
        print(
            f"| {r['tokenizer']} | {'whole words' if r['trained_whole_word'] else 'tokens'} | {t['accuracy']:.1%} | "
            f"{t['bits_per_char']:.3f} | {w['accuracy']:.1%} | {w['bits_per_char']:.3f} | "
            f"{t['chars_per_masked_token']} |"
        )
    print()
    print(
        json.dumps(
            {
                "steps": args.steps,
                "bpe_vocab": args.bpe_vocab,
                "seconds": round(time.perf_counter() - began),
                "runs": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
