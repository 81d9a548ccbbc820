"""What a killed or hand-edited run leaves behind does not break the next command: `kill -9` during checkpoint
writes leaves no temp file after a resume, and metrics lines that are not records are skipped with a warning."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from gptkit.cli import main
from gptkit.train.metrics import read_metrics

# Writes a checkpoint and weights under the run's own file names over and over, as training does at each eval,
# until killed. The model is made bigger than the run's so that each write takes a while.
SAVE_FOREVER = """
import sys, torch
from pathlib import Path
from gptkit.checkpoint import read_run_config, save_checkpoint, save_weights, TrainState
from gptkit.model import GPT
run = Path(sys.argv[1])
config = read_run_config(run)
config.model.n_layer, config.model.n_embd = 100, 128  # about 20M parameters: writes of 0.1-0.3 GB
model = GPT(config.model)
optimizer = torch.optim.AdamW(model.parameters())
model(torch.zeros(1, 4, dtype=torch.long))[0].sum().backward()
optimizer.step()
generators = {"train": torch.Generator().manual_seed(0)}
print("ready", flush=True)
while True:
    save_checkpoint(run / "checkpoint.safetensors", model, optimizer, TrainState(), generators, torch.device("cpu"))
    save_weights(model, run / "model.safetensors")
"""


def hidden_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.slow
def test_kill_9_during_checkpoint_writes_leaves_no_temp_file_after_resume(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    left = set()
    for delay in (0.3, 0.7, 1.1):
        writer = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(run)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        left |= set(hidden_files(run))
    assert left, "no kill landed during a write; the test proves nothing"
    for name in ("checkpoint.safetensors", "model.safetensors"):  # the run's own files back, the leftovers stay
        shutil.copy(trained_run / name, run / name)
    assert main(["train", "--out", str(run), "--resume", "--set", "train.max_iters=40"]) == 0
    assert hidden_files(run) == []


def test_resume_removes_what_older_versions_and_killed_writes_left(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / ".tmpA1b2C3").write_bytes(b"x" * 100)  # safetensors' own temp name, as a kill left it before
    (run / ".checkpoint.safetensors.k3j4.tmpdir").mkdir()
    (run / ".checkpoint.safetensors.k3j4.tmpdir" / "checkpoint.safetensors").write_bytes(b"half")
    (run / ".model.safetensors.abcd.tmp").write_bytes(b"half")
    (run / ".mine").write_text("a user's own hidden file stays")
    assert main(["train", "--out", str(run), "--resume", "--set", "train.max_iters=40"]) == 0
    assert hidden_files(run) == [".mine"]


@pytest.mark.parametrize("line", ["[1, 2]", '"x"', '{"step": null}', '{"step": 5, "kind": 3}', '{"step": "5"}', "7"])
def test_metrics_lines_that_are_not_records_are_skipped_with_a_warning(trained_run, tmp_path, line, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines.insert(3, line)
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match=r"metrics.jsonl:4: .*line skipped"):
        records = read_metrics(run / "metrics.jsonl")
    assert len(records) == len(lines) - 1
    assert main(["plot", str(run), "--out", str(tmp_path / "curves.png")]) == 0
    assert "metrics.jsonl:4:" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--set", "train.max_iters=40"]) == 0
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 40
    assert all(isinstance(json.loads(x), dict) for x in (run / "metrics.jsonl").read_text().splitlines())
