"""Training on mixtures and in stages: per-dataset validation, the stage in force, exact resume."""

import pytest
from helpers import tiny_config

from gptkit.config import DataSource, StageConfig, resolve_config
from gptkit.data.prepare import prepare
from gptkit.errors import GptkitError
from gptkit.train.data import TrainingData
from gptkit.train.loop import train
from gptkit.train.metrics import read_metrics

QUIET = {"echo": lambda line: None, "progress": False}


@pytest.fixture(scope="module")
def a_and_b(tmp_path_factory, shakespeare_text):
    folder = tmp_path_factory.mktemp("ab")
    (folder / "both.txt").write_text(shakespeare_text[:60_000])
    prepare([str(folder / "both.txt")], folder / "joint")
    tok = str(folder / "joint" / "tokenizer.json")
    (folder / "a.txt").write_text(shakespeare_text[:30_000])
    (folder / "b.txt").write_text(shakespeare_text[30_000:60_000].upper().lower())
    prepare([str(folder / "a.txt")], folder / "A", tokenizer=tok)
    prepare([str(folder / "b.txt")], folder / "B", tokenizer=tok)
    return folder / "A", folder / "B"


def staged(a, b, *sets):
    config = tiny_config(a, "train.max_iters=20", *sets)
    config.data = []
    config.stages = [StageConfig(10, [DataSource(str(a))]), StageConfig(10, [DataSource(str(b))])]
    return config


def test_a_mixture_reports_each_datasets_val_loss(tmp_path, a_and_b):
    a, b = a_and_b
    config = tiny_config(a, "train.max_iters=10")
    config.data = [DataSource(str(a), 0.7), DataSource(str(b), 0.3)]
    train(config, tmp_path / "run", **QUIET)
    evals = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "eval"]
    assert {"val_loss", "val_loss.A", "val_loss.B"} <= set(evals[-1])
    assert evals[-1]["val_loss"] == pytest.approx((evals[-1]["val_loss.A"] + evals[-1]["val_loss.B"]) / 2)


def test_stages_switch_data_at_their_step(a_and_b):
    a, b = a_and_b
    data = TrainingData(staged(a, b))
    assert [d.name for d in data.mixture_at(9).datasets] == ["A"]
    assert [d.name for d in data.mixture_at(10).datasets] == ["B"]
    assert [d.name for d in data.mixture_at(19).datasets] == ["B"]


def test_resume_in_the_middle_of_stages_is_exact(tmp_path, a_and_b):
    from safetensors.torch import load_file

    a, b = a_and_b
    train(staged(a, b, "train.lr_decay_iters=20"), tmp_path / "whole", **QUIET)
    first = staged(a, b, "train.lr_decay_iters=20")
    first.train.max_iters, first.stages[1].steps = 15, 5  # stop 5 steps into stage B
    train(first, tmp_path / "split", **QUIET)
    train(staged(a, b, "train.lr_decay_iters=20"), tmp_path / "split", resume=True, **QUIET)

    def train_losses(run):
        return [(r["step"], r["train_loss"]) for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]

    assert train_losses(tmp_path / "split") == train_losses(tmp_path / "whole")
    x, y = load_file(tmp_path / "split" / "model.safetensors"), load_file(tmp_path / "whole" / "model.safetensors")
    assert all((x[k] == y[k]).all() for k in x)


def test_stages_from_toml_and_their_checks(tmp_path, a_and_b):
    a, b = a_and_b
    toml = tmp_path / "stages.toml"
    toml.write_text(
        f'[train]\nmax_iters = 30\n[[stages]]\nsteps = 10\ndata = [{{path = "{a}"}}]\n'
        f'[[stages]]\nsteps = 20\ndata = [{{path = "{a}", weight = 1}}, {{path = "{b}", weight = 3}}]\n'
    )
    config = resolve_config(toml_path=str(toml))
    assert [s.steps for s in config.stages] == [10, 20] and config.stages[1].data[1].weight == 3
    toml.write_text(toml.read_text().replace("max_iters = 30", "max_iters = 25"))
    with pytest.raises(GptkitError, match="add up to 30"):
        resolve_config(toml_path=str(toml))
