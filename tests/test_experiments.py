import json
import struct

from gptkit.data.prepare import prepare
from gptkit.experiments import forgetting


def test_forgetting_writes_a_plot_and_a_table(tmp_path, shakespeare_text):
    (tmp_path / "both.txt").write_text(shakespeare_text[:40_000])
    prepare([str(tmp_path / "both.txt")], tmp_path / "joint")
    tok = str(tmp_path / "joint" / "tokenizer.json")
    (tmp_path / "a.txt").write_text(shakespeare_text[:20_000])
    (tmp_path / "b.txt").write_text(shakespeare_text[20_000:40_000])
    prepare([str(tmp_path / "a.txt")], tmp_path / "A", tokenizer=tok)
    prepare([str(tmp_path / "b.txt")], tmp_path / "B", tokenizer=tok)
    sets = [
        "model.n_layer=1",
        "model.n_embd=32",
        "model.n_head=2",
        "model.block_size=32",
        "train.eval_iters=2",
        "train.peak_flops=1e11",
    ]
    table = forgetting(
        str(tmp_path / "A"), str(tmp_path / "B"), 20, tmp_path / "out", overrides=sets, echo=lambda line: None
    )
    assert set(table["final"]) == {"sequential", "mixed"} and table["switch_step"] == 10
    assert table["curves"]["sequential"]["step"][-1] == 20
    saved = json.loads((tmp_path / "out" / "forgetting.json").read_text())
    assert saved["final"] == table["final"]
    png = (tmp_path / "out" / "forgetting.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 800 and height > 300


def test_inputs_that_would_fail_late_are_refused_first(small_data):
    import pytest

    from gptkit.errors import GptkitError

    with pytest.raises(GptkitError, match="same dataset"):
        forgetting(str(small_data), str(small_data), 10, small_data.parent / "nowhere")
    assert not (small_data.parent / "nowhere").exists()
