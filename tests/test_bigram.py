"""The bigram model (`--preset bigram`): a table of next-token logits that trains to what counting gives, and
runs through sampling, evaluation, plots, info and the report like any run."""

import numpy as np
import pytest
import torch
from helpers import read_split

import gptkit
from gptkit.bigram import BigramLM
from gptkit.cli import main
from gptkit.config import GPTConfig, resolve_config
from gptkit.errors import GptkitError
from gptkit.generate import generate_tokens


@pytest.fixture(scope="module")
def bigram_run(tmp_path_factory, small_data):
    out = tmp_path_factory.mktemp("runs") / "bigram"
    settings = ["train.max_iters=1000", "train.eval_interval=500", "train.device=cpu"]
    assert main(["train", "--data", str(small_data), "--out", str(out), "--preset", "bigram", "--set", *settings]) == 0
    return out


def counted_cross_entropy(train: np.ndarray, val: np.ndarray, vocab: int, smoothing: float = 0.5) -> float:
    """Val cross-entropy of the bigram probabilities counted on the train split (add-`smoothing`)."""
    counts = np.full((vocab, vocab), smoothing)
    np.add.at(counts, (train[:-1], train[1:]), 1)
    probs = counts / counts.sum(1, keepdims=True)
    return float(-np.log(probs[val[:-1], val[1:]]).mean())


def test_it_trains_to_the_counted_bigram(bigram_run, small_data, capsys):
    run = gptkit.load(bigram_run, device="cpu")
    assert isinstance(run.model, BigramLM) and run.model.num_params() == run.config.model.vocab_size**2
    train, val = (read_split(small_data, split).astype(np.int64) for split in ("train", "val"))
    counted = counted_cross_entropy(train, val, run.config.model.vocab_size)
    assert main(["eval", str(bigram_run), "--data", str(small_data)]) == 0
    learned = float(capsys.readouterr().out.strip().splitlines()[-1].split()[3])  # the loss column
    assert abs(learned - counted) < 0.05, (learned, counted)
    assert learned < 2.7  # far below a uniform guess (ln 65 = 4.17), at the lecture's "about 2.5"


def test_each_prediction_sees_one_token():
    torch.manual_seed(0)
    model = BigramLM(GPTConfig(arch="bigram", vocab_size=20))
    idx = torch.randint(20, (2, 9))
    logits, _ = model(idx)
    torch.testing.assert_close(logits, model.transformer.wte.weight[idx])
    prompt = idx[:, :4]
    cached = torch.cat(list(generate_tokens(model, prompt, 12, temperature=0)), 1)
    uncached = torch.cat(list(generate_tokens(model, prompt, 12, temperature=0, use_cache=False)), 1)
    assert torch.equal(cached, uncached)


def test_it_samples_plots_and_reports_like_any_run(bigram_run, tmp_path, capsys):
    assert main(["sample", str(bigram_run), "--prompt", "ROMEO:", "--max-new-tokens", "40", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:")
    assert main(["plot", str(bigram_run), "--out", str(tmp_path / "loss.png")]) == 0
    assert main(["report", str(bigram_run), "--out", str(tmp_path / "r.html"), "--samples", "1"]) == 0
    assert "A bigram model has no attention" in (tmp_path / "r.html").read_text()
    assert main(["info", str(bigram_run)]) == 0
    vocab = gptkit.load(bigram_run, device="cpu").config.model.vocab_size
    assert f"bigram: a {vocab} x {vocab} table of next-token logits" in capsys.readouterr().out
    assert main(["viz", "attention", str(bigram_run), "--prompt", "hi", "--out", str(tmp_path / "a.png")]) == 2
    assert "is a bigram model: it has no attention" in capsys.readouterr().err
    assert main(["export", str(bigram_run), "--out", str(tmp_path / "hf")]) == 2
    assert (
        "`model.arch`=bigram (a table of next-token logits) has no transformers architecture" in capsys.readouterr().err
    )


def test_what_a_bigram_cannot_be_is_refused():
    with pytest.raises(GptkitError, match="`model.arch`='transformer' is not one of gpt, bigram"):
        resolve_config(overrides=["model.arch=transformer"]).validate()
    with pytest.raises(GptkitError, match="bigram is a causal LM of one token of context.*`lora.r` > 0"):
        resolve_config(preset="bigram", overrides=["lora.r=8"]).validate()
    with pytest.raises(GptkitError, match="`train.optimizer`=muon asks otherwise"):
        resolve_config(preset="bigram", overrides=["train.optimizer=muon"]).validate()
    with pytest.raises(GptkitError, match="`train.objective`=mlm asks otherwise"):
        resolve_config(preset="bigram", overrides=["train.objective=mlm"]).validate()
