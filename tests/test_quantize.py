"""Int8 weights (`--quantize int8`): every linear layer is replaced, the perplexity cost on real text stays
within 1%, generation and the CLI work, and bad requests get a one-line error."""

import json

import pytest
import torch
from helpers import tiny_config

import gptkit
from gptkit.cli import main
from gptkit.errors import ArgumentError
from gptkit.evaluate import evaluate_dataset
from gptkit.quantize import Int8Linear, quantize_model


def test_int8_linear_is_close_to_the_float_layer():
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 384)
    x = torch.randn(3, 5, 256)
    with torch.no_grad():
        exact = linear(x)
        quantized = Int8Linear(linear)(x)
    assert quantized.shape == exact.shape
    # 8-bit weights and activations: a percent or two of the output's range, not more
    assert (quantized - exact).abs().max() < 0.02 * exact.abs().max()


def test_int8_run_keeps_perplexity_within_one_percent(trained_run, small_data):
    exact = evaluate_dataset(gptkit.load(trained_run, device="cpu"), small_data)
    run = gptkit.load(trained_run, device="cpu", quantize="int8")
    linears = [m for m in run.model.modules() if isinstance(m, torch.nn.Linear)]
    int8 = [m for m in run.model.modules() if isinstance(m, Int8Linear)]
    assert not linears and len(int8) == 4 * run.config.model.n_layer + 1  # attn in/out, mlp in/out per layer; the head
    assert run.model.num_params() == gptkit.load(trained_run, device="cpu").model.num_params()  # tied head once
    quantized = evaluate_dataset(run, small_data)
    assert quantized.perplexity != exact.perplexity  # really computed in int8
    assert abs(quantized.perplexity / exact.perplexity - 1) < 0.01
    text = run.generate("\n", max_new_tokens=40, temperature=0)
    assert len(text) >= 40 and text == run.generate("\n", max_new_tokens=40, temperature=0)


def test_quantize_cli_and_its_errors(trained_run, small_data, capsys):
    args = ["eval", str(trained_run), "--data", str(small_data), "--device", "cpu", "--json"]
    assert main([*args, "--quantize", "int8"]) == 0
    assert json.loads(capsys.readouterr().out)
    sample = ["sample", str(trained_run), "--device", "cpu", "--max-new-tokens", "20", "--seed", "1"]
    assert main([*sample, "--quantize", "int8"]) == 0
    assert len(capsys.readouterr().out.strip()) > 0
    assert main([*sample, "--quantize", "int4"]) == 2
    err = capsys.readouterr().err
    assert "--quantize int4: choose one of none, int8" in err and len(err.strip().splitlines()) == 1


def test_int8_is_refused_off_the_cpu(small_data):
    from gptkit.model import GPT

    config = tiny_config(small_data).model
    config.vocab_size = 40
    with pytest.raises(ArgumentError, match="CPU only"):
        quantize_model(GPT(config), "int8", torch.device("cuda"))
