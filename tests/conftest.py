"""Shared fixtures: a slice of the bundled Tiny Shakespeare, a prepared dataset and tiny model configs."""

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
