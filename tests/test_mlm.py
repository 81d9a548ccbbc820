"""Masked language modelling: padding never leaks, the loss counts only selected tokens, BERT's proportions,
whole-word masking, passages, and the commands (train, fill, eval) end to end."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY

from gptkit.cli import main
from gptkit.config import GPTConfig
from gptkit.data.dataset import TokenDataset
from gptkit.data.masking import MaskingRecipe, mask_tokens, word_edges_table, word_ids
from gptkit.data.segments import Passages
from gptkit.model import GPT
from gptkit.tokenizer import MASK_TOKEN, PAD_TOKEN, load_tokenizer, with_specials
from gptkit.tokenizer.char import CharTokenizer


def model(causal: bool, **options) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32, causal=causal, **options)).eval()


def padded(sequences, width, pad_id):
    ids = torch.full((len(sequences), width), pad_id)
    real = torch.zeros(len(sequences), width, dtype=torch.bool)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)], real[row, : len(seq)] = torch.tensor(seq), True
    return ids, real


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_padding_never_changes_the_outputs_of_real_tokens(causal, pos):
    net = model(causal, pos=pos)
    g = torch.Generator().manual_seed(1)
    sequences = [torch.randint(0, 38, (n,), generator=g).tolist() for n in (10, 6, 3)]
    alone = [net(torch.tensor([seq]))[0][0] for seq in sequences]
    for width, pad_id in ((10, 39), (16, 39), (16, 0)):  # more padding, and a pad id that is a real token
        ids, real = padded(sequences, width, pad_id)
        logits, _ = net(ids, key_mask=real)
        for row, seq in enumerate(sequences):
            assert torch.allclose(logits[row, : len(seq)], alone[row], atol=1e-5)


def test_the_loss_ignores_pads():
    net = model(False)
    g = torch.Generator().manual_seed(2)
    sequences = [torch.randint(0, 38, (n,), generator=g).tolist() for n in (12, 5)]
    ids, real = padded(sequences, 16, 39)
    inputs, targets = mask_tokens(
        ids, real, MaskingRecipe(prob=0.5), mask_id=38, replacement_ids=torch.arange(38), generator=g
    )
    assert (targets[~real] == -1).all()  # a pad is never a target
    _, loss = net(inputs, targets, key_mask=real)
    garbage = inputs.clone()
    garbage[~real] = torch.randint(0, 38, (int((~real).sum()),), generator=g)  # whatever sits in the pads
    assert torch.allclose(net(garbage, targets, key_mask=real)[1], loss, atol=1e-6)
    # The same number from each sequence alone, unpadded: the mean over selected tokens only.
    total, count = 0.0, 0
    for row, seq in enumerate(sequences):
        logits, _ = net(inputs[row : row + 1, : len(seq)])
        chosen = targets[row, : len(seq)] >= 0
        total += F.cross_entropy(logits[0][chosen], targets[row, : len(seq)][chosen], reduction="sum").item()
        count += int(chosen.sum())
    assert loss.item() == pytest.approx(total / count, abs=1e-5)


def test_masking_follows_the_recipe_within_one_percent():
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 90, (400, 500), generator=g)
    real = torch.arange(500)[None, :] < torch.randint(100, 501, (400, 1), generator=g)  # variable lengths
    inputs, targets = mask_tokens(ids, real, MaskingRecipe(), mask_id=99, replacement_ids=torch.arange(90), generator=g)
    selected = targets >= 0
    assert not selected[~real].any() and torch.equal(targets[selected], ids[selected])
    assert abs(selected.sum() / real.sum() - 0.15) < 0.01
    n = selected.sum()
    masked = (inputs == 99) & selected
    kept = (inputs == ids) & selected  # includes random draws that hit the same id (1 in 90 of 10%)
    assert abs(masked.sum() / n - 0.8) < 0.01
    assert abs(kept.sum() / n - (0.1 + 0.1 / 90)) < 0.01
    assert abs((selected & ~masked & ~kept).sum() / n - 0.1 * 89 / 90) < 0.01
    assert torch.equal(inputs[~selected], ids[~selected])  # everything else untouched


def test_whole_word_masking_takes_every_piece_of_a_word():
    tokenizer = with_specials(CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz ,.'\n"), [MASK_TOKEN, PAD_TOKEN])
    text = "the quick brown fox, don't jump. " * 400
    ids = torch.tensor([tokenizer.encode(text)])
    real = torch.ones_like(ids, dtype=torch.bool)
    edges = word_edges_table(tokenizer, tokenizer.vocab_size)
    words = word_ids(ids, real, edges)[0]
    assert words[:5].tolist() == [1, 1, 1, 2, 2]  # "the", then " q..." (a space joins the word after it)
    recipe = MaskingRecipe(whole_word=True)
    g = torch.Generator().manual_seed(4)
    mask_id = tokenizer.specials[MASK_TOKEN]
    _, targets = mask_tokens(
        ids, real, recipe, mask_id=mask_id, replacement_ids=torch.arange(31), generator=g, edges=edges
    )
    selected = targets[0] >= 0
    for word in words.unique():
        in_word = selected[words == word]
        assert in_word.all() or not in_word.any()  # all pieces of a word, or none
    assert abs(selected.float().mean() - 0.15) < 0.02


def test_passages_split_at_blank_lines_and_fit_the_block(small_data):
    dataset = TokenDataset(small_data)
    tokenizer = load_tokenizer(small_data)
    passages = Passages(dataset, "train", 64, tokenizer)
    lengths = passages.lengths
    assert lengths.max() <= 64 and lengths.min() >= 2 and len(np.unique(lengths)) > 10  # variable lengths
    ids, real = passages.batch(np.arange(50), pad_id=-5)
    for row in range(50):
        passage = ids[row][real[row]].tolist()
        text = tokenizer.decode(passage)
        assert "\n\n" not in text  # a passage holds no blank line (a long one is cut at block_size)
    assert (ids[~real] == -5).all()


def test_char_and_bpe_tokenizers_gain_mask_and_pad(tmp_path):
    char = with_specials(CharTokenizer.from_text("abc"), [MASK_TOKEN, PAD_TOKEN])
    assert char.vocab_size == 5 and char.encode("a<|mask|>c", allowed_special="all") == [0, 3, 2]
    assert char.encode("abc") == [0, 1, 2] and char.decode([0, 3, 4]) == "a<|mask|><|pad|>"
    char.save(tmp_path / "c.json")
    assert load_tokenizer(tmp_path / "c.json").to_dict() == char.to_dict()
    from gptkit.tokenizer.bpe_train import train_bpe

    (tmp_path / "t.txt").write_text("hello world " * 50)
    bpe = train_bpe([tmp_path / "t.txt"], 266, specials=["<|endoftext|>"])  # 9 merges, then the special
    extended = with_specials(bpe, [MASK_TOKEN, PAD_TOKEN])
    assert extended.specials == {"<|endoftext|>": 265, MASK_TOKEN: 266, PAD_TOKEN: 267}
    assert extended.encode("hello world") == bpe.encode("hello world")
    assert extended.encode("hello <|mask|>", allowed_special=[MASK_TOKEN])[-1] == 266


def test_train_fill_and_eval_a_masked_lm(small_data, tmp_path, capsys):
    run = tmp_path / "mlm"
    settings = [*TINY, "train.objective=mlm", "model.causal=false", "train.max_iters=60", "train.eval_interval=30"]
    assert (
        main(["train", "--data", str(small_data), "--out", str(run), *[a for s in settings for a in ("--set", s)]]) == 0
    )
    out = capsys.readouterr().out
    assert "gptkit fill" in out
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in evals if r["kind"] == "eval"]
    assert val[-1] < val[0] - 0.3  # it learns
    assert MASK_TOKEN in load_tokenizer(run).specials
    assert main(["fill", str(run), "ROMEO: <|mask|>ut", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mask 1: ") and lines[0].count("%") == 3 and lines[1].startswith("ROMEO: ")
    assert main(["eval", str(run), "--data", str(small_data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert 0 < result["accuracy"] < 1 and result["selected_tokens"] > 100 and result["bits_per_character"] > 0
    assert main(["eval", str(run), "--data", str(small_data), "--context", "8"]) == 2
    assert "--context 8: only a causal model takes a context length" in capsys.readouterr().err
    assert main(["sample", str(run), "--prompt", "RO"]) == 2
    assert "masked language model" in capsys.readouterr().err
    assert main(["fill", str(run), "no mask here"]) == 2


def test_mlm_needs_a_bidirectional_model(small_data, tmp_path, capsys):
    args = ["train", "--data", str(small_data), "--out", str(tmp_path / "x"), "--set", "train.objective=mlm"]
    assert main(args) == 2
    assert "model.causal`=false" in capsys.readouterr().err
    assert main(["train", "--data", str(small_data), "--out", str(tmp_path / "y"), "--set", "model.causal=false"]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_blank_lines_inside_bpe_tokens_end_passages():
    from gptkit.data.segments import passage_spans

    # ids: 0 "word", 1 ".\n\n" (text, then a blank line), 2 "\n", 3 ".\n"
    table = (np.array([0, 2, 1, 1]), np.array([False, False, True, False]))
    tokens = np.array([0, 0, 1, 0, 0, 3, 2, 0, 0, 2, 0])
    starts, lengths = passage_spans(tokens, table, block_size=100)
    assert list(zip(starts, lengths)) == [(0, 3), (3, 3), (7, 4)]  # a single newline stays inside a passage
    starts, lengths = passage_spans(tokens, table, block_size=100, min_newlines=1)  # line by line
    assert list(zip(starts, lengths)) == [(0, 3), (3, 3), (7, 2)]  # the last line, 1 token, is too short


def test_char_and_bpe_passages_hold_the_same_text(tmp_path, small_text_file):
    from gptkit.data.prepare import prepare
    from gptkit.tokenizer.bpe_train import train_bpe

    train_bpe([small_text_file], 600).save(tmp_path / "bpe.json")
    texts = {}
    for kind, tokenizer in (("char", "char"), ("bpe", str(tmp_path / "bpe.json"))):
        prepare([str(small_text_file)], tmp_path / kind, tokenizer=tokenizer)
        loaded = load_tokenizer(tmp_path / kind)
        passages = Passages(TokenDataset(tmp_path / kind), "train", 10**6, loaded)
        ids, real = passages.batch(np.arange(len(passages)), pad_id=0)
        texts[kind] = [loaded.decode(row[mask].tolist()).rstrip() for row, mask in zip(ids, real)]
    assert texts["char"] == texts["bpe"] and len(texts["char"]) > 100


def test_bpe_whole_words_and_random_tokens_that_are_never_special():
    from pathlib import Path

    from gptkit.data.masking import ordinary_ids
    from gptkit.tokenizer.formats import import_gpt2

    fixtures = Path(__file__).parent / "fixtures" / "gpt2"
    gpt2 = with_specials(import_gpt2(fixtures / "encoder.json", fixtures / "vocab.bpe"), [MASK_TOKEN, PAD_TOKEN])
    ids = torch.tensor([gpt2.encode("Unbelievably, the nightingale sang.")])
    pieces = [gpt2.decode([i]) for i in ids[0].tolist()]
    words = word_ids(ids, torch.ones_like(ids, dtype=torch.bool), word_edges_table(gpt2, gpt2.vocab_size))[0]
    grouped = {}
    for piece, word in zip(pieces, words.tolist()):
        grouped[word] = grouped.get(word, "") + piece
    assert list(grouped.values()) == ["Unbelievably", ",", " the", " nightingale", " sang", "."]
    assert len(pieces) > len(grouped)  # some words are several tokens, and they stay together
    allowed = ordinary_ids(gpt2, 50257)  # GPT-2's <|endoftext|> is 50256
    assert 50256 not in allowed.tolist() and len(allowed) == 50256
    g = torch.Generator().manual_seed(5)
    many = torch.randint(0, 50256, (200, 100), generator=g)
    recipe = MaskingRecipe(prob=0.5, mask=0.0, random=1.0)
    inputs, targets = mask_tokens(
        many, torch.ones_like(many, dtype=torch.bool), recipe, mask_id=50257, replacement_ids=allowed, generator=g
    )
    assert int(inputs.max()) < 50256 and (inputs != many).float().mean() > 0.45
