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


def test_curves_show_the_logged_numbers_on_the_chosen_axis(trained_run):
    from gptkit.train.metrics import read_metrics
    from gptkit.viz.curves import curves_figure

    records = read_metrics(trained_run / "metrics.jsonl")
    evals = [r for r in records if r["kind"] == "eval"]
    lines = curves_figure([trained_run], metric="val_loss", x="tokens").axes[0].lines
    assert list(lines[0].get_xdata()) == [r["tokens"] for r in evals]
    assert list(lines[0].get_ydata()) == [r["val_loss"] for r in evals]
    # Training time: ms/step times the steps since the previous train record, summed; evals left out.
    elapsed, last, at_step = 0.0, 0, {0: 0.0}
    for r in records:
        if r["kind"] == "train":
            elapsed += r["ms_per_step"] * (r["step"] - last) / 1000
            last = r["step"]
            at_step[r["step"]] = elapsed
    times = curves_figure([trained_run], metric="val_loss", x="time").axes[0].lines[0].get_xdata()
    assert list(times) == pytest.approx([at_step[r["step"]] for r in evals])
    train_line, val_line = curves_figure([trained_run]).axes[0].lines  # loss: train as a line, val with dots
    assert train_line.get_marker() in ("None", None, "") and val_line.get_marker() == "o"
    speed = curves_figure([trained_run], metric="tokens_per_s").axes[0].lines[0].get_ydata()
    assert min(speed) > 0  # from train records only (an eval record at step 0 holds 0)


def test_attention_maps_draw_the_chosen_layer_and_head(trained_run):
    from gptkit.viz.attention import attention_figure

    run = load_run(trained_run, device="cpu")
    _, maps = attention_weights(run, "ROMEO: but soft")
    for layer in (0, 1, -1):
        images = [ax.images[0] for ax in attention_figure(run, "ROMEO: but soft", layer=layer).axes if ax.images]
        assert len(images) == 2
        for head, image in enumerate(images):
            assert torch.allclose(torch.from_numpy(image.get_array().data), maps[layer][head])
    (single,) = [ax.images[0] for ax in attention_figure(run, "ROMEO:", layer=0, head=1).axes if ax.images]
    assert torch.allclose(torch.from_numpy(single.get_array().data), attention_weights(run, "ROMEO:")[1][0][1])


def test_embedding_labels_sit_on_their_tokens(trained_run):
    from gptkit.viz.embeddings import embeddings_figure

    run = load_run(trained_run, device="cpu")
    coords, _ = principal_components(run.model.transformer.wte.weight.detach()[: run.tokenizer.vocab_size])
    texts = embeddings_figure(run).axes[0].texts
    assert len(texts) == run.tokenizer.vocab_size  # a char vocabulary is small: every token is labelled
    for annotation in texts:
        token_id = run.tokenizer.encode(annotation.get_text().replace("␣", " ").replace("⏎", "\n"))[0]
        assert annotation.xy == pytest.approx(tuple(coords[token_id].tolist()))


def test_principal_components_match_numpy_on_uncentred_data():
    import numpy as np

    g = torch.Generator().manual_seed(1)
    weights = torch.randn(60, 6, generator=g, dtype=torch.float64) * torch.arange(1, 7) + 5.0  # far from 0
    coords, share = principal_components(weights)
    centred = weights.numpy() - weights.numpy().mean(0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ axes[:2].T
    assert np.allclose(np.abs(coords.numpy()), np.abs(expected), atol=1e-4)  # float32 inside
    assert np.allclose(share.numpy(), (singular**2 / (singular**2).sum())[:2])


def test_bad_picture_options_are_refused(trained_run, tmp_path, capsys):
    assert cli("viz", "embeddings", trained_run, "--labels", "-3", "--out", tmp_path / "e.png") == 2
    assert cli("viz", "rope", "--length", "100000", "--out", tmp_path / "r.png") == 2
    assert cli("report", trained_run, "--samples", "-2", "--out", tmp_path / "r.html") == 2
    errors = capsys.readouterr().err.splitlines()
    assert [e.split(":")[1].split()[0] for e in errors] == ["--labels", "--length", "--samples"]
    assert not list(tmp_path.iterdir())
