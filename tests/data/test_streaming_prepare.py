"""Streaming prepare: every input kind, shards, workers, restarts, and the errors users meet."""

import gzip
import json

import numpy as np
import pytest
from helpers import read_split

from gptkit import sources
from gptkit.data import prepare as prepare_module
from gptkit.data.prepare import prepare
from gptkit.errors import GptkitError
from gptkit.tokenizer import load_tokenizer


def all_text(out) -> str:
    tok = load_tokenizer(out)
    return tok.decode(read_split(out, "train")) + tok.decode(read_split(out, "val"))


def test_jsonl_and_gzip_documents(tmp_path):
    records = [{"text": f"document {i}\n", "id": i} for i in range(5)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("compressed text\n")
    meta = prepare([str(tmp_path / "a.jsonl"), str(tmp_path / "b.txt.gz")], tmp_path / "d", val_fraction=0.0)
    assert all_text(tmp_path / "d") == "".join(r["text"] for r in records) + "compressed text\n"
    assert meta["documents"] == 6 and [s["documents"] for s in meta["sources"]] == [5, 1]


def test_small_blocks_shards_and_two_workers_change_nothing(tmp_path, shakespeare_text, monkeypatch):
    (tmp_path / "t.txt").write_text(shakespeare_text[:120_000])
    (tmp_path / "gpt2").mkdir()
    reference = prepare([str(tmp_path / "t.txt")], tmp_path / "one")
    monkeypatch.setattr(sources, "READ_BYTES", 999)  # many read blocks
    monkeypatch.setattr(prepare_module, "JOB_CHARS", 5000)  # many encoding jobs, cut between words
    meta = prepare([str(tmp_path / "t.txt")], tmp_path / "many", workers=2, shard_tokens=30_000)
    assert len(meta["splits"]["train"]) == 4  # 108,000 train tokens in shards of 30,000
    for split in ("train", "val"):
        assert np.array_equal(read_split(tmp_path / "one", split), read_split(tmp_path / "many", split))
    assert meta["splits"]["train"][0]["sha256"] != reference["splits"]["train"][0]["sha256"]  # shards differ


def test_bpe_documents_cut_into_jobs_encode_as_a_whole(tmp_path, shakespeare_text, monkeypatch):
    from tokenizer.conftest import GPT2_DIR

    from gptkit.tokenizer.formats import import_gpt2

    tok = import_gpt2(GPT2_DIR / "encoder.json", GPT2_DIR / "vocab.bpe")
    tok.save(tmp_path / "gpt2.json")
    text = shakespeare_text[:50_000]
    (tmp_path / "t.txt").write_text(text)
    monkeypatch.setattr(prepare_module, "JOB_CHARS", 3000)
    prepare(
        [str(tmp_path / "t.txt")], tmp_path / "d", tokenizer=str(tmp_path / "gpt2.json"), val_fraction=0.0, workers=2
    )
    assert read_split(tmp_path / "d", "train").tolist() == tok.encode(text)


def test_a_rerun_replaces_everything_and_an_interrupted_one_leaves_the_old_dataset(
    tmp_path, shakespeare_text, monkeypatch
):
    (tmp_path / "t.txt").write_text(shakespeare_text[:20_000])
    prepare([str(tmp_path / "t.txt")], tmp_path / "d", shard_tokens=2000)
    prepare([str(tmp_path / "t.txt")], tmp_path / "d", shard_tokens=5000)
    assert len(list((tmp_path / "d").glob("train-*.bin"))) == 4  # the 2000-token shards are gone
    before = {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "encode_job", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare([str(tmp_path / "t.txt")], tmp_path / "d", shard_tokens=1000)
    assert {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "t.txt"]  # no half-built folder beside it


@pytest.mark.parametrize(
    "lines, expected",
    [
        (['{"body": "x"}'], "a.jsonl:1: no text field 'text' (found: body); pass text_field=NAME (--field NAME)"),
        (['{"text": "ok"}', "{broken"], "a.jsonl:2: not a JSON object"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, lines, expected):
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(GptkitError, match=expected.replace("(", "\\(").replace(")", "\\)")):
        prepare([str(tmp_path / "a.jsonl")], tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_text_the_given_tokenizer_cannot_encode_names_the_file(tmp_path, small_data):
    (tmp_path / "new.txt").write_text("plain words and a rare character: ж")
    with pytest.raises(GptkitError, match="new.txt: character 'ж'"):
        prepare([str(tmp_path / "new.txt")], tmp_path / "d", tokenizer=str(small_data / "tokenizer.json"))


def test_jsonl_records_are_separated_and_empty_ones_skipped(tmp_path):
    lines = [json.dumps({"text": t}) for t in ("abc", "", "xyz\n", "end")]
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())  # with a byte-order mark
    meta = prepare([str(tmp_path / "a.jsonl")], tmp_path / "d", val_fraction=0.0)
    assert all_text(tmp_path / "d") == "abc\nxyz\nend" and meta["documents"] == 3


def test_text_without_spaces_is_still_cut_into_bounded_jobs(tmp_path, monkeypatch):
    import random

    from tokenizer.conftest import GPT2_DIR

    from gptkit.sources import resolve_sources
    from gptkit.tokenizer.formats import import_gpt2

    tok = import_gpt2(GPT2_DIR / "encoder.json", GPT2_DIR / "vocab.bpe")
    rng = random.Random(0)
    text = "".join(rng.choice("床前明月光疑是地上霜舉頭望低思故鄉，。") for _ in range(60_000))  # no spaces
    (tmp_path / "zh.txt").write_text(text)
    monkeypatch.setattr(prepare_module, "JOB_CHARS", 5000)
    jobs = list(
        prepare_module._jobs(
            resolve_sources([str(tmp_path / "zh.txt")]), "text", 10**9, None, False, "words", tok.compiled
        )
    )
    assert max(sum(len(p) for p in job if isinstance(p, str)) for _, job in jobs) <= 2 * 5000
    assert [i for _, job in jobs for i in prepare_module.encode_job(job, tok).tolist()] == tok.encode(text)
