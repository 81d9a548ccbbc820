"""Ablations for the CPU speedrun: each row changes one thing in the `cpu-speedrun` preset and trains it for
the same wall-clock budget over the same seeds (`bench/speedrun.py`), so every row had equal time on the
machine. The runs are interleaved, seed by seed (seed 1 of every row, then seed 2 of every row, ...), so a
machine that drifts faster or slower over the hours weighs on every row alike. Each run is appended to
`--out` as one JSON line as soon as it is done (a stopped experiment keeps what it measured; `--skip-done`
goes on from there). Finally prints a Markdown table: mean ± half the spread of the full val loss (every
val token scored once), the difference from the first row, the full val loss in 64-token windows (like for
like across block sizes), the steps done and the val estimate. Run it on an otherwise idle
machine: the budget is wall-clock time. About rows x seeds x (minutes + 0.2) minutes.
`--set KEY=VALUE` changes the baseline itself (every row, before the row's own settings), which is how an
earlier round of docs/speedrun.md is re-run on today's preset; each run records it as `base`.
Usage: python experiments/speedrun_ablations.py [--minutes 2] [--seeds 3] [--out ablations.jsonl] [--only NAME ...]
       [--set KEY=VALUE ...]
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "speedrun.py"

# (row name, settings on top of cpu-speedrun and --set). The preset: 4 layers x 128, 4 heads (2 kv), RoPE,
# RMSNorm, SwiGLU, QK-norm, logit soft-cap 30, no biases, untied head, batch 12 x block 64, Muon for the block
# matrices and AdamW (lr 1e-3) for the rest, weight decay 0.3, WSD with a 20% cooldown to 0. Each row takes
# one thing away or changes one thing; the batch and block rows set both, so they mean the same under any
# --set. Rows that name the preset's own value (weight decay 0.3, cool down to 0) are changes only against
# the earlier presets of docs/speedrun.md, re-run with their --set.
ROWS: list[tuple[str, list[str]]] = [
    ("baseline", []),
    ("AdamW, not Muon", ["train.optimizer=adamw"]),
    ("no QK-norm", ["model.qk_norm=false"]),
    ("no logit soft-cap", ["model.logit_softcap=0"]),
    ("zero-init output projections", ["model.zero_init_proj=true"]),
    ("learned positions, not RoPE", ["model.pos=learned"]),
    ("LayerNorm, not RMSNorm", ["model.norm=layernorm"]),
    ("GELU MLP, not SwiGLU", ["model.mlp=gelu"]),
    ("ReLU² MLP, not SwiGLU", ["model.mlp=relu2"]),
    ("tied head", ["model.tie_embeddings=true"]),
    ("cosine, not WSD", ["train.schedule=cosine"]),
    ("cooldown 50%, not 20%", ["train.cooldown_frac=0.5"]),
    ("cooldown 10%, not 20%", ["train.cooldown_frac=0.1"]),
    ("cool down to 0, not lr/10", ["train.min_lr=0"]),
    ("weight decay 0.3", ["train.weight_decay=0.3"]),
    ("weight decay 0.3, cool down to 0", ["train.weight_decay=0.3", "train.min_lr=0"]),
    ("weight decay 0.6", ["train.weight_decay=0.6"]),
    ("cooldown 30%, not 20%", ["train.cooldown_frac=0.3"]),
    ("Muon lr 2e-3", ["train.muon_lr=2e-3"]),
    ("Muon, 3 Newton-Schulz steps", ["train.muon_ns_steps=3"]),
    ("Muon, 2 Newton-Schulz steps", ["train.muon_ns_steps=2"]),
    ("lr 2e-3 (Muon and AdamW)", ["train.lr=2e-3"]),
    ("batch 48", ["train.batch_size=48"]),
    ("block 64, batch 24", ["model.block_size=64", "train.batch_size=24"]),
    ("block 128, batch 6", ["model.block_size=128", "train.batch_size=6"]),
    ("block 128, batch 12", ["model.block_size=128", "train.batch_size=12"]),
    ("block 128, batch 24", ["model.block_size=128", "train.batch_size=24"]),
    ("block 256, batch 6", ["model.block_size=256", "train.batch_size=6"]),
    (
        "block 128, batch 6, weight decay 0.3, cool down to 0",
        ["model.block_size=128", "train.batch_size=6", "train.weight_decay=0.3", "train.min_lr=0"],
    ),
    ("wider: 192, 6 heads (3 kv)", ["model.n_embd=192", "model.n_head=6", "model.n_kv_head=3"]),
    ("deeper: 6 layers", ["model.n_layer=6"]),
    ("shallower: 3 layers", ["model.n_layer=3"]),
    ("dropout 0.1", ["model.dropout=0.1"]),
    ("dropout 0.1, none on attention", ["model.dropout=0.1", "model.attn_dropout=0"]),
    ("dropout 0.05, none on attention", ["model.dropout=0.05", "model.attn_dropout=0"]),
]


def run_one(name: str, settings: list[str], seed: int, args) -> dict:
    command = [sys.executable, str(BENCH), "--preset", args.preset, "--minutes", str(args.minutes)]
    command += ["--seeds", "1", "--first-seed", str(seed)]
    command += [part for s in args.base + settings for part in ("--set", s)]  # the row's settings win
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    run = json.loads(done.stdout.strip().splitlines()[-1])["runs"][0]
    return {"row": name, "settings": settings, "preset": args.preset, "base": args.base, "minutes": args.minutes, **run}


def summarise(runs: list[dict]) -> dict:
    """Per row, in ROWS order: the runs' full val losses (mean, spread), val estimates and steps."""
    rows = []
    for name, _ in ROWS:
        mine = [r for r in runs if r["row"] == name]
        if mine:
            full = [r["full_val_loss"] for r in mine]
            short = [r.get("full_val_loss_64") for r in mine]  # runs from before bench/speedrun.py recorded it lack it
            rows.append(
                {
                    "row": name,
                    "seeds": [r["seed"] for r in mine],
                    "full_val_loss": {"mean": statistics.mean(full), "spread": max(full) - min(full)},
                    "val_loss": {"mean": statistics.mean(r["val_loss"] for r in mine)},
                    # in 64-token windows, so that rows with a longer block compare like for like
                    "full_val_loss_64": None if None in short else {"mean": statistics.mean(short)},
                    "runs": mine,
                }
            )
    return rows


def table(results: list[dict]) -> str:
    base = next((r for r in results if r["row"] == ROWS[0][0]), results[0])["full_val_loss"]["mean"]
    lines = [
        "| change | full val loss (mean ± half spread) | Δ vs baseline | in 64-token windows | steps | val estimate |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        full, steps = r["full_val_loss"], [run["steps"] for run in r["runs"]]
        short = f"{r['full_val_loss_64']['mean']:.4f}" if r["full_val_loss_64"] else "—"
        lines.append(
            f"| {r['row']} | {full['mean']:.4f} ± {full['spread'] / 2:.4f} | {full['mean'] - base:+.4f} | {short} | "
            f"{min(steps):,}–{max(steps):,} | {r['val_loss']['mean']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-speedrun")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("ablations.jsonl"))
    parser.add_argument("--only", nargs="*", help="row names to run (default: all)")
    parser.add_argument("--skip-done", action="store_true", help="keep the runs already in --out")
    parser.add_argument("--set", dest="base", action="append", default=[], metavar="KEY=VALUE", help="baseline change")
    args = parser.parse_args()
    runs = []
    if args.skip_done and args.out.exists():  # only runs of the same preset, baseline and budget
        runs = [json.loads(line) for line in args.out.read_text().splitlines()]
        same = (args.preset, args.base, args.minutes)
        runs = [r for r in runs if (r.get("preset"), r.get("base", []), r.get("minutes")) == same]
    elif args.out.exists():
        args.out.unlink()
    done = {(r["row"], r["seed"]) for r in runs}
    for seed in range(1, args.seeds + 1):
        for name, settings in ROWS:
            if (args.only and name not in args.only) or (name, seed) in done:
                continue
            run = run_one(name, settings, seed, args)
            runs.append(run)
            with args.out.open("a") as out:
                out.write(json.dumps(run) + "\n")
            print(f"{name}, seed {seed}: {run['full_val_loss']} ({run['steps']} steps)", flush=True)
    print(table(summarise(runs)))


if __name__ == "__main__":
    main()
