"""Parquet and Arrow input: the same tokens as the same text from a folder of .txt files, read by row group."""

from pathlib import Path

import pytest
from helpers import read_split

from gptkit.cli import main
from gptkit.data.prepare import prepare
from gptkit.errors import GptkitError

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

GPT2_FILES = Path(__file__).parent.parent / "fixtures" / "gpt2"


@pytest.fixture(scope="module")
def documents(shakespeare_text) -> list[str]:
    """Forty documents of varying length, a Korean one among them."""
    korean = (GPT2_FILES.parent / "korean" / "hyeon_jingeon_unsu_joeun_nal.txt").read_text(encoding="utf-8")[:3000]
    parts = [shakespeare_text[i * 997 : i * 997 + 300 + 37 * i] for i in range(39)]
    return [*parts[:20], korean, *parts[20:]]


@pytest.fixture(scope="module")
def gpt2_json(tmp_path_factory):
    from gptkit.tokenizer.formats import import_gpt2

    path = tmp_path_factory.mktemp("tok") / "gpt2.json"
    import_gpt2(GPT2_FILES / "encoder.json", GPT2_FILES / "vocab.bpe").save(path)
    return path


def txt_folder(folder: Path, documents: list[str]) -> Path:
    folder.mkdir()
    for i, text in enumerate(documents):
        (folder / f"{i:03d}.txt").write_text(text, encoding="utf-8")  # sorted names: the rows' order
    return folder


def both_splits(folder) -> list[list[int]]:
    return [read_split(folder, split).tolist() for split in ("train", "val")]


@pytest.mark.parametrize("column", ["text", "content"])
def test_parquet_prepares_to_the_tokens_of_the_same_text_files(tmp_path, documents, gpt2_json, column):
    table = pa.table({"id": list(range(len(documents))), column: documents})
    pq.write_table(table, tmp_path / "corpus.parquet", row_group_size=7)  # six row groups, read one at a time
    assert pq.ParquetFile(tmp_path / "corpus.parquet").num_row_groups == 6
    expected = prepare([str(txt_folder(tmp_path / "txt", documents))], tmp_path / "a", tokenizer=str(gpt2_json))
    got = prepare([str(tmp_path / "corpus.parquet")], tmp_path / "b", tokenizer=str(gpt2_json), text_field=column)
    assert both_splits(tmp_path / "b") == both_splits(tmp_path / "a")
    assert got["documents"] == expected["documents"] == len(documents)
    assert got["characters"] == expected["characters"]


def test_a_datasets_save_to_disk_folder_of_arrow_streams(tmp_path, documents, gpt2_json):
    """`datasets.save_to_disk` writes Arrow IPC streams beside two JSON files that are not text."""
    folder = tmp_path / "saved"
    folder.mkdir()
    halves = [documents[:25], documents[25:]]
    for i, half in enumerate(halves):
        table = pa.table({"text": half})
        with pa.ipc.new_stream(str(folder / f"data-0000{i}-of-00002.arrow"), table.schema) as writer:
            for batch in table.to_batches(max_chunksize=6):
                writer.write_batch(batch)
    (folder / "state.json").write_text('{"_data_files": []}')
    (folder / "dataset_info.json").write_text("{}")
    prepare([str(txt_folder(tmp_path / "txt", documents))], tmp_path / "a", tokenizer=str(gpt2_json))
    prepare([str(folder)], tmp_path / "b", tokenizer=str(gpt2_json))
    assert both_splits(tmp_path / "b") == both_splits(tmp_path / "a")


def test_a_missing_column_names_the_columns_found(tmp_path, documents, capsys):
    pq.write_table(pa.table({"id": [1, 2], "body": documents[:2]}), tmp_path / "corpus.parquet")
    with pytest.raises(GptkitError, match=r"corpus.parquet: no column 'text' \(columns: id, body\); pass"):
        prepare([str(tmp_path / "corpus.parquet")], tmp_path / "d")
    assert not (tmp_path / "d").exists()
    assert main(["prepare", str(tmp_path / "corpus.parquet"), "--field", "id", "--out", str(tmp_path / "d")]) == 2
    assert "column 'id' holds int64, not text" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "corpus.parquet"), "--field", "body", "--out", str(tmp_path / "d")]) == 0


def test_without_pyarrow_the_error_says_what_to_install(tmp_path, documents, monkeypatch):
    pq.write_table(pa.table({"text": documents[:2]}), tmp_path / "corpus.parquet")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # as if it were not installed
    with pytest.raises(GptkitError, match=r"needs pyarrow: pip install 'gptkit\[parquet\]'"):
        prepare([str(tmp_path / "corpus.parquet")], tmp_path / "d")


def test_folders_of_parquet_read_only_the_data(tmp_path, documents, gpt2_json):
    """A dataset repository's README and a DatasetDict's several splits are no training text."""
    folder = tmp_path / "repo"
    folder.mkdir()
    pq.write_table(pa.table({"text": documents}), folder / "train-00000.parquet")
    (folder / "README.md").write_text("# A dataset card, not training text")
    prepare([str(txt_folder(tmp_path / "txt", documents))], tmp_path / "a", tokenizer=str(gpt2_json))
    prepare([str(folder)], tmp_path / "b", tokenizer=str(gpt2_json))
    assert both_splits(tmp_path / "b") == both_splits(tmp_path / "a")
    (folder / "dataset_dict.json").write_text('{"splits": ["train", "test"]}')
    with pytest.raises(GptkitError, match="a DatasetDict folder .* pass one split's folder, e.g. .*train"):
        prepare([str(folder)], tmp_path / "c")
