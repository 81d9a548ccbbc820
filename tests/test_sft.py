"""Chat fine-tuning (`train.objective = sft`) from a pretrained run: the vocabulary grows, only assistant tokens
are learned and evaluated, and pretraining text can be mixed in."""

import json

import pytest
import torch
from helpers import typed

import gptkit
from gptkit.checkpoint import with_new_vocab_rows
from gptkit.cli import main


def test_new_vocabulary_rows_start_as_the_mean_of_the_trained_ones():
    old = {
        "transformer.wte.weight": torch.randn(5, 3),
        "lm_head.weight": torch.randn(5, 3),
        "ln_f.weight": torch.ones(3),
    }
    expected = {name: torch.empty(7, 3) for name in ("transformer.wte.weight", "lm_head.weight")}
    grown = with_new_vocab_rows(old, {**expected, "ln_f.weight": torch.empty(3)})
    for name in expected:
        assert torch.equal(grown[name][:5], old[name])
        assert torch.allclose(grown[name][5:], old[name].mean(0).expand(2, -1))
    assert grown["ln_f.weight"] is old["ln_f.weight"]


def test_fine_tuning_a_pretrained_run_learns_and_scores_assistant_tokens_only(trained_run, chat_data, chat_run, capsys):
    base = gptkit.load(trained_run)
    out = chat_run
    tuned = gptkit.load(out)
    assert tuned.config.train.objective == "sft"
    assert tuned.model.config.vocab_size == base.model.config.vocab_size + 2  # <|im_start|>, <|im_end|>
    assert tuned.tokenizer.to_dict() == gptkit.load_tokenizer(chat_data).to_dict()
    assert main(["eval", str(out), "--data", str(chat_data), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    meta = json.loads((chat_data / "meta.json").read_text())
    assert result["tokens"] == meta["chat"]["supervised_tokens"]["val"]  # the assistant's tokens, each once
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in records if "val_loss" in r]
    steps = [r for r in records if r["kind"] == "train" and r["step"] > 1]
    processed = tuned.config.train.batch_size * tuned.model.config.block_size  # tokens a step runs through
    learned = [r["tokens_per_s"] * r["ms_per_step"] / 1000 for r in steps]  # tokens/s counts the replies only
    assert all(0 < tokens < processed / 2 for tokens in learned)
    assert val[-1] < val[0]  # learning the replies, from the first eval on


def test_pretraining_text_can_be_mixed_in(tmp_path, trained_run, chat_data, small_text_file, capsys):
    text = tmp_path / "text"
    tokenizer = str(chat_data / "tokenizer.json")  # the same ids as the chat data, so the two can mix
    assert main(["prepare", str(small_text_file), "--tokenizer", tokenizer, "--out", str(text)]) == 0
    config = tmp_path / "mix.toml"
    config.write_text(f'[[data]]\npath = "{chat_data}"\nweight = 0.8\n[[data]]\npath = "{text}"\nweight = 0.2\n')
    args = ["train", "--config", str(config), "--init-from", str(trained_run), "--out", str(tmp_path / "r")]
    assert main([*args, "--preset", "sft", "--set", "train.max_iters=10", "train.device=cpu"]) == 0
    assert f"chat {chat_data.name}: " in capsys.readouterr().out  # the packed rows, in the training log
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert any(f"val_loss.{chat_data.name}" in r for r in records) and any(
        f"val_loss.{text.name}" in r for r in records
    )


def test_sft_without_chat_data_says_how_to_make_it(tmp_path, trained_run, small_data, capsys):
    args = ["train", "--data", str(small_data), "--init-from", str(trained_run), "--out", str(tmp_path / "r")]
    assert main([*args, "--preset", "sft"]) == 2
    assert "needs chat data" in capsys.readouterr().err


def test_run_chat_replies_in_the_template_and_stops_at_the_end_of_its_turn(chat_run, trained_run):
    run = gptkit.load(chat_run)
    assert run.is_chat and not gptkit.load(trained_run).is_chat
    messages = [{"role": "user", "content": "abc"}]  # block_size 32: room for a short exchange
    reply = run.chat(messages, max_new_tokens=6, seed=3)
    assert reply == "".join(run.stream_chat(messages, 6, seed=3))
    ids, dropped = run.chat_prompt(messages, 6)
    assert dropped == 0 and run.tokenizer.decode(ids) == "<|im_start|>user\nabc<|im_end|>\n<|im_start|>assistant\n"
    greedy = run.chat(messages, max_new_tokens=6, temperature=0)
    full = run.generate_ids(torch.tensor([ids]), 6, temperature=0)[0].tolist()
    ends = [i for i, token in enumerate(full) if token in run.chat_stop_ids]  # <|im_end|> or <|im_start|>
    assert greedy == run.tokenizer.decode(full[: ends[0]] if ends else full)
    with pytest.raises(gptkit.GptkitError, match="the last message must be the user's"):
        run.chat([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    with pytest.raises(gptkit.GptkitError, match="is not a chat model"):
        gptkit.load(trained_run).chat([{"role": "user", "content": "a"}])


def test_the_oldest_turns_go_first_and_the_system_message_stays():
    from gptkit.chat.template import chat_tokenizer, conversation_from, fit_conversation, fitted_prompt, render_prompt
    from gptkit.tokenizer.char import CharTokenizer

    tok = chat_tokenizer(CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz\n"))
    turns = [("system", "be"), ("user", "one"), ("assistant", "two"), ("user", "three"), ("assistant", "four")]
    conversation = conversation_from([{"role": r, "content": c} for r, c in [*turns, ("user", "five")]])
    kept, dropped = fit_conversation(conversation, tok, len(render_prompt(conversation, tok)) - 1)
    assert fitted_prompt(conversation, tok, len(render_prompt(conversation, tok)) - 1) == (render_prompt(kept, tok), 2)
    assert dropped == 2 and [m.content for m in kept] == ["be", "three", "four", "five"]
    with pytest.raises(gptkit.GptkitError, match="the last message alone"):
        fit_conversation(conversation, tok, 10)


def test_the_console_keeps_the_conversation_and_drops_the_oldest_turns(chat_run):
    import io

    from gptkit.cli.chat import chat
    from gptkit.sampling import SamplingConfig

    read = typed(["abc", "/history", "bca", "/history", "/system rev", "/history", "cab", "/reset", "/history"])
    out = io.StringIO()
    chat(gptkit.load(chat_run), SamplingConfig(max_new_tokens=6, seed=1), read=read, out=out)
    text = out.getvalue()
    assert "a chat model" in text
    assert "[user] abc\n[assistant] " in text  # the first exchange, remembered
    assert "the oldest 2 messages are forgotten" in text  # block_size 32: the second exchange pushes out the first
    assert "system message: 'rev'" in text and "[system] rev\n[user] bca" in text
    assert "error: messages: the last message alone" in text  # with the system message nothing fits; said, not fatal
    assert text.rstrip().endswith("conversation forgotten\n[system] rev")


def test_chat_data_wants_the_sft_objective(tmp_path, trained_run, chat_data, capsys):
    args = ["train", "--data", str(chat_data), "--init-from", str(trained_run), "--out", str(tmp_path / "r")]
    assert main(args) == 2
    assert "fine-tune on them with `train.objective=sft` (--preset sft)" in capsys.readouterr().err


def test_the_sft_preset_sets_its_own_schedule_whatever_the_run_it_starts_from(tmp_path, trained_run):
    import shutil

    from gptkit.train.settings import run_settings

    base = tmp_path / "speedrun-like"
    shutil.copytree(trained_run, base)
    raw = json.loads((base / "config.json").read_text())
    raw["train"].update(optimizer="muon", schedule="wsd", time_budget_s=600.0, grad_accum=4, lr_decay_iters=99)
    (base / "config.json").write_text(json.dumps(raw))
    train = run_settings(tmp_path / "chat", preset="sft", init_from=base).train
    assert (train.optimizer, train.schedule, train.time_budget_s, train.grad_accum) == ("adamw", "cosine", 0.0, 1)
    assert train.lr_decay_iters == 0 and train.objective == "sft"


def test_prepare_counts_the_conversations_too_long_for_the_runs_rows(tmp_path, trained_run, capsys):
    messages = [{"role": "user", "content": "abc"}, {"role": "assistant", "content": "cba"}]
    long = [{"role": "user", "content": "abc " * 10}, {"role": "assistant", "content": "cba"}]  # 58 tokens > 33
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"messages": m}) + "\n" for m in [messages, long, messages]))
    args = [
        "prepare",
        "--chat",
        str(tmp_path / "c.jsonl"),
        "--tokenizer",
        str(trained_run),
        "--out",
        str(tmp_path / "d"),
    ]
    assert main(args) == 0
    assert "rows of the run's block_size 32 + 1 tokens: 1 conversation(s) are longer" in capsys.readouterr().out
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert meta["chat"]["too_long"] == {"block_size": 32, "conversations": 1}
