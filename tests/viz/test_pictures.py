"""Every picture command on a tiny trained model: a valid PNG of sensible size, the same bytes each time,
and one-line errors for bad input. The pictures' content is checked through the numbers behind them."""

import shutil

import pytest
import torch
from PIL import Image

from gptkit.cli import main
from gptkit.run import load_run
from gptkit.viz.attention import attention_weights
from gptkit.viz.embeddings import principal_components
from gptkit.viz.rope import relative_scores


def check_png(path, min_size=(300, 200), max_size=(5000, 4000)):
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()  # the whole file decodes
    with Image.open(path) as image:
        width, height = image.size
    assert min_size[0] <= width <= max_size[0] and min_size[1] <= height <= max_size[1], image.size
    return width, height


def cli(*argv) -> int:
    return main([str(a) for a in argv])


def test_plot_curves_of_several_runs_by_step_tokens_and_time(trained_run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(trained_run, other)
    for x in ("step", "tokens", "time"):
        out = tmp_path / f"loss-{x}.png"
        assert cli("plot", trained_run, other, "--metric", "val_loss", "--x", x, "--out", out) == 0
        check_png(out)
    assert cli("plot", trained_run, "--out", tmp_path / "both.png") == 0  # train + val by default
    assert cli("plot", trained_run, "--metric", "lr", "--log-y", "--out", tmp_path / "lr.png") == 0
    assert "wrote" in capsys.readouterr().out


def test_pictures_are_reproducible(trained_run, tmp_path):
    for name in ("a", "b"):
        assert cli("plot", trained_run, "--out", tmp_path / f"{name}.png") == 0
        assert cli("viz", "rope", "--out", tmp_path / f"rope-{name}.png") == 0
        assert cli("viz", "embeddings", trained_run, "--out", tmp_path / f"emb-{name}.png") == 0
    for stem in ("", "rope-", "emb-"):
        assert (tmp_path / f"{stem}a.png").read_bytes() == (tmp_path / f"{stem}b.png").read_bytes()


def test_plot_refuses_unknown_metrics_and_other_formats(trained_run, tmp_path, capsys):
    assert cli("plot", trained_run, "--metric", "accuracy", "--out", tmp_path / "x.png") == 2
    error = capsys.readouterr().err
    assert "--metric accuracy" in error and "val_loss" in error and error.count("\n") == 1
    assert cli("plot", trained_run, "--out", tmp_path / "x.jpg") == 2
    assert "ending in .png" in capsys.readouterr().err
    assert cli("plot", tmp_path, "--out", tmp_path / "x.png") == 2  # not a run
    assert not list(tmp_path.glob("x.*"))


def test_attention_map_and_its_weights(trained_run, tmp_path, capsys):
    out = tmp_path / "attn.png"
    assert cli("viz", "attention", trained_run, "--prompt", "ROMEO: but soft", "--layer", "1", "--out", out) == 0
    check_png(out)
    assert cli("viz", "attention", trained_run, "--prompt", "ROMEO:", "--head", "0", "--out", tmp_path / "h.png") == 0
    check_png(tmp_path / "h.png", min_size=(200, 200))
    tokens, maps = attention_weights(load_run(trained_run, device="cpu"), "ROMEO: but soft")
    assert len(tokens) == 15 and len(maps) == 2 and maps[0].shape == (2, 15, 15)
    for weights in maps:
        assert torch.allclose(weights.sum(-1), torch.ones(2, 15), atol=1e-5)
        assert (weights.triu(diagonal=1) == 0).all()
    assert cli("viz", "attention", trained_run, "--prompt", "x", "--layer", "5", "--out", tmp_path / "l.png") == 2
    assert "--layer 5: the model has 2 layers" in capsys.readouterr().err


def test_rope_picture_and_the_relative_position_property(tmp_path, capsys):
    out = tmp_path / "rope.png"
    assert cli("viz", "rope", "--dim", "32", "--length", "128", "--out", out) == 0
    check_png(out)
    # The score of a query and a key depends only on their distance, whatever their absolute positions.
    assert torch.allclose(relative_scores(32, 10000.0, 64, 0), relative_scores(32, 10000.0, 64, 100), atol=1e-5)
    near, far = relative_scores(64, 10000.0, 256, 0)[[0, 200]]
    assert near == pytest.approx(1.0, abs=1e-5) and far < 0.6  # equal vectors: the score falls with distance
    assert cli("viz", "rope", "--dim", "33", "--out", out) == 2
    assert "--dim 33" in capsys.readouterr().err


def test_embeddings_picture_and_its_projection(trained_run, tmp_path):
    out = tmp_path / "emb.png"
    assert cli("viz", "embeddings", trained_run, "--out", out) == 0
    check_png(out)
    weights = torch.randn(50, 8, generator=torch.Generator().manual_seed(0)) * torch.arange(1, 9)
    coords, share = principal_components(weights)
    assert coords.shape == (50, 2) and share[0] >= share[1] > 0
    assert abs(float(coords[:, 0] @ coords[:, 1])) < 1e-3  # the axes are uncorrelated
    assert torch.equal(principal_components(weights)[0], coords)  # and the signs are fixed


def test_tokens_in_the_terminal(trained_run, gpt2_tokenizer_file, capsys):
    assert cli("viz", "tokens", gpt2_tokenizer_file, "Hello world, 안녕", "--color", "never") == 0
    out = capsys.readouterr().out
    assert out.startswith("Hello|␣world|,|␣")  # GPT-2 cuts there; the Korean characters are split bytes
    assert "\\x" in out.splitlines()[0]  # a token holding part of a character shows its bytes
    assert "9 tokens, 15 characters, 19 bytes" in out
    assert cli("viz", "tokens", trained_run, "ab\ncd", "--color", "always") == 0
    coloured = capsys.readouterr().out
    assert coloured.count("\x1b[30;48;5;") == 5 and "⏎" in coloured
