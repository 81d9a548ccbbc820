"""Training under a real `torchrun --nproc_per_node=2` (gloo on CPU), against single-process runs.

A `sitecustomize.py` placed on the workers' PYTHONPATH records, per rank, its pid and every file it renames
into place (all of gptkit's writes are temp-file-then-rename), so the tests can see who wrote what.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY, tiny_config
from safetensors.torch import load_file

from gptkit.train.loop import train
from gptkit.train.metrics import read_metrics

QUIET = {"echo": lambda line: None, "progress": False}
TORCHRUN = Path(sys.executable).parent / "torchrun"
# The same schedule whatever max_iters a run stops at, so shorter runs are prefixes of longer ones.
SCHEDULE = ["train.batch_size=4", "train.warmup_iters=2", "train.lr_decay_iters=20", "train.eval_interval=3"]

AUDIT = """
import os, sys
log, rank = os.environ.get("AUDIT_DIR"), os.environ.get("RANK")
if log and rank is not None:
    with open(os.path.join(log, f"pid.{rank}"), "w") as f:
        f.write(str(os.getpid()))
    def record(event, args):
        if event == "os.rename":
            with open(os.path.join(log, f"renames.{rank}"), "a") as f:
                f.write(os.fsdecode(args[1]) + "\\n")
    sys.addaudithook(record)
"""


def launch(tmp_path, data, out, *overrides, nproc=2, extra=()):
    """Start `torchrun -m gptkit train` (not waiting); returns the process and the audit folder."""
    audit = tmp_path / f"audit-{out.name}-{time.monotonic_ns()}"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(AUDIT)
    env = {**os.environ, "PYTHONPATH": str(audit), "AUDIT_DIR": str(audit)}
    settings = [arg for item in [*TINY, *SCHEDULE, *overrides] for arg in ("--set", item)]
    command = [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", "-m", "gptkit", "train"]
    command += ["--data", str(data), "--out", str(out), *settings, *extra]
    process = subprocess.Popen(  # in its own process group, like a job in a terminal
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    return process, audit


def run_torchrun(tmp_path, data, out, *overrides, extra=()):
    process, audit = launch(tmp_path, data, out, *overrides, extra=extra)
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output
    return output, audit


def train_single(data, out, *overrides, resume=False):
    """One process on one thread, as each torchrun worker (OMP_NUM_THREADS=1): the same arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(tiny_config(data, *SCHEDULE, *overrides), out, resume=resume, **QUIET)
    finally:
        torch.set_num_threads(threads)


def max_difference(run_a: Path, run_b: Path) -> float:
    a, b = load_file(run_a / "model.safetensors"), load_file(run_b / "model.safetensors")
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, small_data):
    """A 2-process run of 6 steps with grad_accum 1 (a global batch of 2 micro-batches)."""
    tmp = tmp_path_factory.mktemp("ddp")
    output, audit = run_torchrun(tmp, small_data, tmp / "ddp", "train.max_iters=6")
    return tmp / "ddp", output, audit


def test_two_processes_equal_one_process_with_the_same_global_batch(ddp_run, small_data, tmp_path):
    run, output, _ = ddp_run
    train_single(small_data, tmp_path / "single", "train.max_iters=6", "train.grad_accum=2")
    assert max_difference(run, tmp_path / "single") <= 1e-5
    assert "x 2 processes" in output  # the global batch is shown at the start
    assert output.count("done: 6 steps") == 1  # one process reports
    # The logged loss is the mean over both ranks: equal to the single process's loss over both halves.
    single, ddp = (
        {r["step"]: r["train_loss"] for r in read_metrics(d / "metrics.jsonl") if r["kind"] == "train"}
        for d in (tmp_path / "single", run)
    )
    assert ddp.keys() == single.keys() == set(range(1, 7))
    assert all(abs(ddp[s] - single[s]) < 1e-5 for s in ddp)


def test_only_rank_0_writes_the_run_directory(ddp_run):
    run, _, audit = ddp_run
    assert (audit / "pid.0").exists() and (audit / "pid.1").exists()  # the audit hook ran in both workers
    assert not (audit / "renames.1").exists()  # rank 1 replaced no file
    written = {Path(line).name for line in (audit / "renames.0").read_text().splitlines()}
    assert {"checkpoint.safetensors", "model.safetensors", "config.json", "tokenizer.json"} <= written
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")]
    assert len(steps) == len(set((r["kind"], r["step"]) for r in read_metrics(run / "metrics.jsonl")))  # no twice


def test_resume_under_torchrun_and_with_another_world_size(ddp_run, small_data, tmp_path):
    run, _, _ = ddp_run
    train_single(small_data, tmp_path / "single9", "train.max_iters=9", "train.grad_accum=2")
    # The same two processes continue the run ...
    same = tmp_path / "same"
    subprocess.run(["cp", "-r", str(run), str(same)], check=True)
    output, _ = run_torchrun(tmp_path, small_data, same, "train.max_iters=9", extra=["--resume"])
    assert "resuming" in output
    assert max_difference(same, tmp_path / "single9") <= 1e-5
    # ... or one process does, with grad_accum 2 keeping the global batch of 2 micro-batches.
    alone = tmp_path / "alone"
    subprocess.run(["cp", "-r", str(run), str(alone)], check=True)
    lines = []
    train(tiny_config(small_data, *SCHEDULE, "train.max_iters=9"), alone, resume=True, echo=lines.append, progress=0)
    assert any("grad_accum 1 -> 2" in line for line in lines)
    assert max_difference(alone, tmp_path / "single9") <= 1e-5


def test_a_world_size_that_cannot_keep_the_global_batch_is_refused(ddp_run, small_data, tmp_path):
    from gptkit.checkpoint import TrainState
    from gptkit.distributed import World
    from gptkit.errors import GptkitError
    from gptkit.train.loop import check_world_size

    cfg = tiny_config(small_data).train
    with pytest.raises(GptkitError, match="cannot split evenly"):
        check_world_size(TrainState(step=3, world_size=2, grad_accum=1), World(size=3), cfg)
    assert check_world_size(TrainState(step=3, world_size=2, grad_accum=3), World(size=3), cfg) is not None
    assert cfg.grad_accum == 2


@pytest.mark.parametrize("how", ["kill -9 rank 1", "Ctrl-C"])
def test_killing_one_rank_stops_the_others_and_keeps_the_last_checkpoint(small_data, tmp_path, how):
    run = tmp_path / "killed"
    process, audit = launch(tmp_path, small_data, run, "train.max_iters=100000", "train.log_interval=50")
    try:
        deadline = time.monotonic() + 120
        while not ((run / "checkpoint.safetensors").exists() and (audit / "pid.1").exists()):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.2)
        time.sleep(0.5)  # mid-run, between checkpoints or inside one
        if how == "Ctrl-C":  # the terminal sends SIGINT to the whole foreground process group
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(int((audit / "pid.1").read_text()), signal.SIGKILL)
        output, _ = process.communicate(timeout=90)  # the surviving rank must not hang
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # torchrun and its workers
    assert process.returncode != 0, output
    if how == "Ctrl-C":
        assert output.count("interrupted") == 1  # said once, by rank 0
    rank0 = int((audit / "pid.0").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(rank0, 0)  # rank 0 is gone too
    assert not list(run.glob(".*.tmp"))  # no half-written file left behind
    from safetensors import safe_open

    from gptkit.run import load_run

    assert load_run(run).generate("\n", 5, temperature=0)
    with safe_open(str(run / "checkpoint.safetensors"), framework="pt") as handle:
        step = json.loads(handle.metadata()["gptkit"])["state"]["step"]
    result = train(tiny_config(small_data, *SCHEDULE, f"train.max_iters={step + 2}"), run, resume=True, **QUIET)
    assert result.step == step + 2
