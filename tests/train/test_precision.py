"""`train.dtype=auto` on a CPU: the probe leaves no trace, small models are not probed, a resumed run keeps its
first choice, and bf16 training reaches float32's val loss on `cpu-baby` (2000 steps, within 0.02)."""

import pytest
import torch
from helpers import tiny_config

from gptkit.config import resolve_config
from gptkit.data.prepare import prepare
from gptkit.evaluate import evaluate_dataset
from gptkit.model import GPT
from gptkit.run import load_run
from gptkit.train import precision
from gptkit.train.loop import train

QUIET = {"echo": lambda line: None, "progress": False}


def test_the_probe_leaves_no_trace():
    config = resolve_config(preset="cpu-baby").model
    config.vocab_size = 65
    model = GPT(config).eval()
    rng = torch.get_rng_state()
    fp32_s, bf16_s = precision.probe_step_seconds(model, rows=2)
    assert fp32_s > 0 and bf16_s > 0
    assert torch.equal(torch.get_rng_state(), rng)  # dropout's RNG, which exact resume relies on
    assert all(p.grad is None for p in model.parameters()) and not model.training


def test_small_models_stay_float32_without_a_probe(small_data, monkeypatch):
    config = tiny_config(small_data).model
    config.vocab_size = 65
    monkeypatch.setattr(precision, "probe_step_seconds", lambda *a: pytest.fail("probed a tiny model"))
    choice = precision.choose_cpu_dtype(GPT(config), batch_size=8)
    assert choice.dtype == torch.float32 and "too small" in choice.reason


def test_a_resumed_run_keeps_the_dtype_it_started_with(small_data, tmp_path, monkeypatch):
    lines = []
    monkeypatch.setattr(precision, "MIN_GFLOP_PER_PROBE", 0.0)
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    monkeypatch.setattr(precision, "probe_step_seconds", lambda *a: (2.0, 1.0))  # bf16 twice as fast
    config = tiny_config(small_data, "train.max_iters=20", "train.eval_interval=10")
    train(config, tmp_path / "run", echo=lines.append, progress=False)
    assert any("dtype bfloat16 (auto: a probe step took 1000 ms in bf16, 2000 ms in float32)" in x for x in lines)
    monkeypatch.setattr(precision, "probe_step_seconds", lambda *a: (1.0, 2.0))  # now bf16 would lose
    config.train.max_iters = 30
    lines.clear()
    train(config, tmp_path / "run", resume=True, echo=lines.append, progress=False)
    assert any("dtype bfloat16 (auto: as picked when the run started)" in x for x in lines)


@pytest.mark.slow
@pytest.mark.skipif(
    not precision.native_bf16(), reason="auto never picks bf16 on a CPU without native bf16 (and it is 10x slower)"
)
def test_bf16_training_matches_float32_on_cpu_baby(tmp_path, shakespeare_text):
    """The bar for letting `auto` pick bf16: 2000 steps of `cpu-baby` in each, same seed, full val split."""
    (tmp_path / "shakespeare.txt").write_text(shakespeare_text, encoding="utf-8")
    data = tmp_path / "data"
    prepare([str(tmp_path / "shakespeare.txt")], data)
    losses = {}
    for dtype in ("float32", "bfloat16"):
        config = resolve_config(preset="cpu-baby", overrides=[f"train.dtype={dtype}", "train.eval_interval=2000"])
        config.data = tiny_config(data).data
        train(config, tmp_path / dtype, **QUIET)
        losses[dtype] = evaluate_dataset(load_run(tmp_path / dtype, device="cpu"), data).loss
    assert losses["float32"] < 2.0  # really trained (the demo reaches about 1.90)
    assert abs(losses["bfloat16"] - losses["float32"]) < 0.02, losses
