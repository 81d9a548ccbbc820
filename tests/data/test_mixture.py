"""Weighted mixtures of datasets: proportions, determinism, and refusals."""

import pytest
import torch

from gptkit.data.dataset import TokenDataset
from gptkit.data.mixture import Mixture
from gptkit.data.prepare import prepare
from gptkit.errors import GptkitError
from gptkit.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory, shakespeare_text):
    folder = tmp_path_factory.mktemp("mix")
    (folder / "all.txt").write_text(shakespeare_text[:40_000])
    prepare([str(folder / "all.txt")], folder / "joint")  # one vocabulary for both halves
    tok = str(folder / "joint" / "tokenizer.json")
    (folder / "a.txt").write_text(shakespeare_text[:20_000])
    (folder / "b.txt").write_text(shakespeare_text[20_000:40_000])
    prepare([str(folder / "a.txt")], folder / "a", tokenizer=tok)
    prepare([str(folder / "b.txt")], folder / "b", tokenizer=tok)
    return TokenDataset(folder / "a"), TokenDataset(folder / "b")


def test_observed_proportions_match_the_weights(tmp_path):
    # A is written with "ab" only, B with "xy" only (one vocabulary), so each row shows where it came from.
    (tmp_path / "joint.txt").write_text("abxy\n")
    prepare([str(tmp_path / "joint.txt")], tmp_path / "joint")
    tok = str(tmp_path / "joint" / "tokenizer.json")
    (tmp_path / "a.txt").write_text("ab" * 5000)
    (tmp_path / "b.txt").write_text("xy" * 5000)
    prepare([str(tmp_path / "a.txt")], tmp_path / "A", tokenizer=tok)
    prepare([str(tmp_path / "b.txt")], tmp_path / "B", tokenizer=tok)
    mixture = Mixture([TokenDataset(tmp_path / "A"), TokenDataset(tmp_path / "B")], [0.7, 0.3])
    a_ids = set(load_tokenizer(tmp_path / "joint").encode("ab"))
    generator, from_a, rows = torch.Generator().manual_seed(0), 0, 0
    for _ in range(10_000):
        x, _ = mixture.get_batch("train", 12, 8, generator, torch.device("cpu"))
        from_a += sum(int(row[0]) in a_ids for row in x)
        rows += len(x)
    assert abs(from_a / rows - 0.7) < 0.02


def test_rows_come_from_the_dataset_drawn_for_them(two_sets):
    a, b = two_sets
    mixture = Mixture([a, b], [0.5, 0.5])
    x, _ = mixture.get_batch("train", 64, 16, torch.Generator().manual_seed(1), torch.device("cpu"))
    a_text, b_text = (torch.from_numpy(d.shards["train"][0].astype("int64")) for d in (a, b))

    def inside(row, data):
        return any(torch.equal(data[i : i + 16], row) for i in torch.nonzero(data == row[0]).flatten().tolist())

    sources = [inside(row, a_text) for row in x]
    assert all(s or inside(row, b_text) for s, row in zip(sources, x))
    assert 10 < sum(sources) < 54  # both datasets are used
    again, _ = mixture.get_batch("train", 64, 16, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert torch.equal(x, again)  # deterministic per generator state


@pytest.mark.parametrize("weights", [[0, 0], [-1, 2], [float("nan"), 1]])
def test_weights_must_be_non_negative_with_a_positive_sum(two_sets, weights):
    with pytest.raises(GptkitError, match="weights"):
        Mixture(list(two_sets), weights)


def test_datasets_with_different_tokenizers_are_refused(two_sets, small_data):
    with pytest.raises(GptkitError, match="different tokenizer"):
        Mixture([two_sets[0], TokenDataset(small_data)], [1, 1])


def test_an_empty_or_damaged_shard_is_refused(tmp_path, two_sets):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(two_sets[0].path, copy)
    (copy / "train-00000.bin").write_bytes(b"")
    with pytest.raises(GptkitError, match="incomplete or damaged"):
        TokenDataset(copy)
