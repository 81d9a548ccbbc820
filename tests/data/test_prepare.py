import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import read_split

from gptkit.data.prepare import prepare
from gptkit.errors import GptkitError
from gptkit.tokenizer import load_tokenizer


def test_bundled_shakespeare_splits_like_nanogpt(tmp_path):
    meta = prepare(["shakespeare"], tmp_path / "d")
    # nanoGPT's data/shakespeare_char/prepare.py reports these counts for the same 90/10 character split.
    assert (meta["train_tokens"], meta["val_tokens"], meta["vocab_size"]) == (1_003_854, 111_540, 65)
    assert meta["dtype"] == "uint16"
    assert meta["sources"][0]["sha256"] == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def test_tokens_on_disk_decode_back_to_the_text(tmp_path, small_text_file):
    out = tmp_path / "d"
    meta = prepare([str(small_text_file)], out, val_fraction=0.25)
    tok = load_tokenizer(out)
    text = small_text_file.read_text()
    assert tok.decode(read_split(out, "train")) + tok.decode(read_split(out, "val")) == text
    assert meta["val_tokens"] == len(text) - int(len(text) * 0.75)
    assert meta["sources"][0]["sha256"] == hashlib.sha256(small_text_file.read_bytes()).hexdigest()


def test_several_files_and_a_folder(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha\n")
    (folder / "sub" / "b.md").write_text("beta")  # no trailing newline: one is added between documents
    (folder / ".hidden").write_text("SECRET")
    extra = tmp_path / "c.txt"
    extra.write_text("gamma\n")
    out = tmp_path / "d"
    meta = prepare([str(folder), str(extra)], out, val_fraction=0.0)
    text = load_tokenizer(out).decode(read_split(out, "train"))
    assert text == "alpha\nbeta\ngamma\n"
    assert [s["path"].split("/")[-1] for s in meta["sources"]] == ["a.txt", "b.md", "c.txt"]
    assert meta["val_tokens"] == 0


def test_large_vocabulary_switches_to_uint32(tmp_path):
    text = "".join(chr(0x10000 + i) for i in range(70_000))  # 70k distinct characters > 2**16 ids
    (tmp_path / "wide.txt").write_text(text, encoding="utf-8")
    meta = prepare([str(tmp_path / "wide.txt")], tmp_path / "d", val_fraction=0.0)
    assert meta["dtype"] == "uint32"
    assert read_split(tmp_path / "d", "train").max() == 69_999


def test_reusing_a_tokenizer_keeps_ids_identical(tmp_path, small_data, small_text_file):
    meta = prepare([str(small_text_file)], tmp_path / "d", tokenizer=str(small_data / "tokenizer.json"))
    assert meta["vocab_size"] == json.loads((small_data / "meta.json").read_text())["vocab_size"]
    assert np.array_equal(read_split(tmp_path / "d", "train"), read_split(small_data, "train"))


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("empty.txt", b"", "is empty"),
        ("latin1.txt", "café".encode("latin-1"), "invalid byte 0xe9 at offset 3"),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL byte at offset 8"),
    ],
)
def test_bad_files_name_the_file_and_leave_nothing_behind(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "d"
    with pytest.raises(GptkitError, match=expected) as err:
        prepare([str(path)], out)
    assert name in str(err.value)
    assert not out.exists()


def test_missing_path_and_bad_fraction(tmp_path):
    with pytest.raises(GptkitError, match="no such file or folder"):
        prepare([str(tmp_path / "nope.txt")], tmp_path / "d")
    with pytest.raises(GptkitError, match=r"val_fraction=1.0: must be in \[0, 1\)"):
        prepare(["shakespeare"], tmp_path / "d", val_fraction=1.0)


GPT2_FILES = Path(__file__).parent.parent / "fixtures" / "gpt2"


@pytest.fixture(scope="module")
def gpt2_json(tmp_path_factory):
    from gptkit.tokenizer.formats import import_gpt2

    path = tmp_path_factory.mktemp("tok") / "gpt2.json"
    import_gpt2(GPT2_FILES / "encoder.json", GPT2_FILES / "vocab.bpe").save(path)
    return path


def test_gpt2_bpe_on_shakespeare_splits_like_nanogpt(tmp_path, gpt2_json):
    meta = prepare(["shakespeare"], tmp_path / "d", tokenizer=str(gpt2_json))
    # nanoGPT's data/shakespeare/prepare.py: "train has 301,966 tokens, val has 36,059 tokens".
    assert (meta["train_tokens"], meta["val_tokens"], meta["vocab_size"]) == (301_966, 36_059, 50257)
    assert meta["dtype"] == "uint16"


def test_documents_are_separated_by_endoftext(tmp_path, gpt2_json):
    (tmp_path / "a.txt").write_text("First document.")
    (tmp_path / "b.txt").write_text("Second one.")
    prepare(
        [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], tmp_path / "d", tokenizer=str(gpt2_json), val_fraction=0.0
    )
    ids = read_split(tmp_path / "d", "train").tolist()
    assert ids.count(50256) == 1
    assert load_tokenizer(tmp_path / "d").decode(ids) == "First document.<|endoftext|>Second one."


def test_special_token_text_inside_a_document_names_the_file(tmp_path, gpt2_json):
    (tmp_path / "odd.txt").write_text("text with <|endoftext|> inside")
    with pytest.raises(GptkitError, match="odd.txt: the text contains the special token"):
        prepare([str(tmp_path / "odd.txt")], tmp_path / "d", tokenizer=str(gpt2_json))
