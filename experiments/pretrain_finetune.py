"""Can pretraining lower the validation loss? Pretrain on War and Peace, fine-tune on Tiny Shakespeare.

The nanoGPT lecture leaves it as an exercise: "pretrain on a large dataset, then initialise with that model and
fine-tune on a smaller one with fewer steps and a lower learning rate". Here, with `cpu-baby` and one character
vocabulary for both books (War and Peace's and Tiny Shakespeare's characters), per seed:

- scratch:     Tiny Shakespeare alone for --finetune-steps (the same Shakespeare steps as the fine-tune)
- pretrained:  War and Peace for --pretrain-steps, then Tiny Shakespeare for --finetune-steps, --finetune-lr
- same compute: Tiny Shakespeare alone for --pretrain-steps + --finetune-steps (the fine-tune's total steps)

Each run evaluates the Tiny Shakespeare val split every --eval-interval steps (fixed batches) and, at the end,
on the whole val split (`gptkit eval`'s loss). Writes results.json and pretrain_finetune.png into --out and
prints a table. 16,500 cpu-baby steps for 3 seeds (about 60 ms each on 2 idle CPU cores) plus evaluations.
Usage: python experiments/pretrain_finetune.py [--seeds 1 2 3] [--pretrain-steps 2000] [--finetune-steps 500]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import gptkit
from gptkit.data.prepare import prepare
from gptkit.evaluate import evaluate_dataset
from gptkit.sources import BUNDLED
from gptkit.tokenizer.char import CharTokenizer
from gptkit.train.metrics import read_metrics

ARMS = ("scratch", "pretrained", "same compute")


def val_curve(run_dir: Path, offset: int = 0) -> list[tuple[int, float]]:
    """(step, Tiny Shakespeare val loss) of a run's evals; `offset` steps of pretraining counted before them."""
    return [(offset + r["step"], r["val_loss"]) for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "eval"]


def run_seed(root: Path, seed: int, args) -> dict:
    common = [f"train.seed={seed}", f"train.eval_interval={args.eval_interval}", "train.eval_iters=20"]
    shakes, tolstoy = root / "data-shakespeare", root / "data-warandpeace"
    out = {}
    began = time.perf_counter()
    steps = [f"train.max_iters={args.finetune_steps}", "train.warmup_iters=50"]
    gptkit.train(root / f"scratch-{seed}", data=shakes, preset="cpu-baby", overrides=[*common, *steps])
    out["scratch"] = {"seconds": time.perf_counter() - began, "curve": val_curve(root / f"scratch-{seed}")}

    began = time.perf_counter()
    pretrain = [*common, f"train.max_iters={args.pretrain_steps}"]
    gptkit.train(root / f"warandpeace-{seed}", data=tolstoy, preset="cpu-baby", overrides=pretrain)
    finetune = [*common, *steps, f"train.lr={args.finetune_lr}"]
    gptkit.train(
        root / f"pretrained-{seed}",
        data=shakes,
        preset="cpu-baby",
        overrides=finetune,
        init_from=root / f"warandpeace-{seed}",
    )
    out["pretrained"] = {
        "seconds": time.perf_counter() - began,
        "curve": val_curve(root / f"pretrained-{seed}"),
        "curve_by_total_steps": val_curve(root / f"pretrained-{seed}", offset=args.pretrain_steps),
    }

    began = time.perf_counter()
    total = [*common, f"train.max_iters={args.pretrain_steps + args.finetune_steps}"]
    gptkit.train(root / f"same-compute-{seed}", data=shakes, preset="cpu-baby", overrides=total)
    out["same compute"] = {"seconds": time.perf_counter() - began, "curve": val_curve(root / f"same-compute-{seed}")}

    for arm, folder in zip(ARMS, ("scratch", "pretrained", "same-compute")):
        run = gptkit.load(root / f"{folder}-{seed}", device="cpu")
        out[arm]["final_val_loss"] = evaluate_dataset(run, shakes).loss
    return out


def plot(per_seed: dict, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    colors = {"scratch": "#1f77b4", "pretrained": "#d62728", "same compute": "#2ca02c"}
    for seed, arms in per_seed.items():
        label = seed == min(per_seed)
        for arm, color in colors.items():
            if arm != "same compute":
                steps, losses = zip(*arms[arm]["curve"])
                left.plot(steps, losses, color=color, alpha=0.7, label=arm if label else None)
            key = "curve_by_total_steps" if arm == "pretrained" else "curve"
            steps, losses = zip(*arms[arm][key])
            right.plot(steps, losses, color=color, alpha=0.7, label=arm if label else None)
    right.axvline(args.pretrain_steps, color="#999", linestyle=":", linewidth=1)
    left.set_title(f"the same {args.finetune_steps} Tiny Shakespeare steps")
    left.set_xlabel("Tiny Shakespeare steps")
    right.set_title(f"the same compute: {args.pretrain_steps} War and Peace steps first (dotted), or Shakespeare")
    right.set_xlabel("total training steps")
    left.set_ylabel("Tiny Shakespeare val loss")
    finals = [loss for arms in per_seed.values() for arm in arms.values() for _, loss in arm["curve"][-1:]]
    if max(finals) < 2.8:  # the first evals (about 4.2, an untrained model) would flatten the rest
        left.set_ylim(top=3.0)
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(f"cpu-baby, {len(per_seed)} seeds: pretrain on War and Peace, then fine-tune on Tiny Shakespeare")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pretrain-steps", type=int, default=2000)
    parser.add_argument("--finetune-steps", type=int, default=500)
    parser.add_argument("--finetune-lr", type=float, default=3e-4, help="the fine-tune's peak LR (cpu-baby: 1e-3)")
    parser.add_argument("--eval-interval", type=int, default=50)
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temp folder)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="gptkit-pretrain-"))
    root.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    books = BUNDLED["shakespeare"].read_text(encoding="utf-8") + BUNDLED["warandpeace"].read_text(encoding="utf-8")
    CharTokenizer.from_text(books).save(root / "vocab.json")  # one vocabulary: ids mean the same in both
    prepare(["shakespeare"], root / "data-shakespeare", tokenizer=str(root / "vocab.json"))
    prepare(["warandpeace"], root / "data-warandpeace", tokenizer=str(root / "vocab.json"))

    per_seed = {seed: run_seed(root, seed, args) for seed in args.seeds}
    table = {}
    for arm in ARMS:
        finals = [per_seed[s][arm]["final_val_loss"] for s in args.seeds]
        table[arm] = {
            "mean_final_val_loss": round(statistics.mean(finals), 4),
            "stdev": round(statistics.stdev(finals), 4) if len(finals) > 1 else 0.0,
            "per_seed": [round(x, 4) for x in finals],
            "mean_seconds": round(statistics.mean(per_seed[s][arm]["seconds"] for s in args.seeds), 1),
        }
    plot(per_seed, args, root / "pretrain_finetune.png")
    summary = {
        "settings": vars(args),
        "minutes": round((time.perf_counter() - began) / 60, 1),
        "table": table,
        "curves": {str(s): {arm: v["curve"] for arm, v in arms.items()} for s, arms in per_seed.items()},
    }
    (root / "results.json").write_text(json.dumps(summary, indent=1))
    print(f"{'arm':<14} {'Shakespeare steps':>18} {'total steps':>12} {'final val loss':>20} {'seconds':>8}")
    steps = {
        "scratch": (args.finetune_steps, args.finetune_steps),
        "pretrained": (args.finetune_steps, args.pretrain_steps + args.finetune_steps),
        "same compute": (args.pretrain_steps + args.finetune_steps,) * 2,
    }
    for arm, row in table.items():
        loss = f"{row['mean_final_val_loss']:.4f} ± {row['stdev']:.4f}"
        print(f"{arm:<14} {steps[arm][0]:>18} {steps[arm][1]:>12} {loss:>20} {row['mean_seconds']:>8}")
    print(f"wrote {root / 'results.json'} and {root / 'pretrain_finetune.png'}")


if __name__ == "__main__":
    main()
