"""The token budget said at the start of training: cpu-baby on 20 KB is warned about, on Tiny Shakespeare not."""

import json
import subprocess
import sys

import pytest

from gptkit.budget import DataShare, TokenBudget, data_shares
from gptkit.cli import main
from gptkit.config import DataSource, StageConfig, resolve_config
from gptkit.memory import param_count


def start_lines(data, out) -> list[str]:
    """The lines `gptkit train --preset cpu-baby` (2000 steps) prints before its first step; then it is stopped."""
    command = [sys.executable, "-m", "gptkit", "train", "--data", str(data), "--out", str(out), "--preset"]
    command += ["cpu-baby", "--set", "train.device=cpu", "train.dtype=float32"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("eval step 0"):
                break
    finally:
        process.kill()
        process.wait()
    return lines


def expected_numbers(data) -> tuple[int, int, int]:
    model = resolve_config(preset="cpu-baby").model
    model.vocab_size = json.loads((data / "meta.json").read_text())["vocab_size"]
    tokens = 2000 * 12 * 64  # cpu-baby: 2000 steps of 12 x 64 tokens
    return param_count(model), tokens, json.loads((data / "meta.json").read_text())["train_tokens"]


@pytest.mark.slow
def test_cpu_baby_on_20_kb_is_warned_and_on_tiny_shakespeare_it_is_not(tmp_path, shakespeare_text):
    (tmp_path / "small.txt").write_text(shakespeare_text[:20_000], encoding="utf-8")
    for name, source in (("small", str(tmp_path / "small.txt")), ("full", "shakespeare")):
        assert main(["prepare", source, "--tokenizer", "char", "--out", str(tmp_path / name)]) == 0
    printed = {name: start_lines(tmp_path / name, tmp_path / f"run-{name}") for name in ("small", "full")}
    for name, lines in printed.items():
        params, tokens, data_tokens = expected_numbers(tmp_path / name)
        budget_line = next(line for line in lines if line.startswith("budget:"))
        assert f"{params / 1e6:.2f}M parameters" in budget_line
        assert f"{tokens / 1e6:.2f}M training tokens = {tokens / params:.2g} per parameter" in budget_line
        assert f"{tokens / data_tokens:.3g} epochs over" in budget_line
    small, full = "\n".join(printed["small"]), "\n".join(printed["full"])
    epochs = expected_numbers(tmp_path / "small")[1] / expected_numbers(tmp_path / "small")[2]
    assert epochs > 50 and f"the run goes over them {epochs:.0f} times" in small and "per parameter, far below" in small
    assert "Expect it to memorise" in small and "smaller model" in small
    assert "warning:" not in full  # 1.5 epochs, 1.9 tokens per parameter: a sound demo


def test_the_budget_says_why_in_plain_words():
    model = resolve_config(preset="cpu-baby").model
    model.vocab_size = 65
    little = TokenBudget.of(model, training_tokens=100_000, data_tokens=50_000)
    assert "50,000 tokens of data are 0.062 per parameter, far below the ~20" in little.warning()
    assert "goes over" not in little.warning()  # 2 epochs
    short = TokenBudget.of(model, training_tokens=100_000, data_tokens=10_000_000)
    assert short.tokens_per_parameter < 1 and short.warning() is None  # undertrained, not memorising
    enough = TokenBudget.of(model, training_tokens=20 * param_count(model), data_tokens=10 * param_count(model))
    seen_often = TokenBudget.of(model, training_tokens=40 * param_count(model), data_tokens=3 * param_count(model))
    assert "the run goes over its data 13 times" in seen_often.warning()
    bigram_like = TokenBudget.of(model, training_tokens=400 * param_count(model), data_tokens=12 * param_count(model))
    assert bigram_like.warning() is None  # 33 epochs, but 12 tokens per parameter: too much data to memorise
    assert enough.warning() is None and "2 epochs" in enough.line()
    fine_tune = TokenBudget.of(model, training_tokens=1_000_000, data_tokens=50_000)  # --init-from, small data
    assert "this fine-tune goes over its 50,000 tokens of data 20 times" in fine_tune.warning(fine_tune=True)
    assert "smaller model" not in fine_tune.warning(fine_tune=True)
    assert TokenBudget.of(model, 300_000, 50_000).warning(fine_tune=True) is None  # 6 epochs: fine for a fine-tune
    timed = TokenBudget.of(model, training_tokens=None, data_tokens=10_000_000)
    assert timed.warning() is None and "time budget" in timed.line()


def test_info_and_the_report_say_the_budget(trained_run, capsys, tmp_path):
    assert main(["info", str(trained_run)]) == 0
    out = capsys.readouterr().out
    assert "tokens trained on =" in out and "per parameter (compute-optimal: about 20)" in out
    assert main(["report", str(trained_run), "--out", str(tmp_path / "r.html"), "--samples", "1"]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "tokens per parameter" in page and "epochs over the data" in page


def test_a_small_dataset_mixed_in_at_a_high_weight_is_warned_about_by_name(tmp_path, shakespeare_text):
    (tmp_path / "big.txt").write_text(shakespeare_text, encoding="utf-8")
    (tmp_path / "small.txt").write_text(shakespeare_text[:5_000], encoding="utf-8")
    assert main(["prepare", str(tmp_path / "big.txt"), "--tokenizer", "char", "--out", str(tmp_path / "big")]) == 0
    tokenizer = str(tmp_path / "big" / "tokenizer.json")
    assert (
        main(["prepare", str(tmp_path / "small.txt"), "--tokenizer", tokenizer, "--out", str(tmp_path / "small")]) == 0
    )
    config = resolve_config(preset="cpu-baby")
    config.model.vocab_size = json.loads((tmp_path / "big" / "meta.json").read_text())["vocab_size"]
    tokens = {n: json.loads((tmp_path / n / "meta.json").read_text())["train_tokens"] for n in ("big", "small")}
    mixture = [DataSource(str(tmp_path / "big"), weight=0.5), DataSource(str(tmp_path / "small"), weight=0.5)]
    config.data = mixture
    shares = data_shares(config)
    assert [(d.name, d.tokens, d.share) for d in shares] == [
        ("big", tokens["big"], 0.5),
        ("small", tokens["small"], 0.5),
    ]
    trained = 2000 * 12 * 64
    budget = TokenBudget.of(config.model, trained, shares=shares)
    whole = trained / (tokens["big"] + tokens["small"])  # under 2 epochs of all the data ...
    small_epochs = trained * 0.5 / tokens["small"]  # ... but about 170 of the small dataset
    assert whole < 2 and small_epochs > 100
    assert f"{whole:.3g} epochs over" in budget.line() and f"(small: {small_epochs:.3g} epochs)" in budget.line()
    assert f"the run goes over the {tokens['small']:,} tokens of small {small_epochs:.0f} times" in budget.warning()
    assert "Give small a smaller share of the training" in budget.warning()
    plain = TokenBudget.of(config.model, trained, tokens["big"] + tokens["small"])  # the whole, as before
    assert plain.warning() is None
    # stages: each dataset's share follows its stage's steps
    config.data, config.train.max_iters = [], 2000
    config.stages = [StageConfig(1500, [mixture[0]]), StageConfig(500, [mixture[1]])]
    assert [d.share for d in data_shares(config)] == [0.75, 0.25]
    fine_tune = TokenBudget.of(config.model, trained, shares=data_shares(config)).warning(fine_tune=True)
    assert fine_tune.startswith(f"warning: this fine-tune goes over the {tokens['small']:,} tokens of small")
    assert "Give small a smaller share of the training" in fine_tune


def test_shares_follow_weights_within_a_stage_and_the_steps_a_run_took():
    a, b = DataSource("data/a", weight=3.0), DataSource("data/b", weight=1.0)
    config = resolve_config(preset="cpu-baby")
    config.stages = [StageConfig(1000, [a, b]), StageConfig(1000, [DataSource("data/b")])]

    def shares(**options) -> list[float]:
        return [round(d.share, 6) for d in data_shares(config, tokens_of=lambda source: 10**6, **options)]

    assert shares() == [0.375, 0.625]  # b: a quarter of the first stage and all of the second
    assert shares(steps=900) == [0.75, 0.25]  # stopped in the first stage: the second never ran
    assert shares(steps=4000) == [0.1875, 0.8125]  # extended: the last stage goes on
    assert data_shares(config, tokens_of=lambda source: None) is None  # data not at hand


def test_datasets_repeated_alike_are_not_named_or_warned_about():
    model = resolve_config(preset="cpu-baby").model
    model.vocab_size = 65
    params = param_count(model)
    big, other = 8 * params, 7 * params  # 15 tokens of data per parameter: too much to memorise
    even = [DataShare("a", big, big / (big + other)), DataShare("b", other, other / (big + other))]
    alike = TokenBudget.of(model, 20 * (big + other), shares=even)  # weights as the sizes: 20 epochs of each
    assert alike.warning() is None and "(a:" not in alike.line() and "(b:" not in alike.line()
    near = [DataShare("a", big, 0.5), DataShare("b", other, 0.5)]  # 19 and 21 epochs: not worth naming
    assert TokenBudget.of(model, 20 * (big + other), shares=near).warning() is None
