"""Copying and repetition: the measures find a planted copy exactly, and a model made to memorise a short text
reports long copied spans where a barely trained one does not."""

import json

import numpy as np
import pytest

from gptkit.cli import main
from gptkit.copying import character_chunks, code_points, copy_measures, ngram_hashes, split_chunks


def brute_force_hash(items, n: int, i: int) -> int:
    value = 0
    for item in items[i : i + n]:
        value = (value * 0x9E3779B97F4A7C15 + int(item) + 1) % 2**64
    return value


@pytest.mark.parametrize("n", [1, 3, 8, 13, 32])
def test_ngram_hashes_are_the_polynomial_hash_of_each_window(n):
    seq = np.random.default_rng(0).integers(0, 70_000, 300).astype(np.uint32)
    hashes = ngram_hashes(seq, n)
    assert len(hashes) == len(seq) - n + 1
    for i in (0, 7, len(seq) - n):
        assert int(hashes[i]) == brute_force_hash(seq, n, i)


def test_a_planted_copy_is_found_exactly_across_chunk_boundaries():
    rng = np.random.default_rng(1)
    corpus = rng.integers(0, 50, 300_000).astype(np.uint32)
    planted = corpus[123_450:123_550]  # 100 items, copied into the first text
    texts = [np.concatenate([rng.integers(50, 60, 40), planted, rng.integers(50, 60, 40)]).astype(np.uint32)]
    texts.append(rng.integers(50, 60, 180).astype(np.uint32))  # ids the corpus never has: nothing copied
    report = copy_measures(texts, split_chunks([corpus], size=4099))  # chunk edges fall inside the copy
    assert report.longest == 100
    for n in (8, 16, 32):
        windows = sum(len(t) - n + 1 for t in texts)
        assert report.copied[n] == pytest.approx((100 - n + 1) / windows)
    assert copy_measures(texts[1:], split_chunks([corpus])).longest == 0
    assert report.distinct[1] == pytest.approx(len(np.unique(np.concatenate(texts))) / sum(map(len, texts)))


@pytest.fixture(scope="module")
def memorised_run(tmp_path_factory, trained_run, shakespeare_text):
    """The tiny run fine-tuned for many steps on 600 characters, which it learns by heart."""
    root = tmp_path_factory.mktemp("memorise")
    (root / "short.txt").write_text(shakespeare_text[5000:5600], encoding="utf-8")
    args = ["prepare", str(root / "short.txt"), "--tokenizer", str(trained_run), "--out", str(root / "data")]
    assert main([*args, "--val-fraction", "0.1"]) == 0
    settings = ["train.max_iters=1000", "train.lr=5e-3", "train.min_lr=1e-3", "train.warmup_iters=20"]
    settings += ["train.eval_interval=1000"]
    args = ["train", "--data", str(root / "data"), "--init-from", str(trained_run), "--out", str(root / "run")]
    assert main([*args, "--set", *settings, "train.device=cpu"]) == 0
    return root / "run"


def copying(run, capsys) -> dict:
    assert main(["eval", str(run), "--samples", "4", "--sample-tokens", "160", "--json", "--device", "cpu"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_a_memorising_model_copies_long_spans_and_a_learning_one_does_not(memorised_run, trained_run, capsys):
    memorised, learning = copying(memorised_run, capsys), copying(trained_run, capsys)
    copied = memorised["samples"]["characters"]
    assert copied["longest_copied_span"] >= 80 and copied["copied"]["32"] > 0.5
    fresh = learning["samples"]["characters"]
    assert fresh["longest_copied_span"] < 32 and fresh["copied"]["32"] == 0.0
    held_out = learning["held-out text"]["characters"]  # the yardstick: real text shares short phrases only
    assert held_out["copied"]["32"] < 0.2 and set(learning) == {"samples", "held-out text"}


def test_the_table_and_short_samples(trained_run, capsys):
    assert main(["eval", str(trained_run), "--samples", "2", "--sample-tokens", "64", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["text", "unit", "copied", "8"] and len(lines) == 5
    assert lines[1].startswith("samples") and lines[3].startswith("held-out text")
    args = ["eval", str(trained_run), "--samples", "2", "--sample-tokens", "20", "--device", "cpu", "--json"]
    assert main(args) == 0  # 20 tokens hold no 32-gram: null in the JSON, not NaN
    assert json.loads(capsys.readouterr().out)["samples"]["tokens"]["copied"]["32"] is None


def test_shards_and_chunks_shorter_than_an_ngram_change_nothing(monkeypatch):
    rng = np.random.default_rng(2)
    corpus = rng.integers(0, 30, 5000).astype(np.uint32)
    texts = [corpus[3:340].copy(), rng.integers(0, 30, 200).astype(np.uint32)]
    whole = copy_measures(texts, split_chunks([corpus]))
    pieces = copy_measures(texts, split_chunks([corpus[:5], corpus[5:9], corpus[9:]], size=3))
    assert pieces == whole and whole.longest == 337


def test_characters_of_a_bpe_corpus_decoded_piece_by_piece(monkeypatch):
    """Korean text through a BPE tokenizer, decoded a few tokens at a time (characters cut between pieces):
    the same measures as on the text's own code points."""
    from pathlib import Path

    from gptkit import copying
    from gptkit.tokenizer.formats import import_gpt2

    fixtures = Path(__file__).parent / "fixtures"
    tokenizer = import_gpt2(fixtures / "gpt2" / "encoder.json", fixtures / "gpt2" / "vocab.bpe")
    text = (fixtures / "korean" / "hyeon_jingeon_unsu_joeun_nal.txt").read_text(encoding="utf-8")[:4000]
    ids = np.array(tokenizer.encode(text), dtype=np.uint32)
    planted = code_points(text[1000:1300])
    texts = [np.concatenate([code_points("새로운 글 " * 5), planted]), code_points("전혀 다른 문장입니다. " * 10)]
    monkeypatch.setattr(copying, "DECODE_TOKENS", 7)  # byte pieces of one character fall in two pieces
    by_pieces = copy_measures(texts, character_chunks(split_chunks([ids], size=50), tokenizer))
    direct = copy_measures(texts, split_chunks([code_points(text)]))
    assert by_pieces == direct and direct.longest >= 300
