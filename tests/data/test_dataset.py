import numpy as np
import pytest
import torch
from helpers import read_split

from gptkit.data.dataset import TokenDataset
from gptkit.errors import GptkitError


def test_batches_are_windows_of_the_file_with_targets_shifted_by_one(small_data):
    ds = TokenDataset(small_data)
    g = torch.Generator().manual_seed(0)
    x, y = ds.get_batch("train", 4, 16, g, torch.device("cpu"))
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    data = read_split(small_data, "train")
    for row in x:  # every row is a contiguous slice of the token file
        starts = np.flatnonzero(data[: len(data) - 16] == int(row[0]))
        assert any(np.array_equal(data[s : s + 16], row.numpy()) for s in starts)


def test_same_generator_state_gives_the_same_batches(small_data):
    ds = TokenDataset(small_data)
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(3):
        assert torch.equal(
            ds.get_batch("val", 2, 8, a, torch.device("cpu"))[0], ds.get_batch("val", 2, 8, b, torch.device("cpu"))[0]
        )


def test_not_a_dataset_and_too_short_splits_are_clear_errors(tmp_path, small_data):
    with pytest.raises(GptkitError, match="gptkit prepare"):
        TokenDataset(tmp_path)
    with pytest.raises(GptkitError, match="model.block_size"):
        TokenDataset(small_data).check_block_size("val", 10**6)


def test_a_damaged_meta_json_names_the_file(tmp_path, small_data):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small_data, copy)
    (copy / "meta.json").write_text('{"dtype": "uint16"')
    with pytest.raises(GptkitError, match="meta.json: not valid JSON .*gptkit prepare"):
        TokenDataset(copy)
