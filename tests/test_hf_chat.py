"""A chat model exported to Hugging Face: `apply_chat_template` gives gptkit's ids, and `transformers` gives the
same greedy reply."""

import random

import pytest
import torch

import gptkit
from gptkit.chat.conversations import Message
from gptkit.chat.template import conversation_from, render, render_prompt
from gptkit.hf import export_hf

pytest.importorskip("transformers")


def random_conversations(count: int, seed: int = 0) -> list[list[dict]]:
    """Conversations of 1-4 exchanges, half with a system message, some ending on the user's turn."""
    rng = random.Random(seed)

    def text() -> str:
        return " ".join(
            "".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 4))
        )

    conversations = []
    for i in range(count):
        messages = [{"role": "system", "content": text()}] if i % 2 else []
        for _ in range(rng.randint(1, 4)):
            messages += [{"role": "user", "content": text()}, {"role": "assistant", "content": text()}]
        conversations.append(messages[:-1] if i % 3 == 0 else messages)
    return conversations


def template_ids(tokenizer, messages, **options) -> list[int]:
    """`apply_chat_template`'s ids (newer transformers return them inside a dict by default)."""
    return list(tokenizer.apply_chat_template(messages, return_dict=True, **options)["input_ids"])


@pytest.fixture(scope="module")
def exported(chat_run, tmp_path_factory):
    return export_hf(chat_run, tmp_path_factory.mktemp("hf") / "chat", echo=lambda line: None)


def test_apply_chat_template_gives_gptkits_ids(exported, chat_run):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(exported)
    ours = gptkit.load(chat_run).tokenizer
    asked = 0
    for messages in random_conversations(60):
        if messages[-1]["role"] == "assistant":  # a whole conversation, as training renders it
            whole = tuple(Message(m["role"], m["content"]) for m in messages)
            assert template_ids(hf, messages) == render(whole, ours)[0]
            messages = [*messages, {"role": "user", "content": "abc de"}]
        expected = render_prompt(conversation_from(messages), ours)
        assert template_ids(hf, messages, add_generation_prompt=True) == expected
        asked += any(m["role"] == "system" for m in messages) and len(messages) >= 5
    assert asked >= 20  # system messages and several turns among them


def test_transformers_gives_the_same_greedy_reply(exported, chat_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_tok, hf_model = AutoTokenizer.from_pretrained(exported), AutoModelForCausalLM.from_pretrained(exported)
    run = gptkit.load(chat_run, device="cpu")
    assert hf_model.generation_config.eos_token_id == run.tokenizer.specials["<|im_end|>"]
    for word in ("abc", "hgf", "bad"):
        messages = [{"role": "user", "content": word}]
        ids = torch.tensor([template_ids(hf_tok, messages, add_generation_prompt=True)])
        out = hf_model.generate(ids, max_new_tokens=6, do_sample=False, attention_mask=torch.ones_like(ids))
        reply = hf_tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        assert reply == run.chat(messages, 6, temperature=0)
