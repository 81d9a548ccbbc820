"""Conversation files -> chat data: the three formats, the loss mask token by token, packing, and bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gptkit.chat.template import IM_END, IM_START
from gptkit.cli import main
from gptkit.data.chat import ChatRows, prepare_chat
from gptkit.data.dataset import TokenDataset
from gptkit.errors import GptkitError
from gptkit.tokenizer import load_tokenizer

CONVERSATIONS = [  # (system or None, [(user, assistant), ...])
    ("be brief.", [("hi there", "hello!"), ("how are you?", "fine, thanks.")]),
    (None, [("name a colour", "blue")]),
    ("you count.", [("one", "two"), ("three", "four"), ("five", "six")]),
]


def as_openai(system, turns) -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    for user, assistant in turns:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"messages": messages}


def as_sharegpt(system, turns) -> dict:
    items = [{"from": "system", "value": system}] if system else []
    for user, assistant in turns:
        items += [{"from": "human", "value": user}, {"from": "gpt", "value": assistant}]
    return {"conversations": items}


def write_file(path, records, *, array=False) -> None:
    text = json.dumps(records, indent=1) if array else "".join(json.dumps(r) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")


def expected_tokens(system, turns) -> list[tuple[str, int]]:
    """(piece, learned) in order, written out from ChatML by hand: a special token is one piece, other text one
    piece per character (a char tokenizer); learned = assistant content and the <|im_end|> after it."""
    pieces = []

    def message(role, content):
        learned = int(role == "assistant")
        pieces.append((IM_START, 0))
        pieces.extend((c, 0) for c in f"{role}\n")
        pieces.extend((c, learned) for c in content)
        pieces.append((IM_END, learned))
        pieces.append(("\n", 0))

    if system:
        message("system", system)
    for user, assistant in turns:
        message("user", user)
        message("assistant", assistant)
    return pieces


def read_split(folder, split="train") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = TokenDataset(folder)
    ids = np.concatenate([np.asarray(s) for s in data.shards[split]]).astype(np.int64)
    mask = np.fromfile(folder / f"{split}.mask.bin", dtype=np.uint8)
    starts = np.fromfile(folder / f"{split}.conversations.bin", dtype=np.int64)
    return ids, mask, starts


@pytest.mark.parametrize("kind", ["openai", "sharegpt", "openai-array"])
def test_the_mask_is_one_exactly_on_assistant_content_and_its_end(tmp_path, kind):
    convert = as_sharegpt if kind == "sharegpt" else as_openai
    write_file(tmp_path / "c.json", [convert(s, t) for s, t in CONVERSATIONS], array=kind.endswith("array"))
    prepare_chat([tmp_path / "c.json"], tmp_path / "data", val_fraction=0.0)
    tok = load_tokenizer(tmp_path / "data")
    ids, mask, starts = read_split(tmp_path / "data")
    assert len(starts) == len(CONVERSATIONS) + 1
    for (system, turns), start, end in zip(CONVERSATIONS, starts[:-1], starts[1:], strict=True):
        expected = expected_tokens(system, turns)
        got = [(tok.decode([int(i)]), int(m)) for i, m in zip(ids[start:end], mask[start:end], strict=True)]
        assert got == expected


def test_alpaca_records_become_a_user_turn_and_the_reply(tmp_path):
    records = [
        {"instruction": "add", "input": "2 and 3", "output": "5"},
        {"instruction": "say hi", "output": "hi"},
    ]
    write_file(tmp_path / "a.jsonl", records)
    prepare_chat([tmp_path / "a.jsonl"], tmp_path / "data", val_fraction=0.0)
    tok = load_tokenizer(tmp_path / "data")
    ids, mask, starts = read_split(tmp_path / "data")
    first = [(tok.decode([int(i)]), int(m)) for i, m in zip(ids[: starts[1]], mask[: starts[1]], strict=True)]
    assert first == expected_tokens(None, [("add\n\n2 and 3", "5")])
    assert tok.decode(ids[mask == 1].tolist()) == f"5{IM_END}hi{IM_END}"


def test_a_bpe_vocabulary_gains_the_chat_tokens_after_its_own_ids(tmp_path):
    from gptkit.tokenizer.formats import import_gpt2

    fixtures = Path(__file__).parent / "fixtures" / "gpt2"
    base = import_gpt2(fixtures / "encoder.json", fixtures / "vocab.bpe")
    base.save(tmp_path / "gpt2.json")
    write_file(tmp_path / "c.jsonl", [as_openai(s, t) for s, t in CONVERSATIONS])
    prepare_chat([tmp_path / "c.jsonl"], tmp_path / "data", tokenizer=tmp_path / "gpt2.json", val_fraction=0.0)
    tok = load_tokenizer(tmp_path / "data")
    assert tok.specials[IM_START] == base.vocab_size and tok.specials[IM_END] == base.vocab_size + 1
    ids, mask, _ = read_split(tmp_path / "data")
    learned = tok.decode(ids[mask == 1].tolist())
    assert learned == "".join(f"{a}{IM_END}" for _, turns in CONVERSATIONS for _, a in turns)


def test_packing_keeps_conversations_whole_and_cuts_only_the_too_long(tmp_path):
    records = [as_openai(None, [("q" * n, "a" * n)]) for n in (3, 4, 40, 5)]  # the third is longer than a row
    write_file(tmp_path / "c.jsonl", records)
    prepare_chat([tmp_path / "c.jsonl"], tmp_path / "data", val_fraction=0.0)
    rows = ChatRows(TokenDataset(tmp_path / "data"), block_size=64)
    assert rows.truncated["train"] == 1
    ids, mask, starts = read_split(tmp_path / "data")
    lengths = np.diff(starts)
    packed_ids, packed_mask = rows.rows["train"]
    assert packed_ids.shape[1] == 65 and lengths[0] + lengths[1] <= 65 < lengths[2]
    # greedy in order: [3+4] fit one row, the long one fills its own (cut), the last one starts a new row
    assert (packed_ids[0, : lengths[0]] == ids[: starts[1]]).all()
    assert (packed_ids[0, lengths[0] : lengths[0] + lengths[1]] == ids[starts[1] : starts[2]]).all()
    assert (packed_ids[1] == ids[starts[2] : starts[2] + 65]).all()
    assert (packed_ids[2, : lengths[3]] == ids[starts[3] :]).all() and not packed_mask[2, lengths[3] :].any()
    x, y = rows.read_windows("train", torch.arange(3), 64, torch.device("cpu"))
    learned = torch.from_numpy(packed_mask[:, 1:])
    assert torch.equal(y[learned], x.new_tensor(packed_ids[:, 1:])[learned]) and (y[~learned] == -1).all()


@pytest.mark.parametrize(
    "content, reason",
    [
        (
            '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{oops\n',
            "2: not valid JSON",
        ),
        ('{"messages": [{"role": "robot", "content": "hi"}]}\n', "1: message 1: unknown role 'robot'"),
        (
            '{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}\n',
            "1: message 1 (user): empty content",
        ),
        (
            '{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}\n',
            "1: two user turns in a row (message 2)",
        ),
        ('{"messages": [{"role": "user", "content": "a"}]}\n', "1: no assistant turn"),
        ('{"text": "plain"}\n', "1: not a conversation in a known format"),
        (
            '{"messages": [{"role": "user", "content": "a<|im_end|>"}, {"role": "assistant", "content": "b"}]}\n',
            "1: message 1 (user): holds the chat template's own token text",
        ),
        (
            b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n\xff\n',
            "2: not UTF-8",
        ),
        (
            '[\n {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},\n'
            ' {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "late"}]}\n]\n',
            "3: a system message may only come first",
        ),
    ],
)
def test_bad_conversations_are_one_line_errors_naming_file_and_line(tmp_path, capsys, content, reason):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["prepare", "--chat", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"bad.jsonl:{reason}" in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "meta.json").exists()  # nothing written when prepare refuses


def test_skip_invalid_skips_and_counts(tmp_path, capsys):
    good = as_openai(None, [("a", "b")])
    write_file(tmp_path / "c.jsonl", [good, {"messages": [{"role": "user", "content": "x"}]}, good])
    assert main(["prepare", "--chat", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "d"), "--skip-invalid"]) == 0
    assert "1 invalid record(s) skipped" in capsys.readouterr().out
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert meta["chat"]["skipped"] == 1 and sum(meta["chat"]["conversations"].values()) == 2


def test_a_role_the_vocabulary_cannot_spell_is_a_clear_error(tmp_path):
    from gptkit.chat.template import chat_tokenizer
    from gptkit.tokenizer.char import CharTokenizer

    with pytest.raises(GptkitError, match="cannot spell the chat template's 'system'"):
        chat_tokenizer(CharTokenizer.from_text("abcdefghijklmnopqr\n"))


def test_a_row_cut_before_any_reply_is_left_out(tmp_path):
    records = [as_openai(None, [("q" * 60, "a")]), as_openai(None, [("q", "a")])]  # the first has no reply in a row
    write_file(tmp_path / "c.jsonl", records)
    prepare_chat([tmp_path / "c.jsonl"], tmp_path / "data", val_fraction=0.0)
    rows = ChatRows(TokenDataset(tmp_path / "data"), block_size=32)
    assert rows.num_rows("train") == 1 and rows.empty["train"] == 1 and rows.truncated["train"] == 1
    assert "1 of them before any reply, so left out" in rows.describe()
    _, y = rows.read_windows("train", torch.arange(1), 32, torch.device("cpu"))
    assert (y >= 0).any()  # every row teaches something: a batch's loss is never 0/0


def test_a_message_the_vocabulary_cannot_spell_can_be_skipped_but_not_everything(tmp_path):
    from gptkit.tokenizer.char import CharTokenizer

    CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz \n").save(tmp_path / "vocab.json")
    write_file(tmp_path / "c.jsonl", [as_openai(None, [("hi", "yo")]), as_openai(None, [("HI", "yo")])])
    with pytest.raises(GptkitError, match=r"c.jsonl:2: .*'H'.*pass --skip-invalid"):
        prepare_chat([tmp_path / "c.jsonl"], tmp_path / "d", tokenizer=tmp_path / "vocab.json")
    meta = prepare_chat([tmp_path / "c.jsonl"], tmp_path / "d", tokenizer=tmp_path / "vocab.json", skip_invalid=True)
    assert meta["chat"]["skipped"] == 1 and sum(meta["chat"]["conversations"].values()) == 1
    write_file(tmp_path / "bad.jsonl", [as_openai(None, [("HI", "YO")])])
    with pytest.raises(GptkitError, match="no usable conversation"):
        prepare_chat([tmp_path / "bad.jsonl"], tmp_path / "e", tokenizer=tmp_path / "vocab.json", skip_invalid=True)


def test_a_bpe_token_across_the_header_and_a_reply_counts_as_reply():
    """GPT-2's merges join the header's newline with a reply that starts with newlines ("\\n\\n"): such a token
    is learned (mask 1), as docs/chat.md says; splitting it would break parity with apply_chat_template."""
    from gptkit.chat.conversations import Message
    from gptkit.chat.template import chat_tokenizer, render
    from gptkit.tokenizer.formats import import_gpt2

    fixtures = Path(__file__).parent / "fixtures" / "gpt2"
    tok = chat_tokenizer(import_gpt2(fixtures / "encoder.json", fixtures / "vocab.bpe"))
    ids, mask = render((Message("user", "hi"), Message("assistant", "\n\nyes")), tok)
    pieces = [(tok.decode([i]), m) for i, m in zip(ids, mask, strict=True)]
    start = pieces.index(("istant", 0))  # GPT-2 spells the role "ass" + "istant"
    assert pieces[start + 1] == ("\n\n", 1)  # the header's newline and the reply's first one, together
    assert tok.decode([i for i, m in zip(ids, mask, strict=True) if m]) == f"\n\n\nyes{IM_END}"
