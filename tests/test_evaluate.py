import math

import pytest

import gptkit
from gptkit.cli import main
from gptkit.errors import GptkitError
from gptkit.evaluate import evaluate_dataset, evaluate_text
from gptkit.train.metrics import read_metrics


def test_eval_on_prepared_data_and_on_raw_text_agree(trained_run, small_data, small_text_file, tmp_path):
    run = gptkit.load(trained_run)
    on_data = evaluate_dataset(run, small_data)
    assert on_data.perplexity == pytest.approx(math.exp(on_data.loss))
    # char tokens are one ASCII byte each: bits per byte is the loss in bits
    assert on_data.bits_per_byte == pytest.approx(on_data.loss / math.log(2))
    last_eval = [r for r in read_metrics(trained_run / "metrics.jsonl") if r["kind"] == "eval"][-1]
    assert on_data.loss == pytest.approx(last_eval["val_loss"], abs=0.15)  # the whole split vs a few batches
    val_text = small_text_file.read_text()[int(len(small_text_file.read_text()) * 0.9) :]
    (tmp_path / "val.txt").write_text(val_text)
    on_text = evaluate_text(run, tmp_path / "val.txt")
    assert on_text.tokens == on_data.tokens and on_text.loss == pytest.approx(on_data.loss, abs=1e-5)


def test_eval_command_and_its_errors(trained_run, small_data, tmp_path, capsys):
    assert main(["eval", str(trained_run), "--data", str(small_data), "--json"]) == 0
    assert '"bits_per_byte"' in capsys.readouterr().out
    (tmp_path / "odd.txt").write_text("ж")
    assert main(["eval", str(trained_run), "--text", str(tmp_path / "odd.txt")]) == 2
    assert "odd.txt: character 'ж'" in capsys.readouterr().err
    with pytest.raises(GptkitError, match="--data or|--data DIR"):
        main(["--debug", "eval", str(trained_run)])


def test_bits_per_byte_does_not_count_separators_as_text(tmp_path):
    from tokenizer.conftest import GPT2_DIR

    from gptkit.evaluate import byte_lengths
    from gptkit.tokenizer.formats import import_gpt2

    tok = import_gpt2(GPT2_DIR / "encoder.json", GPT2_DIR / "vocab.bpe")
    lengths = byte_lengths(tok, tok.vocab_size)
    assert lengths[50256] == 0 and lengths[15496] == len(b"Hello")


def test_eval_context_scores_shorter_windows_exactly(trained_run, small_data, tmp_path, capsys):
    import numpy as np
    import torch
    import torch.nn.functional as F
    from helpers import read_split

    run = gptkit.load(trained_run, device="cpu")  # scored by hand below with CPU tensors
    block = run.model.config.block_size
    assert evaluate_dataset(run, small_data, context=block).loss == evaluate_dataset(run, small_data).loss
    context = block // 4
    short = evaluate_dataset(run, small_data, context=context)
    ids = read_split(small_data, "val").astype(np.int64)  # small_data has one val shard: one run of windows
    nats, count = 0.0, 0
    with torch.no_grad():  # by hand: windows of context + 1 tokens, each token after the first scored once
        for start in range(0, len(ids) - 1, context):
            window = torch.from_numpy(ids[start : start + context + 1])[None]
            logits, _ = run.model(window[:, :-1])
            nats += F.cross_entropy(logits[0], window[0, 1:], reduction="sum").item()
            count += window.size(1) - 1
    assert short.tokens == count == len(ids) - 1
    assert short.loss == pytest.approx(nats / count, rel=1e-5)
    assert main(["eval", str(trained_run), "--data", str(small_data), "--context", str(context), "--json"]) == 0
    out = capsys.readouterr().out
    assert f'"loss": {short.loss}' in out and f'"context": {context}' in out
    text_file = tmp_path / "val.txt"  # the same tokens as raw text (a char tokenizer round-trips them)
    text_file.write_text(run.tokenizer.decode(ids.tolist()), encoding="utf-8")
    from_text = evaluate_text(run, text_file, context=context)
    assert (from_text.tokens, from_text.context) == (count, context)
    assert from_text.loss == pytest.approx(short.loss, rel=1e-6)
    assert main(["eval", str(trained_run), "--text", str(text_file), "--context", str(block + 1)]) == 2
    assert f"--context {block + 1}: must be between 1" in capsys.readouterr().err
    for bad in (0, block + 1):
        with pytest.raises(GptkitError, match=f"^context={bad}: must be between 1 and"):
            evaluate_dataset(run, small_data, context=bad)
