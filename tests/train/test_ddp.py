"""Training under a real `torchrun --nproc_per_node=2` (gloo on CPU), against single-process runs.

A `sitecustomize.py` placed on the workers' PYTHONPATH records, per rank, its pid, every file it renames
into place (all of gptkit's writes are temp-file-then-rename) and how many gradient all-reduces DDP ran
(through a counting comm hook), so the tests can see who wrote what and when gradients were synced.
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

from gptkit.checkpoint import read_run_config
from gptkit.train.loop import train
from gptkit.train.metrics import read_metrics

pytestmark = pytest.mark.slow  # every test here launches torchrun with 2 processes

QUIET = {"echo": lambda line: None, "progress": False}
TORCHRUN = Path(sys.executable).parent / "torchrun"
# The same schedule whatever max_iters a run stops at, so shorter runs are prefixes of longer ones; dropout
# on, since its masks must not depend on the number of processes either.
SCHEDULE = [
    "train.batch_size=4",
    "train.warmup_iters=2",
    "train.lr_decay_iters=20",
    "train.eval_interval=3",
    "model.dropout=0.1",
]

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

    import atexit
    import torch.nn.parallel
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    allreduces = [0]
    plain_init = torch.nn.parallel.DistributedDataParallel.__init__

    def counting_init(self, *args, **kwargs):
        plain_init(self, *args, **kwargs)

        def hook(state, bucket):
            allreduces[0] += 1
            return allreduce_hook(None, bucket)

        self.register_comm_hook(None, hook)

    torch.nn.parallel.DistributedDataParallel.__init__ = counting_init

    def save_count():
        with open(os.path.join(log, f"allreduces.{rank}"), "w") as f:
            f.write(str(allreduces[0]))

    atexit.register(save_count)
"""


def launch(tmp_path, data, out, *overrides, nproc=2, extra=(), env=None):
    """Start `torchrun -m gptkit train` (not waiting); returns the process and the audit folder."""
    audit = tmp_path / f"audit-{out.name}-{time.monotonic_ns()}"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(AUDIT)
    env = {**os.environ, "PYTHONPATH": str(audit), "AUDIT_DIR": str(audit), **(env or {})}
    settings = [arg for item in [*TINY, *SCHEDULE, *overrides] for arg in ("--set", item)]
    command = [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", "-m", "gptkit", "train"]
    command += ["--data", str(data), "--out", str(out), *settings, *extra]
    process = subprocess.Popen(  # in its own process group, like a job in a terminal
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    return process, audit


def kill_all(process, audit) -> None:
    """SIGKILL torchrun and its workers (which it starts in sessions of their own)."""
    pids = [process.pid] + [int(f.read_text()) for f in audit.glob("pid.*")]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for_checkpoint(process, run, audit) -> None:
    """Until the run has a checkpoint and both workers their pid files (the run is under way)."""
    deadline = time.monotonic() + 120
    while not ((run / "checkpoint.safetensors").exists() and (audit / "pid.1").exists()):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.2)


def run_torchrun(tmp_path, data, out, *overrides, extra=()):
    process, audit = launch(tmp_path, data, out, *overrides, extra=extra)
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output
    return output, audit


def train_single(data, out, *overrides, resume=False, init_from=None):
    """One process on one thread, as each torchrun worker (OMP_NUM_THREADS=1): the same arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(tiny_config(data, *SCHEDULE, *overrides), out, resume=resume, init_from=init_from, **QUIET)
    finally:
        torch.set_num_threads(threads)


def max_difference(run_a: Path, run_b: Path) -> float:
    a, b = load_file(run_a / "model.safetensors"), load_file(run_b / "model.safetensors")
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, small_data):
    """A 2-process run of 6 steps with grad_accum 2 (a global batch of 4 micro-batches)."""
    tmp = tmp_path_factory.mktemp("ddp")
    output, audit = run_torchrun(tmp, small_data, tmp / "ddp", "train.max_iters=6", "train.grad_accum=2")
    return tmp / "ddp", output, audit


def test_two_processes_equal_one_process_with_the_same_global_batch(ddp_run, small_data, tmp_path):
    run, output, _ = ddp_run
    train_single(small_data, tmp_path / "single", "train.max_iters=6", "train.grad_accum=4")
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


def test_lora_under_torchrun_equals_one_process(trained_run, small_data, tmp_path):
    lora = ["lora.r=4", "lora.targets=q,v,proj", "lora.dropout=0.1", "train.max_iters=4"]
    output, _ = run_torchrun(tmp_path, small_data, tmp_path / "ddp", *lora, extra=["--init-from", str(trained_run)])
    train_single(small_data, tmp_path / "single", *lora, "train.grad_accum=2", init_from=trained_run)
    assert output.count("trainable parameters") == 1 and "x 2 processes" in output
    assert max_difference(tmp_path / "ddp", tmp_path / "single") <= 1e-5  # the adapters, the only saved weights
    assert all(".lora_" in name for name in load_file(tmp_path / "ddp" / "model.safetensors"))


def test_gradients_are_synced_once_per_step(ddp_run):
    _, _, audit = ddp_run
    # A model this small fits one gradient bucket: one all-reduce per step, not one per micro-batch.
    assert [int((audit / f"allreduces.{rank}").read_text()) for rank in (0, 1)] == [6, 6]


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
    train_single(small_data, tmp_path / "single9", "train.max_iters=9", "train.grad_accum=4")
    # The same two processes continue the run ...
    same = tmp_path / "same"
    subprocess.run(["cp", "-r", str(run), str(same)], check=True)
    output, _ = run_torchrun(tmp_path, small_data, same, "train.max_iters=9", extra=["--resume"])
    assert "resuming" in output
    assert max_difference(same, tmp_path / "single9") <= 1e-5
    # ... or one process does, with grad_accum 4 keeping the global batch of 4 micro-batches.
    alone = tmp_path / "alone"
    subprocess.run(["cp", "-r", str(run), str(alone)], check=True)
    lines = []
    config = read_run_config(alone)  # what `gptkit train --out RUN --resume` starts from
    config.train.max_iters = 9
    train(config, alone, resume=True, echo=lines.append, progress=False)
    assert any("grad_accum 2 -> 4" in line for line in lines)
    assert max_difference(alone, tmp_path / "single9") <= 1e-5


def test_a_world_size_that_cannot_keep_the_global_batch_is_refused(small_data):
    from gptkit.checkpoint import TrainState
    from gptkit.errors import GptkitError
    from gptkit.train.distributed import World
    from gptkit.train.loop import check_world_size

    cfg = tiny_config(small_data).train
    with pytest.raises(GptkitError, match="cannot split evenly"):
        check_world_size(TrainState(step=3, world_size=2, grad_accum=1), World(size=3), cfg)
    assert check_world_size(TrainState(step=3, world_size=2, grad_accum=1), World(size=2), cfg) == (1, None)
    cfg.grad_accum = 3
    grad_accum, note = check_world_size(TrainState(step=3, world_size=2, grad_accum=3), World(size=3), cfg)
    assert grad_accum == 2 and "keeps 6 micro-batches" in note
    assert cfg.grad_accum == 3  # only read: the trainer sets the new value on its own copy
    cfg.grad_accum = 5  # set anew on the command line: kept, and said
    grad_accum, note = check_world_size(TrainState(step=3, world_size=2, grad_accum=3), World(size=1), cfg)
    assert grad_accum == 5 and "global batch changes" in note


def test_an_error_on_one_rank_is_reported_once_and_stops_all(tmp_path):
    script = tmp_path / "agree.py"
    script.write_text(
        "from gptkit.train.distributed import distributed\n"
        "from gptkit.errors import GptkitError\n"
        "with distributed('cpu') as world:\n"
        "    error = GptkitError('no data here') if world.rank == 1 else None\n"
        "    try:\n"
        "        world.agree(error)\n"
        "    except GptkitError as err:\n"
        "        print(f'rank {world.rank} raised: {err} (printed by rank 0 only: {err.reported_by_rank_0})')\n"
    )
    done = subprocess.run(
        [str(TORCHRUN), "--standalone", "--nproc_per_node=2", str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "rank 0 raised: rank 1: no data here (printed by rank 0 only: True)" in done.stdout
    assert "rank 1 raised: no data here (printed by rank 0 only: True)" in done.stdout


@pytest.mark.parametrize("how", ["kill -9 rank 1", "Ctrl-C"])
def test_killing_one_rank_stops_the_others_and_keeps_the_last_checkpoint(small_data, tmp_path, how):
    run = tmp_path / "killed"
    process, audit = launch(tmp_path, small_data, run, "train.max_iters=100000", "train.log_interval=50")
    try:
        wait_for_checkpoint(process, run, audit)
        time.sleep(0.5)  # mid-run, between checkpoints or inside one
        if how == "Ctrl-C":  # the terminal sends SIGINT to torchrun's process group; torchrun passes it on
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(int((audit / "pid.1").read_text()), signal.SIGKILL)
        output, _ = process.communicate(timeout=90)  # the surviving rank must not hang
    finally:
        if process.poll() is None:
            kill_all(process, audit)
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


def running(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting to be reaped does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_hung_rank_ends_the_run_after_the_timeout(small_data, tmp_path):
    run = tmp_path / "hung"
    settings = ("train.max_iters=100000", "train.log_interval=50")
    process, audit = launch(tmp_path, small_data, run, *settings, env={"GPTKIT_DIST_TIMEOUT": "5"})
    try:
        wait_for_checkpoint(process, run, audit)
        os.kill(int((audit / "pid.1").read_text()), signal.SIGSTOP)  # alive but silent, like a stuck GPU
        stopped, rank0 = time.monotonic(), int((audit / "pid.0").read_text())
        while running(rank0) and time.monotonic() - stopped < 60:
            time.sleep(0.2)
        waited = time.monotonic() - stopped
    finally:
        kill_all(process, audit)  # torchrun would wait 30 s more for the stopped rank
        output = process.communicate()[0]
    assert waited < 60, output  # 5 s of timeout, not forever
    assert "error:" in output  # rank 0 said why it stopped
    assert load_file(run / "checkpoint.safetensors")  # and the checkpoint is whole
