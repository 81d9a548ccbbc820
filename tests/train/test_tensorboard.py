"""`--set log.tensorboard=true`: the same numbers as metrics.jsonl in TensorBoard event files, once per step
even across a resume."""

import sys

import pytest
from helpers import tiny_config

from gptkit.errors import GptkitError
from gptkit.train.loop import train
from gptkit.train.metrics import read_metrics

QUIET = {"echo": lambda line: None, "progress": False}


def scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_tensorboard_gets_the_metrics(tmp_path, small_data):
    run = tmp_path / "tb"
    train(tiny_config(small_data, "log.tensorboard=true", "train.max_iters=20"), run, **QUIET)
    records = read_metrics(run / "metrics.jsonl")
    logged = [(r["step"], r["train_loss"]) for r in records if r["kind"] == "train"]
    assert [s for s, _ in scalars(run, "train/train_loss")] == [s for s, _ in logged] == list(range(1, 21))
    assert all(abs(a - b) < 1e-6 for (_, a), (_, b) in zip(scalars(run, "train/train_loss"), logged))
    assert [s for s, _ in scalars(run, "eval/val_loss")] == [0, 10, 20]
    assert scalars(run, "train/lr") and scalars(run, "train/tokens_per_s")


def test_a_resumed_run_does_not_repeat_steps_in_tensorboard(tmp_path, small_data):
    run = tmp_path / "tb"
    settings = ("log.tensorboard=true", "train.lr_decay_iters=30")
    train(tiny_config(small_data, *settings, "train.max_iters=20"), run, **QUIET)
    at_step_20 = (run / "checkpoint.safetensors").read_bytes()
    train(tiny_config(small_data, *settings, "train.max_iters=25"), run, resume=True, **QUIET)
    # A crash after step 25 whose last checkpoint was step 20: steps 21..25 are logged but will be redone.
    (run / "checkpoint.safetensors").write_bytes(at_step_20)
    train(tiny_config(small_data, *settings, "train.max_iters=30"), run, resume=True, **QUIET)
    steps = [s for s, _ in scalars(run, "train/train_loss")]
    assert steps == list(range(1, 31))


def test_missing_tensorboard_is_a_one_line_error(tmp_path, small_data, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if it were not installed
    with pytest.raises(GptkitError, match="pip install tensorboard"):
        train(tiny_config(small_data, "log.tensorboard=true"), tmp_path / "tb", **QUIET)
    assert not (tmp_path / "tb").exists()  # refused before anything was written
