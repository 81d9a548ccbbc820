import pytest
import torch

import gptkit
from gptkit.errors import GptkitError


def test_load_and_generate_from_python(trained_run):
    run = gptkit.load(trained_run)
    assert run.tokenizer.vocab_size == run.config.model.vocab_size
    assert not run.model.training
    text = run.generate("ROMEO:", max_new_tokens=50, temperature=0.8, seed=1)
    assert len(text) == 50  # char tokenizer: one character per token
    assert text == run.generate("ROMEO:", max_new_tokens=50, temperature=0.8, seed=1)
    assert "".join(run.stream("ROMEO:", 50, temperature=0.8, seed=1)) == text


def test_generate_ids_for_your_own_tokenizer(trained_run):
    run = gptkit.load(trained_run, weights="best")
    new = run.generate_ids(torch.zeros((3, 4), dtype=torch.long), max_new_tokens=7, temperature=0)
    assert new.shape == (3, 7)
    assert torch.equal(new[0], new[2])  # same prompt, greedy: same continuation


def test_long_prompt_is_cropped_with_one_warning(trained_run):
    run = gptkit.load(trained_run)
    with pytest.warns(UserWarning, match="longer than block_size") as record:
        run.generate("ROMEO " * 50, max_new_tokens=5, seed=0)
    assert len(record) == 1


def test_unknown_prompt_character_and_bad_run_dir_are_clear(trained_run, tmp_path):
    run = gptkit.load(trained_run)
    with pytest.raises(GptkitError, match="U\\+00E9"):
        run.generate("café", max_new_tokens=5)
    with pytest.raises(GptkitError, match="not a gptkit run"):
        gptkit.load(tmp_path)


def test_one_set_of_sampling_settings_for_python_and_the_command_line(trained_run, capsys):
    from gptkit.cli import main

    run = gptkit.load(trained_run)
    settings = gptkit.SamplingConfig(max_new_tokens=30, temperature=0.8, top_k=10, seed=4)
    text = run.generate("ROMEO:", sampling=settings)
    assert text == run.generate("ROMEO:", 30, top_k=10, seed=4)  # the defaults fill in the rest
    assert text == run.generate("ROMEO:", sampling=settings.with_changes(seed=9), seed=4)  # keywords win
    args = ["sample", str(trained_run), "--prompt", "ROMEO:", "--max-new-tokens", "30", "--top-k", "10", "--seed", "4"]
    assert main(args) == 0
    assert capsys.readouterr().out == "ROMEO:" + text + "\n"  # sample's defaults are the same ones


def test_library_errors_name_the_argument_and_the_cli_names_the_flag(trained_run, capsys):
    from gptkit.cli import main

    run = gptkit.load(trained_run)
    with pytest.raises(GptkitError, match=r"^top_k=0: must be >= 1"):
        run.generate("A", top_k=0)
    with pytest.raises(GptkitError, match=r"^prompt: character 'é'"):
        run.generate("café")
    with pytest.raises(GptkitError, match="unknown sampling option 'temprature'"):
        run.generate("A", temprature=0.5)
    assert main(["sample", str(trained_run), "--temperature", "-1"]) == 2
    assert "error: --temperature -1.0: must be >= 0" in capsys.readouterr().err
    assert main(["sample", str(trained_run), "--prompt", "café"]) == 2
    assert "error: --prompt: character 'é'" in capsys.readouterr().err
