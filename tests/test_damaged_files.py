"""Hand-edited, damaged or hostile files and settings get a one-line error naming the file or setting (exit 2),
never a bare ZeroDivisionError, KeyError or OverflowError, and never a silent wrong answer."""

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from gptkit.checkpoint import CHECKPOINT_FILE
from gptkit.cli import main
from gptkit.errors import GptkitError
from gptkit.tokenizer import load_tokenizer
from gptkit.tokenizer.char import CharTokenizer


def cli(capsys, *args: str) -> tuple[int, str]:
    """Exit code and stderr of `gptkit ARGS`, run in this process."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


# -- item 4: char ids out of range -------------------------------------------------------------------------


def test_a_negative_id_is_not_the_last_character(tmp_path, capsys):
    tok = CharTokenizer.from_text("abc")
    assert tok.decode([0, 1, 2]) == "abc"
    for bad in ([-1], [3], [0, -3]):
        with pytest.raises(GptkitError, match="outside this tokenizer's vocabulary of 3"):
            tok.decode(bad)
    tok.save(tmp_path / "tok.json")
    one_line_error(*cli(capsys, "tokenizer", "decode", tmp_path / "tok.json", "--", "-1"), "token id -1")
    with_special = CharTokenizer(["a", "b"], specials=["<|mask|>"])
    assert with_special.decode([1, 2, 0]) == "b<|mask|>a"


# -- item 8: tokenizer files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chars, says",
    [
        (["a", "b", "a"], "the character 'a' is listed twice"),
        (["a", 5], "must be lists of strings"),
        (["a", None], "must be lists of strings"),
        (["ab"], "distinct single characters"),
    ],
)
def test_damaged_char_tokenizer_files_are_named(tmp_path, chars, says):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"type": "char", "format_version": 1, "chars": chars, "unknown": None}))
    with pytest.raises(GptkitError, match=f"{path}: .*{says}"):
        load_tokenizer(path)


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda raw: raw["specials"].update({"<|endoftext|>": 10**12}), "not a token id"),
        (lambda raw: raw["specials"].update({"<|endoftext|>": 1e12}), "not a token id"),
        (lambda raw: raw["specials"].update({"<|endoftext|>": "SEVEN"}), "not a token id"),
        (lambda raw: raw["merges"].append([5, 2.5]), "not a token id"),
        (lambda raw: raw["merges"].append(raw["merges"][0]), "repeats merge 0"),
    ],
)
def test_damaged_bpe_tokenizer_files_are_named(tmp_path, change, says):
    from gptkit.tokenizer.bpe_train import train_bpe

    (tmp_path / "t.txt").write_text("hello world, hello there " * 50)
    raw = train_bpe([tmp_path / "t.txt"], vocab_size=270, specials=["<|endoftext|>"]).to_dict()
    change(raw)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(GptkitError, match=f"{path}: .*{says}"):
        load_tokenizer(path)


def test_a_number_of_five_thousand_digits_is_a_damaged_file(tmp_path, capsys):
    path = tmp_path / "tokenizer.json"
    path.write_text('{"type": "bpe", "format_version": 1, "merges": [[' + "9" * 5000 + ", 1]]}")
    one_line_error(*cli(capsys, "tokenizer", "decode", path, "1"), str(path), "not valid JSON")


# -- item 8: a run's config.json ---------------------------------------------------------------------------


@pytest.fixture
def damaged_run(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    return run


RUN_COMMANDS = [
    ["sample", "RUN", "--max-new-tokens", "2"],
    ["chat", "RUN"],
    ["export", "RUN", "--out", "OUT"],
    ["info", "RUN"],
    ["eval", "RUN", "--data", "DATA"],
    ["serve", "RUN", "--port", "0"],
    ["fill", "RUN", "a<|mask|>"],
]


@pytest.mark.parametrize("edit", ["a JSON list", "n_head=0", "n_layer=-1", "lr=NaN", "vocab_size=0"])
@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: c[0])
def test_an_edited_config_json_is_one_line_naming_it(damaged_run, small_data, tmp_path, capsys, edit, command):
    path = damaged_run / "config.json"
    raw = json.loads(path.read_text())
    if edit == "a JSON list":
        raw = [raw]
    else:
        key, value = edit.split("=")
        section = "train" if key == "lr" else "model"
        raw[section][key] = float("nan") if value == "NaN" else int(value)
    path.write_text(json.dumps(raw))
    args = [{"RUN": damaged_run, "OUT": tmp_path / "out", "DATA": small_data}.get(a, a) for a in command]
    one_line_error(*cli(capsys, *args), str(path))


# -- item 8: settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, says",
    [
        ("train.lr=nan", "`train.lr` must be a finite number"),
        ("train.lr=inf", "`train.lr` must be a finite number"),
        ("model.n_layer=1e400", "`model.n_layer` expects int, got '1e400'"),
        ("model.rope_theta=-inf", "`model.rope_theta` must be a finite number"),
    ],
)
def test_settings_that_are_no_numbers_are_named(small_data, tmp_path, capsys, setting, says):
    code, err = cli(capsys, "train", "--data", small_data, "--out", tmp_path / "r", "--set", setting)
    one_line_error(code, err, says)


@pytest.mark.parametrize(
    "toml, says",
    [
        ("[train]\nlr = true\n", "`train.lr` expects float, got True"),
        ("[train]\nmax_iters = false\n", "`train.max_iters` expects int, got False"),
        ("[train]\nlr = nan\n", "`train.lr` must be a finite number"),
        ("[model]\nn_layer = 1e400\n", "`model.n_layer` expects int"),
        ("[[data]]\npath = 'x'\nweight = inf\n", "weight inf is not a finite number"),
    ],
)
def test_toml_values_of_the_wrong_kind_are_named(small_data, tmp_path, capsys, toml, says):
    (tmp_path / "c.toml").write_text(toml)
    code, err = cli(capsys, "train", "--data", small_data, "--out", tmp_path / "r", "--config", tmp_path / "c.toml")
    one_line_error(code, err, says)


def test_a_config_built_in_python_is_checked_as_strictly(small_data):
    from helpers import tiny_config

    config = tiny_config(small_data)
    config.train.lr = float("nan")
    with pytest.raises(GptkitError, match="`train.lr` must be a finite number"):
        config.validate()
    config = tiny_config(small_data)
    config.model.n_layer = 2.0
    with pytest.raises(GptkitError, match="`model.n_layer` must be an integer"):
        config.validate()


# -- item 8: checkpoints -----------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["rng.train", "rng.torch", "metadata", "state"])
def test_a_checkpoint_missing_its_rng_or_metadata_is_named(damaged_run, capsys, damage):
    path = damaged_run / CHECKPOINT_FILE
    tensors = load_file(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        info = json.loads(handle.metadata()["gptkit"])
    metadata = {"gptkit": json.dumps(info)}
    if damage.startswith("rng."):
        tensors.pop(damage)
    elif damage == "metadata":
        metadata = {}
    else:
        metadata = {"gptkit": json.dumps({k: v for k, v in info.items() if k != "state"})}
    save_file(tensors, str(path), metadata=metadata)
    code, err = cli(capsys, "train", "--out", damaged_run, "--resume", "--set", "train.max_iters=40")
    one_line_error(code, err, str(path))


def test_a_fifo_given_as_a_file_is_called_what_it_is(tmp_path, small_data, capsys):
    import os

    os.mkfifo(tmp_path / "pipe")
    code, err = cli(capsys, "train", "--data", small_data, "--out", tmp_path / "r", "--config", tmp_path / "pipe")
    one_line_error(code, err, "pipe: a FIFO (named pipe), not a regular file")
    code, err = cli(capsys, "tokenizer", "decode", tmp_path / "pipe", "1")
    one_line_error(code, err, "pipe: no tokenizer file here (a FIFO (named pipe), not a regular file)")


def test_a_link_loop_or_a_fifo_given_as_a_folder_is_called_what_it_is(tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for command in (
        ["sample", "RUN"],
        ["train", "--data", "RUN", "--out", tmp_path / "r"],
        ["import", "RUN", "--out", "x"],
    ):
        for path, says in ((tmp_path / "loop", "a symbolic link loop"), (tmp_path / "pipe", "a FIFO (named pipe)")):
            one_line_error(*cli(capsys, *[path if a == "RUN" else a for a in command]), f"{path}: {says}")
