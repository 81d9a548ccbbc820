"""Shared fixtures: a slice of the bundled Tiny Shakespeare, a prepared dataset, a tiny trained run, and a chat
model fine-tuned from it."""

import json
import random
from pathlib import Path

import pytest
from helpers import tiny_config

from gptkit.data.prepare import BUNDLED, prepare


@pytest.fixture(scope="session")
def shakespeare_text() -> str:
    return BUNDLED["shakespeare"].read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def small_text_file(tmp_path_factory, shakespeare_text) -> Path:
    path = tmp_path_factory.mktemp("text") / "small.txt"
    path.write_text(shakespeare_text[:60_000], encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def small_data(tmp_path_factory, small_text_file) -> Path:
    out = tmp_path_factory.mktemp("data") / "small"
    prepare([str(small_text_file)], out)
    return out


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, small_data) -> Path:
    from gptkit.train.loop import train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config(small_data), run_dir, echo=lambda line: None, progress=False)
    return run_dir


def write_reversals(path, count: int, seed: int = 0) -> None:
    """Conversations asking to reverse short lowercase words (letters only: the char vocabulary has them)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(count):
            word = "".join(rng.choice("abcdefgh") for _ in range(3))
            messages = [{"role": "user", "content": word}, {"role": "assistant", "content": word[::-1]}]
            f.write(json.dumps({"messages": messages}) + "\n")


@pytest.fixture(scope="session")
def chat_data(tmp_path_factory, trained_run):
    folder = tmp_path_factory.mktemp("chat")
    write_reversals(folder / "c.jsonl", 120)
    from gptkit.cli import main

    args = ["prepare", "--chat", str(folder / "c.jsonl"), "--tokenizer", str(trained_run), "--out", str(folder / "d")]
    assert main(args) == 0
    return folder / "d"


@pytest.fixture(scope="session")
def chat_run(tmp_path_factory, trained_run, chat_data):
    """A chat model: the tiny run fine-tuned (`--preset sft`) to reverse three-letter words."""
    from gptkit.cli import main

    out = tmp_path_factory.mktemp("runs") / "chat"
    args = ["train", "--data", str(chat_data), "--init-from", str(trained_run), "--out", str(out), "--preset", "sft"]
    assert main([*args, "--set", "train.max_iters=30", "train.eval_interval=15", "train.device=cpu"]) == 0
    return out
