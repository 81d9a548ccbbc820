"""Objectives as objects: the rest of gptkit asks the objective, old run directories keep working, and the
`[mlm]` settings still answer to their old `train.mlm_*` names."""

import json
import subprocess
from pathlib import Path

import pytest
from helpers import TINY

import gptkit
from gptkit.cli import main
from gptkit.config import RunConfig, resolve_config
from gptkit.errors import GptkitError
from gptkit.objectives import OBJECTIVES, objective_for
from gptkit.run import load_run

MLM = [*TINY, "train.objective=mlm", "model.causal=false", "train.max_iters=20", "train.eval_interval=10"]


def as_written_by_the_old_layout(run) -> None:
    """Rewrite a run's config.json as gptkit wrote it before `[mlm]` existed (its settings under train.mlm_*)."""
    path = run / "config.json"
    raw = json.loads(path.read_text())
    for key, value in raw.pop("mlm").items():
        raw["train"][f"mlm_{key}"] = value
    path.write_text(json.dumps(raw))


def test_an_old_mlm_run_loads_fills_evaluates_and_resumes(small_data, tmp_path, capsys):
    run = tmp_path / "mlm"
    sets = [a for s in [*MLM, "mlm.whole_word=true", "mlm.prob=0.2"] for a in ("--set", s)]
    assert main(["train", "--data", str(small_data), "--out", str(run), *sets]) == 0
    as_written_by_the_old_layout(run)
    assert "mlm_whole_word" in (run / "config.json").read_text()
    loaded = load_run(run, device="cpu")
    assert loaded.config.mlm.whole_word is True and loaded.config.mlm.prob == 0.2
    assert loaded.objective.name == "mlm" and not loaded.objective.generates_text
    assert main(["fill", str(run), "ROMEO: <|mask|>ut"]) == 0
    assert main(["eval", str(run), "--data", str(small_data), "--json"]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--set", "train.max_iters=30"]) == 0
    assert '"mlm": {' in (run / "config.json").read_text()  # written back in the new layout
    assert main(["sample", str(run)]) == 2 and "gptkit fill" in capsys.readouterr().err


def test_old_setting_names_still_work_on_the_command_line_and_in_toml(tmp_path):
    config = resolve_config(overrides=["train.mlm_prob=0.3", "train.mlm_passages=line"])
    assert config.mlm.prob == 0.3 and config.mlm.passages == "line"
    assert resolve_config(overrides=["mlm.prob=0.2", "train.mlm_prob=0.3"]).mlm.prob == 0.3  # later wins
    (tmp_path / "c.toml").write_text("[mlm]\nwhole_word = true\n[train]\nmlm_mask = 0.5\n")
    config = resolve_config(toml_path=str(tmp_path / "c.toml"))
    assert config.mlm.whole_word is True and config.mlm.mask == 0.5
    with pytest.raises(GptkitError, match="`mlm.passages`='sentence' is not one of paragraph, line"):
        resolve_config(overrides=["mlm.passages=sentence"])


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_objective_refuses_a_model_it_cannot_train(name):
    wrong_causal = {"causal": "false", "mlm": "true", "sft": "false"}[name]
    config = resolve_config(overrides=[f"train.objective={name}", f"model.causal={wrong_causal}"])
    with pytest.raises(GptkitError, match="model.causal`=false"):
        objective_for(config).check()


def test_the_causal_objective_is_the_default_and_refuses_masked_tasks(trained_run):
    assert objective_for(RunConfig()).name == "causal"
    run = load_run(trained_run, device="cpu")
    with pytest.raises(GptkitError, match="is not a masked language model"):
        run.objective.fill(run, "a <|mask|>")
    with pytest.raises(GptkitError, match="^whole_word: only a masked LM masks whole words"):
        run.objective.evaluate(run, data=[], whole_word=True)
    assert run.objective.evaluate(run, data=[], whole_word=False) == []  # --whole-word no: nothing to change


def test_no_module_outside_the_objectives_tests_an_objective_by_name():
    root = Path(gptkit.__file__).parent.parent
    found = subprocess.run(
        ["grep", "-rn", r"objective ==\|mlm_", "gptkit", "--include=*.py"], capture_output=True, text=True, cwd=root
    ).stdout.splitlines()
    outside = [line for line in found if not line.startswith(("gptkit/objectives/", "gptkit/config.py:"))]
    assert not outside
    assert all("MOVED_KEYS" in line for line in found if line.startswith("gptkit/config.py:"))
