"""`train.compile`: the `cpu-speedrun` preset compiles, a compiled run trains as the same run does eagerly,
and on a CPU without the C++ compiler Inductor builds its kernels with, the run trains eagerly and says so
in one line rather than failing at its first step with a compiler traceback."""

import math
import sys

import pytest
import torch
from helpers import tiny_config

from gptkit.config import DataSource, resolve_config
from gptkit.runtime import compile_blocker
from gptkit.train.loop import train

CPU = torch.device("cpu")


def test_the_speedrun_preset_compiles_and_cpu_baby_does_not():
    assert resolve_config(preset="cpu-speedrun").train.compile is True
    assert resolve_config(preset="cpu-baby").train.compile is False


def test_compile_without_a_cpp_compiler_trains_eagerly_and_says_so(tmp_path, monkeypatch, small_data):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no compiler to be found
    monkeypatch.delenv("CXX", raising=False)
    lines: list[str] = []
    config = tiny_config(small_data, "train.compile=true", "train.max_iters=3", "train.eval_interval=3")
    result = train(config, tmp_path / "run", echo=lines.append, progress=False)
    default = {"darwin": "clang++", "win32": "cl"}.get(sys.platform, "g++")
    assert [line for line in lines if line.startswith("compile:")] == [
        f"compile: off, no C++ compiler {default!r}, which torch.compile needs on a CPU (install {default}, or "
        "set CXX); training without it"
    ]
    assert result.step == 3 and math.isfinite(result.val_loss)


@pytest.mark.skipif(sys.platform != "linux", reason="the compilers PyTorch looks for on Linux")
def test_the_compiler_looked_for_is_the_one_pytorch_uses(tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("clang++", "my-cxx"):
        (tools / name).write_text("#!/bin/sh\n")
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.delenv("CXX", raising=False)
    assert "'g++'" in compile_blocker(CPU)  # on Linux Inductor runs g++ unless CXX names another: clang++ is unused
    monkeypatch.setenv("CXX", "my-cxx")
    assert compile_blocker(CPU) is None
    monkeypatch.setenv("CXX", "missing-cxx")
    assert "'missing-cxx'" in compile_blocker(CPU)
    assert compile_blocker(torch.device("meta")) is None  # only a CPU builds C++ kernels


@pytest.mark.slow
def test_the_speedrun_preset_trains_compiled_as_it_does_eagerly(tmp_path, small_data, monkeypatch):
    if compile_blocker(CPU):
        pytest.skip("no C++ compiler on this machine (the fallback is tested above)")
    compiles = []
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compiles.append(model) or real_compile(model, **kw))
    settings = [
        *("train.device=cpu", "train.dtype=float32", "train.peak_flops=1e11"),
        *("train.time_budget_s=0", "train.max_iters=6", "train.warmup_iters=2"),
        *("train.eval_interval=6", "train.eval_iters=4", "train.log_interval=1"),
    ]
    results = {}
    for compiled in (False, True):
        config = resolve_config(preset="cpu-speedrun", overrides=[*settings, f"train.compile={compiled}"])
        config.data = [DataSource(path=str(small_data))]
        results[compiled] = train(config, tmp_path / f"compiled-{compiled}", echo=lambda line: None, progress=False)
        assert len(compiles) == int(compiled)  # the eager run compiled nothing, the other its model
    eager, fused = results[False], results[True]
    assert fused.step == eager.step == 6 and math.isfinite(eager.val_loss)
    assert abs(fused.val_loss - eager.val_loss) < 2e-3
    assert abs(fused.train_loss - eager.train_loss) < 2e-3
