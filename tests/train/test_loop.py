import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import TINY, tiny_config
from safetensors.torch import load_file

from gptkit.checkpoint import read_run_config
from gptkit.errors import GptkitError
from gptkit.train.loop import train
from gptkit.train.metrics import read_metrics

QUIET = {"echo": lambda line: None, "progress": False}


def losses(run_dir):
    return [(r["step"], r.get("train_loss"), r.get("val_loss")) for r in read_metrics(run_dir / "metrics.jsonl")]


def test_run_directory_holds_what_a_user_needs(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "best.safetensors",
        "checkpoint.safetensors",
        "metrics.jsonl",
    } <= names
    assert not [n for n in names if n.endswith(".tmp")]
    records = read_metrics(trained_run / "metrics.jsonl")
    train_records = [r for r in records if "train_loss" in r and "lr" in r]
    assert {"step", "train_loss", "lr", "tokens_per_s", "ms_per_step", "mfu"} <= set(train_records[0])
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evals] == [0, 10, 20, 30]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5  # it learned something
    assert abs(evals[0]["val_loss"] - math.log(read_run_config(trained_run).model.vocab_size)) < 0.1
    assert read_run_config(trained_run).model.n_layer == 2


def test_best_weights_are_the_lowest_val_loss(tmp_path, small_data):
    run = tmp_path / "r"
    train(tiny_config(small_data), run, **QUIET)
    evals = [r for r in read_metrics(run / "metrics.jsonl") if "val_loss" in r and r["step"] > 0]
    best = min(evals, key=lambda r: r["val_loss"])
    from safetensors import safe_open

    with safe_open(str(run / "best.safetensors"), framework="pt") as f:
        assert int(f.metadata()["step"]) == best["step"]


def test_resume_extends_a_run_exactly(tmp_path, small_data):
    # Dropout and the peak-FLOP probe both touch random state: resume must restore it exactly all the same.
    fixed = ("train.lr_decay_iters=40", "model.dropout=0.1", "train.peak_flops=0")
    train(tiny_config(small_data, "train.max_iters=40", *fixed), tmp_path / "whole", **QUIET)
    train(tiny_config(small_data, "train.max_iters=20", *fixed), tmp_path / "split", **QUIET)
    train(tiny_config(small_data, "train.max_iters=40", *fixed), tmp_path / "split", resume=True, **QUIET)
    assert losses(tmp_path / "split") == losses(tmp_path / "whole")
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "split" / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)
    assert read_run_config(tmp_path / "split").train.max_iters == 40  # config.json follows the extension
    with pytest.raises(GptkitError, match="train.max_iters"):
        train(tiny_config(small_data, "train.max_iters=40", *fixed), tmp_path / "split", resume=True, **QUIET)


def gptkit(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "gptkit", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw
    )


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, small_data):
    sets = [*TINY, "train.max_iters=300", "train.eval_interval=50", "model.dropout=0.1", "train.peak_flops=0"]
    common = ["train", "--data", str(small_data), "--set", *sets]
    whole = gptkit(*common, "--out", str(tmp_path / "whole"))
    assert whole.wait(timeout=120) == 0, whole.stderr.read()

    killed_dir = tmp_path / "killed"
    proc = gptkit(*common, "--out", str(killed_dir))
    metrics = killed_dir / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:  # wait for the first checkpoint, then a few steps past it
        if (killed_dir / "checkpoint.safetensors").exists() and metrics.exists():
            if max((r["step"] for r in read_metrics(metrics)), default=0) >= 60:
                break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "training finished before it could be killed"
    steps_before = max(r["step"] for r in read_metrics(metrics))
    from safetensors import safe_open

    with safe_open(str(killed_dir / "checkpoint.safetensors"), framework="pt") as f:
        checkpoint_step = json.loads(f.metadata()["gptkit"])["state"]["step"]
    assert steps_before > checkpoint_step  # killed between two checkpoints

    resumed = gptkit("train", "--out", str(killed_dir), "--resume")
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    assert losses(killed_dir) == losses(tmp_path / "whole")


def test_an_existing_run_is_not_overwritten_by_accident(trained_run, small_data, tmp_path):
    with pytest.raises(GptkitError, match=r"already holds a run; resume=True \(--resume\)"):
        train(tiny_config(small_data), trained_run, **QUIET)
    before = sorted(p.name for p in trained_run.iterdir())
    with pytest.raises(GptkitError, match="gptkit prepare"):  # bad input is found before anything is deleted
        train(tiny_config(tmp_path), trained_run, overwrite=True, **QUIET)
    assert sorted(p.name for p in trained_run.iterdir()) == before


def test_every_metrics_line_has_the_documented_fields(trained_run):
    records = read_metrics(trained_run / "metrics.jsonl")
    for record in records:
        assert {"kind", "step", "lr", "tokens_per_s", "ms_per_step", "mfu", "tokens"} <= set(record)
        assert "train_loss" in record or "val_loss" in record
    train_steps = [r["step"] for r in records if r["kind"] == "train"]
    assert train_steps == list(range(1, 31))  # log_interval=1: completed steps 1..30


def test_a_run_without_validation_data_warns_and_has_no_best(tmp_path, small_text_file):
    from gptkit.data.prepare import prepare

    prepare([str(small_text_file)], tmp_path / "d", val_fraction=0.0)
    lines = []
    train(tiny_config(tmp_path / "d"), tmp_path / "r", echo=lines.append, progress=False)
    assert any(line.startswith("warning: the data has no validation split") for line in lines)
    assert not (tmp_path / "r" / "best.safetensors").exists()
    import gptkit

    with pytest.raises(GptkitError, match="--weights last"):
        gptkit.load(tmp_path / "r", weights="best")


def test_resume_without_a_checkpoint_says_what_to_do(tmp_path, small_data):
    with pytest.raises(GptkitError, match="no checkpoint"):
        train(tiny_config(small_data), tmp_path / "new", resume=True, **QUIET)


def test_init_from_starts_where_the_parent_ended(tmp_path, trained_run, small_data):
    child = tmp_path / "child"
    train(tiny_config(small_data, "train.max_iters=10", "train.lr=1e-4"), child, init_from=trained_run, **QUIET)
    parent_final = [r for r in read_metrics(trained_run / "metrics.jsonl") if "val_loss" in r][-1]["val_loss"]
    child_first = [r for r in read_metrics(child / "metrics.jsonl") if "val_loss" in r][0]["val_loss"]
    assert child_first == pytest.approx(parent_final, abs=1e-5)


def test_init_from_refuses_data_with_another_tokenizer(tmp_path, trained_run):
    from gptkit.data.prepare import prepare

    (tmp_path / "other.txt").write_text("zzzz yyyy xxxx " * 200)
    prepare([str(tmp_path / "other.txt")], tmp_path / "other")
    with pytest.raises(GptkitError, match="tokenizer differs"):
        train(tiny_config(tmp_path / "other"), tmp_path / "child", init_from=trained_run, **QUIET)


def test_gradient_accumulation_matches_one_big_batch():
    import torch

    from gptkit.config import GPTConfig, RunConfig, TrainConfig
    from gptkit.model import GPT
    from gptkit.objectives.causal import CausalLM
    from gptkit.train.loop import StepParts, train_step
    from gptkit.train.optim import build_optimizer

    cpu = torch.device("cpu")
    data = torch.Generator().manual_seed(0)
    x = torch.randint(0, 65, (8, 16), generator=data)
    y = torch.randint(0, 65, (8, 16), generator=data)
    results = []
    for accum, batches in ((1, [(x, y)]), (2, [(x[:4], y[:4]), (x[4:], y[4:])])):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32))
        cfg = TrainConfig(grad_accum=accum)
        optimizer = build_optimizer(model, cfg, cpu)
        # The gradients the optimizer steps with; comparing them (not the weights after one AdamW step,
        # which normalises away a missing 1/grad_accum and amplifies rounding in near-zero gradients).
        grads = []
        optimizer.register_step_pre_hook(lambda opt, *_: grads.extend(p.grad.clone() for p in model.parameters()))
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        feed = iter(batches)
        parts = StepParts(model, model, optimizer, scaler, CausalLM(RunConfig()).loss, cpu, torch.float32)
        loss = train_step(parts, lambda: next(feed), cfg, 1e-3)
        results.append((loss.item(), torch.cat([g.flatten() for g in grads])))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-6)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-7, rtol=1e-5)
