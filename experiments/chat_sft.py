"""Chat fine-tuning on a CPU: a Shakespeare model learns two tasks as a chat, and forgets Shakespeare unless mixed.

1. One char vocabulary covers both datasets: Tiny Shakespeare's characters plus the tasks' (digits, '+').
2. Pretrain a `cpu-baby` model on Tiny Shakespeare.
3. Make synthetic conversations with gptkit's own generator: "what is 23+58?" -> "81" and "reverse: spring"
   -> "gnirps" (words from Tiny Shakespeare); held-out prompts never appear in training.
4. Fine-tune (`--preset sft`, loss on the replies only): in full on the conversations alone, and with 20% of
   each batch drawn from Shakespeare again (mixing, the remedy for forgetting that `gptkit forgetting`
   measures); and with LoRA r=8 (the base frozen) on the conversations alone, adapting the attention's
   matrices, then every matrix and the head.
5. Score each model: exact-match accuracy of greedy replies (`run.chat`) on the held-out prompts, per task,
   and the Shakespeare val loss; the pretrained model scores before fine-tuning.
Prints a table, writes results.json and chat_sft.png into --out. About 11 minutes on 2 idle CPU cores.
Usage: python experiments/chat_sft.py [--pretrain-steps 2000] [--sft-steps 1500] [--out DIR]
"""

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import gptkit
from gptkit.data.chat import prepare_chat
from gptkit.data.prepare import prepare
from gptkit.evaluate import evaluate_dataset
from gptkit.sources import BUNDLED
from gptkit.tokenizer.char import CharTokenizer
from gptkit.train.loop import train as train_run
from gptkit.train.settings import run_settings

TASKS = ("addition", "reversal")
LORA_RUNS = {"LoRA attention": ("lora", "qkv,proj"), "LoRA all": ("lora-all", "qkv,proj,mlp,head")}


def conversation(task: str, rng: random.Random, words: list[str]) -> tuple[str, str]:
    if task == "addition":
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        return f"what is {a}+{b}?", str(a + b)
    word = rng.choice(words)
    return f"reverse: {word}", word[::-1]


def make_tasks(count: int, held_out: int, seed: int = 0) -> tuple[list, dict]:
    """`count` training conversations (half each task) and `held_out` unseen prompts per task."""
    text = BUNDLED["shakespeare"].read_text(encoding="utf-8")
    words = sorted({w.lower() for w in text.split() if w.isalpha() and 3 <= len(w) <= 7})
    rng = random.Random(seed)
    tests = {task: {} for task in TASKS}
    for task in TASKS:
        while len(tests[task]) < held_out:
            question, answer = conversation(task, rng, words)
            tests[task][question] = answer
    train = []
    while len(train) < count:
        question, answer = conversation(TASKS[len(train) % 2], rng, words)
        if question not in tests["addition"] and question not in tests["reversal"]:
            train.append((question, answer))
    return train, tests


def reply(run, question: str) -> str:
    """The greedy answer: a chat model's reply; a text model's continuation of the question's line (it has no
    chat tokens, so this is the fairest way to ask it)."""
    if run.is_chat:
        return run.chat([{"role": "user", "content": question}], max_new_tokens=12, temperature=0).strip()
    return run.generate(question + "\n", max_new_tokens=12, temperature=0).split("\n")[0].strip()


def exact_match(run, tests: dict) -> dict:
    """The share of held-out prompts whose greedy answer is exactly right, per task."""
    return {task: sum(reply(run, q) == a for q, a in pairs.items()) / len(pairs) for task, pairs in tests.items()}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.2))
    width = 0.38
    for i, task in enumerate(TASKS):
        values = [100 * results[n]["exact_match"][task] for n in names]
        left.bar([x + (i - 0.5) * width for x in range(len(names))], values, width, label=task)
    left.set_xticks(range(len(names)), [n.replace(" + ", "\n+ ").replace("LoRA ", "LoRA\n") for n in names])
    left.set_ylabel("exact match on held-out prompts (%)")
    left.set_ylim(0, 100)
    left.legend()
    right.bar(range(len(names)), [results[n]["shakespeare_val_loss"] for n in names], color="#777")
    right.set_xticks(range(len(names)), [n.replace(" + ", "\n+ ").replace("LoRA ", "LoRA\n") for n in names])
    right.set_ylabel("Tiny Shakespeare val loss")
    fig.suptitle("cpu-baby: pretrained on Shakespeare, then chat fine-tuned (gptkit experiments/chat_sft.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-steps", type=int, default=2000)
    parser.add_argument("--sft-steps", type=int, default=1500)
    parser.add_argument("--conversations", type=int, default=20000)
    parser.add_argument("--held-out", type=int, default=200)
    parser.add_argument("--mix", type=float, default=0.2, help="share of Shakespeare in the mixed fine-tuning")
    parser.add_argument("--lora-r", type=int, default=8, help="rank of the LoRA runs' adapters")
    parser.add_argument("--lora-lr", type=float, default=1e-3, help="the LoRA runs' peak LR (full: sft's 3e-4)")
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temp folder)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="gptkit-sft-"))
    root.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()

    train_pairs, tests = make_tasks(args.conversations, args.held_out)
    with open(root / "conversations.jsonl", "w", encoding="utf-8") as f:
        for question, answer in train_pairs:
            messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            f.write(json.dumps({"messages": messages}) + "\n")
    shakespeare = BUNDLED["shakespeare"].read_text(encoding="utf-8")
    CharTokenizer.from_text(shakespeare + "0123456789+?:").save(root / "vocab.json")  # one vocabulary for both
    prepare(["shakespeare"], root / "data-text", tokenizer=str(root / "vocab.json"))
    gptkit.train(
        root / "base", data=root / "data-text", preset="cpu-baby", overrides=[f"train.max_iters={args.pretrain_steps}"]
    )
    prepare_chat([root / "conversations.jsonl"], root / "data-chat", tokenizer=root / "base", val_fraction=0.05)
    # Shakespeare again, with the chat tokenizer (the same ids plus the chat tokens): to mix in, and to score on
    prepare(["shakespeare"], root / "data-text-chat", tokenizer=str(root / "data-chat" / "tokenizer.json"))

    sft = [f"train.max_iters={args.sft_steps}", "train.eval_interval=500"]
    seconds = {}
    began_sft = time.perf_counter()
    gptkit.train(root / "sft", data=root / "data-chat", init_from=root / "base", preset="sft", overrides=sft)
    seconds["sft"] = time.perf_counter() - began_sft
    # LoRA: the base stays frozen; adapters (and the two chat tokens' rows) train, with a higher LR, as is usual
    for run_name, targets in LORA_RUNS.values():
        lora = [*sft, f"lora.r={args.lora_r}", f"lora.targets={targets}", f"train.lr={args.lora_lr}"]
        began_lora = time.perf_counter()
        gptkit.train(root / run_name, data=root / "data-chat", init_from=root / "base", preset="sft", overrides=lora)
        seconds[run_name] = time.perf_counter() - began_lora
    toml = root / "mixed.toml"
    toml.write_text(
        f'[[data]]\npath = "{root / "data-chat"}"\nweight = {1 - args.mix}\n'
        f'[[data]]\npath = "{root / "data-text-chat"}"\nweight = {args.mix}\n'
    )
    config = run_settings(root / "sft-mixed", preset="sft", toml_path=toml, overrides=sft, init_from=root / "base")
    began_mixed = time.perf_counter()
    train_run(config, root / "sft-mixed", init_from=root / "base")
    seconds["sft-mixed"] = time.perf_counter() - began_mixed

    results = {}
    for name, run_dir, text_data in (
        ("pretrained", "base", "data-text"),
        ("fine-tuned", "sft", "data-text-chat"),
        ("fine-tuned + 20% text", "sft-mixed", "data-text-chat"),
        *((name, run_name, "data-text-chat") for name, (run_name, _) in LORA_RUNS.items()),
    ):
        run = gptkit.load(root / run_dir, device="cpu")
        scores = exact_match(run, tests)
        loss = evaluate_dataset(run, root / text_data).loss
        results[name] = {"exact_match": scores, "shakespeare_val_loss": round(loss, 4)}
        if run_dir in seconds:
            results[name]["fine_tune_seconds"] = round(seconds[run_dir], 1)
    plot(results, root / "chat_sft.png")
    summary = {"settings": vars(args), "minutes": round((time.perf_counter() - began) / 60, 1), "results": results}
    (root / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"{'model':<24} {'addition':>9} {'reversal':>9} {'Shakespeare val loss':>21}")
    for name, r in results.items():
        e = r["exact_match"]
        print(f"{name:<24} {e['addition']:>9.1%} {e['reversal']:>9.1%} {r['shakespeare_val_loss']:>21.4f}")
    print(json.dumps(summary))
    print(f"wrote {root / 'results.json'} and {root / 'chat_sft.png'}")


if __name__ == "__main__":
    main()
