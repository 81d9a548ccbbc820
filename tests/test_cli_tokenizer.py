import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TINY

import gptkit
from gptkit.cli import main

GPT2_FILES = Path(__file__).parent / "fixtures" / "gpt2"


def test_import_encode_export_from_the_command_line(tmp_path, capsys):
    assert (
        main(
            [
                "tokenizer",
                "import-gpt2",
                str(GPT2_FILES / "encoder.json"),
                str(GPT2_FILES / "vocab.bpe"),
                "--out",
                str(tmp_path / "gpt2.json"),
            ]
        )
        == 0
    )
    assert main(["tokenizer", "encode", str(tmp_path / "gpt2.json"), "Hello world"]) == 0
    out = capsys.readouterr().out
    assert "[15496, 995]" in out and "' world'" in out
    assert gptkit.load_tokenizer(tmp_path / "gpt2.json").encode("Hello world") == [15496, 995]
    for fmt in ("tiktoken", "hf", "gpt2"):
        assert (
            main(["tokenizer", "export", str(tmp_path / "gpt2.json"), "--format", fmt, "--out", str(tmp_path / fmt)])
            == 0
        )
    assert (
        main(["tokenizer", "import-hf", str(tmp_path / "hf" / "tokenizer.json"), "--out", str(tmp_path / "back.json")])
        == 0
    )
    assert gptkit.load_tokenizer(tmp_path / "back.json").encode("Hello world") == [15496, 995]


@pytest.mark.slow
def test_train_bpe_prepare_train_and_sample_end_to_end(tmp_path, small_text_file):
    def run(*args):
        done = subprocess.run([sys.executable, "-m", "gptkit", *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(
        "tokenizer",
        "train",
        str(small_text_file),
        "--vocab-size",
        "400",
        "--special",
        "<|endoftext|>",
        "--out",
        str(tmp_path / "tok.json"),
    )
    assert json.loads((tmp_path / "tok.json").read_text())["specials"] == {"<|endoftext|>": 399}
    run("prepare", str(small_text_file), "--tokenizer", str(tmp_path / "tok.json"), "--out", str(tmp_path / "d"))
    run("train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--set", *TINY)
    text = run("sample", str(tmp_path / "r"), "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "2")
    assert text.startswith("ROMEO:") and len(text) > 30
    pieces = list(gptkit.load(tmp_path / "r").stream("ROMEO:", 30, seed=2))
    assert "".join(pieces) == text[len("ROMEO:") :].rstrip("\n")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["tokenizer", "train", "shakespeare", "--vocab-size", "100", "--out", "x.json"], "at least 257"),
        (["tokenizer", "encode", "nope.json", "hi"], "no tokenizer file"),
        (["tokenizer", "import-gpt2", "missing.json", "vocab.bpe", "--out", "x.json"], "no such file"),
    ],
)
def test_bad_tokenizer_input_is_a_one_line_error(args, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_tokenizer_train_reads_what_prepare_reads(tmp_path, shakespeare_text):
    """A folder of .txt files and the same documents as .jsonl records (their --field), gzipped, train the
    same tokenizer: one reader for both commands."""
    import gzip

    documents = [shakespeare_text[:15_000], shakespeare_text[15_000:30_000]]
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, text in zip(["a.txt", "b.txt"], documents, strict=True):
        (folder / name).write_text(text)
    with gzip.open(tmp_path / "records.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"body": text}) + "\n" for text in documents)
    train = ["tokenizer", "train", "--vocab-size", "400", "--out"]
    assert main([*train, str(tmp_path / "folder.json"), str(folder)]) == 0
    assert main([*train, str(tmp_path / "records.json"), str(tmp_path / "records.jsonl.gz"), "--field", "body"]) == 0
    from_folder = gptkit.load_tokenizer(tmp_path / "folder.json")
    assert gptkit.load_tokenizer(tmp_path / "records.json").merges == from_folder.merges
    assert len(from_folder.merges) == 400 - 256
