"""A bad argument is named as the caller spelled it: the Python argument for a library call
(`val_fraction=1.5: ...`), the flag for the same problem on the command line (`--val-fraction 1.5: ...`)."""

import pytest

from gptkit.cli import main
from gptkit.config import resolve_config
from gptkit.data.dataset import TokenDataset, open_dataset
from gptkit.data.prepare import prepare
from gptkit.errors import ArgumentError
from gptkit.tokenizer.bpe_train import train_bpe
from gptkit.viz.figure import check_png_path
from gptkit.viz.rope import rope_figure


def test_prepare_names_the_argument_and_the_cli_names_the_flag(tmp_path, small_text_file, capsys):
    with pytest.raises(ArgumentError) as err:
        prepare([str(small_text_file)], tmp_path / "d", val_fraction=1.5)
    assert str(err.value) == "val_fraction=1.5: must be in [0, 1), e.g. 0.1"
    assert "--" not in str(err.value)

    code = main(["prepare", str(small_text_file), "--out", str(tmp_path / "d"), "--val-fraction", "1.5"])
    stderr = capsys.readouterr().err
    assert code == 2
    assert "--val-fraction 1.5: must be in [0, 1), e.g. 0.1" in stderr and "val_fraction=" not in stderr, stderr
    assert not (tmp_path / "d").exists()


def test_an_out_dir_that_is_a_file_is_out_dir_in_python_and_out_on_the_command_line(tmp_path, small_text_file, capsys):
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(ArgumentError, match=r"^out_dir='.*taken': is a file, not a folder"):
        prepare([str(small_text_file)], tmp_path / "taken")
    assert main(["prepare", str(small_text_file), "--out", str(tmp_path / "taken")]) == 2
    assert f"--out {tmp_path / 'taken'}: is a file, not a folder" in capsys.readouterr().err


def test_resolve_config_names_preset_toml_path_and_overrides(tmp_path, small_data, capsys):
    with pytest.raises(ArgumentError, match=r"^preset='huge': unknown preset; choose one of .*cpu-baby"):
        resolve_config(preset="huge")
    with pytest.raises(ArgumentError, match=r"^toml_path='.*none.toml': no such file or folder"):
        resolve_config(toml_path=str(tmp_path / "none.toml"))
    with pytest.raises(ArgumentError, match=r"^overrides='n_layer=6': expected section.key=value"):
        resolve_config(overrides=["n_layer=6"])
    with pytest.raises(ArgumentError, match=r"^overrides: `train.lr` expects float, got 'fast'"):
        resolve_config(overrides=["train.lr=fast"])
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "huge"\n')  # a preset named in the file is the file's problem, not `preset`'s
    with pytest.raises(ArgumentError, match=r"^toml_path='.*c.toml': unknown preset 'huge'"):
        resolve_config(toml_path=str(toml))
    toml.write_text("[trian]\nlr = 1e-3\n")
    with pytest.raises(ArgumentError, match=r"^toml_path='.*c.toml': unknown section `trian`"):
        resolve_config(toml_path=str(toml))

    train = ["train", "--data", str(small_data), "--out", str(tmp_path / "r")]
    assert main([*train, "--set", "train.lr=fast"]) == 2
    assert "error: --set: `train.lr` expects float, got 'fast'" in capsys.readouterr().err
    assert main([*train, "--config", str(toml)]) == 2
    assert f"error: --config {toml}: unknown section `trian`" in capsys.readouterr().err
    assert main([*train, "--preset", "huge"]) == 2
    assert "error: --preset huge: unknown preset" in capsys.readouterr().err


def test_other_library_calls_name_their_arguments(tmp_path, small_data):
    with pytest.raises(ArgumentError, match=r"^dim=33: RoPE rotates pairs"):
        rope_figure(dim=33)
    with pytest.raises(ArgumentError, match=r"^out='.*x.jpg': pictures are written as PNG"):
        check_png_path(tmp_path / "x.jpg")
    with pytest.raises(ArgumentError, match=r"^vocab_size=100: must exceed 256 bytes"):
        train_bpe([], 100)
    with pytest.raises(ArgumentError, match=r"^specials: a special token cannot be the empty string") as err:
        train_bpe([], 300, specials=[""])
    assert err.value.on_command_line().startswith("--special: ")
    with pytest.raises(ArgumentError, match=r"^data='.*nowhere': no such file or folder"):
        TokenDataset(tmp_path / "nowhere")
    with pytest.raises(ArgumentError, match=r"^path='.*nowhere': no such file or folder") as err:
        open_dataset(tmp_path / "nowhere", "path", flag="--data")
    assert err.value.on_command_line().startswith(f"--data {tmp_path / 'nowhere'}: no such file or folder")


def test_a_run_in_the_way_is_out_dir_in_python_and_out_on_the_command_line(tmp_path, small_data, capsys):
    import gptkit
    from gptkit.hf.folder import check_export_target

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")  # what marks a folder as holding a run
    with pytest.raises(ArgumentError, match=r"^out_dir='.*run': already holds a run; resume=True \(--resume\)"):
        gptkit.train(run, data=small_data, progress=False, echo=lambda line: None)
    assert main(["train", "--data", str(small_data), "--out", str(run)]) == 2
    assert f"error: --out {run}: already holds a run; resume=True (--resume)" in capsys.readouterr().err
    with pytest.raises(ArgumentError, match=r"^out_dir='.*run': would replace the run"):
        check_export_target(run, run)
