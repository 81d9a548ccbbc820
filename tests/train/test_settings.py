"""Training from Python as from the command line: `gptkit.train(...)`, resume with no config, configs left as given."""

import pytest
from helpers import TINY, tiny_config

import gptkit
from gptkit.config import RunConfig
from gptkit.errors import GptkitError
from gptkit.train.loop import train
from gptkit.train.settings import run_settings

QUIET = {"echo": lambda line: None, "progress": False}


def test_train_and_resume_from_python_with_no_config(small_data, tmp_path):
    run = tmp_path / "run"
    first = gptkit.train(run, data=small_data, overrides=[*TINY, "train.max_iters=10"], **QUIET)
    assert first.step == 10
    resumed = gptkit.train(run, resume=True, overrides=["train.max_iters=20"], **QUIET)
    assert resumed.step == 20
    assert gptkit.load(run, device="cpu").config.train.max_iters == 20
    with pytest.raises(GptkitError, match="already finished its 20 steps"):
        gptkit.train(run, resume=True, **QUIET)


def test_a_config_passed_in_is_never_changed(small_data, tmp_path):
    config = tiny_config(small_data, "train.max_iters=4", "train.eval_interval=4")
    before = config.to_dict()
    assert before["model"]["vocab_size"] == 0
    train(config, tmp_path / "a", **QUIET)
    gptkit.train(tmp_path / "b", config=config, overrides=["train.max_iters=2"], **QUIET)
    assert config.to_dict() == before


def test_training_data_reads_its_config_without_changing_it(small_data):
    from gptkit.train.data import TrainingData

    config = tiny_config(small_data)
    before = config.to_dict()
    assert before["model"]["vocab_size"] == 0
    data = TrainingData(config)
    assert data.vocab_size == data.tokenizer.vocab_size > 0  # found in the data, for the trainer's own copy
    assert config.to_dict() == before


def test_settings_resolve_as_the_command_line_does(trained_run, small_data, tmp_path):
    resumed = run_settings(trained_run, resume=True, overrides=["train.max_iters=99"])
    assert resumed.train.max_iters == 99 and resumed.model.vocab_size > 0  # the run's own settings
    tuned = run_settings(tmp_path / "x", init_from=trained_run, preset="llama-tiny", data=small_data)
    assert tuned.model.n_embd == 32 and tuned.model.pos == "learned"  # the shape is the run's; llama's train part
    with pytest.raises(GptkitError, match="give one of them"):
        run_settings(trained_run, resume=True, init_from=trained_run)
    with pytest.raises(GptkitError, match="not both"):
        run_settings(tmp_path / "y", config=RunConfig(), preset="cpu-baby")
    with pytest.raises(GptkitError, match="not both"):
        run_settings(trained_run, config=RunConfig(), resume=True)
    with pytest.raises(GptkitError, match="model.causal`=false"):
        run_settings(tmp_path / "z", overrides=["train.objective=mlm"])
