import subprocess
import sys

import pytest
from helpers import TINY

from gptkit.cli import main


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gptkit", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_prepare_train_sample_end_to_end(tmp_path, small_text_file):
    done = cli("prepare", str(small_text_file), "--tokenizer", "char", "--out", str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert "train" in done.stdout and "val tokens" in done.stdout
    done = cli("train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--set", *TINY)
    assert done.returncode == 0, done.stderr
    assert "final val loss" in done.stdout and "tok/s" in done.stdout and "MFU" in done.stdout
    sample = [
        "sample",
        str(tmp_path / "run"),
        "--prompt",
        "ROMEO:",
        "--max-new-tokens",
        "40",
        "--temperature",
        "0.8",
        "--top-k",
        "40",
        "--top-p",
        "0.95",
        "--seed",
        "1",
    ]
    first, second = cli(*sample), cli(*sample)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("ROMEO:") and len(first.stdout) >= 46
    assert first.stdout == second.stdout  # seeded
    greedy = cli("sample", str(tmp_path / "run"), "--temperature", "0", "--num-samples", "2", "--max-new-tokens", "20")
    halves = greedy.stdout.split("-" * 40)
    assert len(halves) == 2 and halves[0].strip() == halves[1].strip()
    bad = cli("sample", str(tmp_path / "run"), "--prompt", "café")
    assert bad.returncode == 2 and bad.stdout == ""  # checked before anything is printed
    assert bad.stderr.startswith("error: --prompt: character 'é'")


@pytest.fixture
def bad_inputs(tmp_path, small_data):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    return {
        "missing file": ["prepare", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "d")],
        "empty file": ["prepare", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "d")],
        "binary file": ["prepare", str(tmp_path / "blob.bin"), "--out", str(tmp_path / "d")],
        "wrong run dir": ["sample", str(tmp_path)],
        "missing run dir": ["sample", str(tmp_path / "no-run")],
        "bad --set key": ["train", "--data", str(small_data), "--out", str(tmp_path / "r"), "--set", "model.layers=2"],
        "not prepared data": ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r")],
        "bad --config": ["train", "--config", str(tmp_path / "none.toml"), "--out", str(tmp_path / "r")],
    }


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing file", "no such file"),
        ("empty file", "empty"),
        ("binary file", "offset 0"),
        ("wrong run dir", "not a gptkit run"),
        ("missing run dir", "no such file or folder; pass a folder written by"),
        ("bad --set key", "unknown key `model.layers`"),
        ("not prepared data", "gptkit prepare"),
        ("bad --config", "no such file"),
    ],
)
def test_bad_input_gives_a_one_line_error(bad_inputs, case, expected, capsys):
    assert main(bad_inputs[case]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err
    assert err.count("\n") == 1, err


def test_sample_stop_and_repetition_penalty(trained_run, capsys):
    args = ["sample", str(trained_run), "--prompt", "A", "--max-new-tokens", "200", "--seed", "3", "--temperature", "1"]
    assert main(args) == 0
    free = capsys.readouterr().out
    stop = free[1:][5:7]  # two characters the unstopped sample produces after its first five
    assert main([*args, "--stop", stop]) == 0
    stopped = capsys.readouterr().out
    assert stopped.rstrip("\n") == free[: free.index(stop, 1)] and stop not in stopped[1:]
    assert main([*args, "--repetition-penalty", "1.5"]) == 0
    assert capsys.readouterr().out != free


def test_info_lists_presets_with_gpt2_sizes(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "gpt2 " in out and "124.44M" in out and "1557.61M" in out and "llama-tiny" in out
