"""LR schedules (cosine, WSD) and training to a wall-clock budget."""

import dataclasses
import json
import math

import pytest
from helpers import tiny_config
from safetensors import safe_open

from gptkit.config import TrainConfig
from gptkit.errors import GptkitError
from gptkit.train.loop import train
from gptkit.train.metrics import read_metrics
from gptkit.train.optim import lr_at


def test_defaults_are_cosine_by_steps_as_before():
    cfg = TrainConfig(max_iters=1000, warmup_iters=100, lr=1e-3)
    assert cfg.schedule == "cosine" and cfg.time_budget_s == 0
    middle = 0.5 * (1 + math.cos(math.pi * 0.5)) * (cfg.lr - cfg.final_lr) + cfg.final_lr
    assert lr_at(550, cfg) == pytest.approx(middle)
    assert lr_at(1000, cfg) == pytest.approx(cfg.final_lr) and lr_at(5000, cfg) == pytest.approx(cfg.final_lr)


def test_wsd_is_warmup_then_stable_then_a_linear_cooldown():
    cfg = TrainConfig(max_iters=1100, warmup_iters=100, lr=1e-3, schedule="wsd", cooldown_frac=0.2)
    assert lr_at(50, cfg) < cfg.lr  # warming up
    assert lr_at(100, cfg) == lr_at(500, cfg) == lr_at(900, cfg) == cfg.lr  # stable until 80% of the decay span
    assert lr_at(1000, cfg) == pytest.approx((cfg.lr + cfg.final_lr) / 2)  # halfway down the cooldown
    assert lr_at(1100, cfg) == pytest.approx(cfg.final_lr)
    budget = TrainConfig(warmup_iters=10, schedule="wsd", time_budget_s=100, max_iters=10**9)
    assert lr_at(500, budget, elapsed_s=50) == budget.lr  # by time, not by step
    assert lr_at(500, budget, elapsed_s=90) == pytest.approx((budget.lr + budget.final_lr) / 2)


def test_a_sqrt_cooldown_falls_fast_then_lingers_low_and_ends_at_min_lr():
    linear = TrainConfig(max_iters=1100, warmup_iters=100, lr=1e-3, min_lr=1e-4, schedule="wsd", cooldown_frac=0.2)
    sqrt = dataclasses.replace(linear, cooldown_shape="sqrt")
    assert lr_at(900, sqrt) == lr_at(900, linear) == sqrt.lr  # the same stable phase
    quarter = 1e-3 - 0.5 * (1e-3 - 1e-4)  # a quarter into the cooldown, sqrt has made half the fall
    assert lr_at(950, sqrt) == pytest.approx(quarter) and lr_at(950, linear) > quarter
    lrs = [lr_at(step, sqrt) for step in range(900, 1101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[-1] == pytest.approx(sqrt.final_lr)
    assert all(lr_at(step, sqrt) < lr_at(step, linear) for step in range(901, 1100))


def test_a_run_stops_on_its_time_budget_after_a_cooldown(tmp_path, small_data):
    run = tmp_path / "timed"
    settings = (
        "train.time_budget_s=3",
        "train.max_iters=1000000",
        "train.schedule=wsd",
        "train.cooldown_frac=0.5",
        "train.eval_interval=100000",
    )
    result = train(tiny_config(small_data, *settings), run, echo=lambda line: None, progress=False)
    assert 20 < result.step < 1000000
    with safe_open(str(run / "checkpoint.safetensors"), framework="pt") as handle:
        state = json.loads(handle.metadata()["gptkit"])["state"]
    assert state["step"] == result.step and 3.0 <= state["elapsed_s"] < 6.0  # on time (one step over at most)
    lrs = [r["lr"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]
    config = tiny_config(small_data, *settings).train
    peak = lrs.index(max(lrs))
    assert max(lrs) <= config.lr and all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))
    # It cooled down by the end. The LR follows the clock (lr_at's own test checks the curve), so where it stood at
    # each step depends on when that step began: a busy machine can stall steps for a good part of a second (even
    # the first five, of warmup), hence loose bounds here rather than the ideal peak `lr` and end ~0.
    assert lrs[-1] < 0.8 * max(lrs)
    evals = [r["step"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "eval"]
    assert evals == [0, result.step]  # evaluated at the start and where the budget ran out
    with pytest.raises(GptkitError, match="already spent its time budget"):
        train(tiny_config(small_data, *settings), run, resume=True, echo=lambda line: None, progress=False)


def test_max_iters_before_the_budget_still_ends_the_schedule():
    cfg = TrainConfig(max_iters=1000, warmup_iters=0, schedule="wsd", time_budget_s=3600)
    assert lr_at(999, cfg, elapsed_s=10) < 0.11 * cfg.lr  # cooled down by steps, though the budget is young
    assert lr_at(500, cfg, elapsed_s=3000) < cfg.lr  # and by time, though steps are young


def test_speedrun_preset_and_bad_schedules():
    from gptkit.config import resolve_config

    config = resolve_config(preset="cpu-speedrun")
    config.validate()
    assert config.train.time_budget_s == 600 and config.train.schedule == "wsd"
    assert config.train.optimizer == "muon" and config.model.qk_norm and config.model.logit_softcap == 30
    assert (config.model.block_size, config.train.batch_size, config.model.norm) == (64, 12, "rmsnorm")
    assert (config.train.weight_decay, config.train.final_lr) == (0.3, 0.0)
    for bad in ("train.schedule=linear", "train.cooldown_frac=0", "train.time_budget_s=-1", "train.cooldown_shape=cos"):
        with pytest.raises(GptkitError):
            resolve_config(overrides=[bad]).validate()
