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


def random_conversations(count: int, seed: int = 0, alphabet: str = "abcdefgh ") -> list[list[dict]]:
    """Conversations of 2-4 exchanges, five in six with a system message, some ending on the user's turn."""
    rng = random.Random(seed)

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))).strip() or alphabet[0]

    conversations = []
    for i in range(count):
        messages = [{"role": "system", "content": text()}] if i % 6 else []
        for _ in range(rng.randint(2, 4)):
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
        asked += messages[0]["role"] == "system" and sum(m["role"] == "user" for m in messages) >= 2
    assert asked >= 50  # with a system message and several turns


def test_transformers_gives_the_same_greedy_reply(exported, chat_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_tok, hf_model = AutoTokenizer.from_pretrained(exported), AutoModelForCausalLM.from_pretrained(exported)
    run = gptkit.load(chat_run, device="cpu")
    ends = [run.tokenizer.specials["<|im_end|>"], run.tokenizer.specials["<|im_start|>"]]
    assert hf_model.generation_config.eos_token_id == ends  # where gptkit's replies end too
    for word in ("abc", "hgf", "bad"):
        messages = [{"role": "user", "content": word}]
        ids = torch.tensor([template_ids(hf_tok, messages, add_generation_prompt=True)])
        out = hf_model.generate(ids, max_new_tokens=6, do_sample=False, attention_mask=torch.ones_like(ids))
        reply = hf_tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        assert reply == run.chat(messages, 6, temperature=0)


def test_a_bpe_vocabulary_renders_the_same_in_transformers(tmp_path):
    """GPT-2's vocabulary with the chat tokens: byte-level BPE, where a split in the wrong place would show."""
    from pathlib import Path

    from transformers import AutoTokenizer

    from gptkit.chat.template import JINJA_TEMPLATE, chat_tokenizer
    from gptkit.tokenizer.formats import import_gpt2
    from gptkit.tokenizer.hf_json import write_hf_tokenizer

    fixtures = Path(__file__).parent / "fixtures" / "gpt2"
    ours = chat_tokenizer(import_gpt2(fixtures / "encoder.json", fixtures / "vocab.bpe"))
    write_hf_tokenizer(ours, tmp_path, chat_template=JINJA_TEMPLATE, eos_token="<|im_end|>")
    hf = AutoTokenizer.from_pretrained(tmp_path)
    for messages in random_conversations(60, seed=1, alphabet="ab cé\n\t  12.,?!한국語🙂"):
        if messages[-1]["role"] == "assistant":
            whole = tuple(Message(m["role"], m["content"]) for m in messages)
            assert template_ids(hf, messages) == render(whole, ours)[0]
            messages = [*messages, {"role": "user", "content": "and then?"}]
        expected = render_prompt(conversation_from(messages), ours)
        assert template_ids(hf, messages, add_generation_prompt=True) == expected
