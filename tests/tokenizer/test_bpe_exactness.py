"""Our BPE encoder gives exactly the ids of GPT-2 (via tiktoken) and of HF tokenizers, on real and nasty text."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizer.conftest import KOREAN, read_exact


def test_gpt2_files_encode_tiny_shakespeare_exactly_as_tiktoken(gpt2_tok, gpt2_tiktoken, shakespeare_text):
    expected = gpt2_tiktoken.encode(shakespeare_text)
    assert len(expected) == 338_025  # the count in the data's provenance note
    assert gpt2_tok.encode_python(shakespeare_text) == expected
    assert gpt2_tok.encode(shakespeare_text) == expected
    assert gpt2_tok.encode("Hello world") == [15496, 995]
    assert gpt2_tok.vocab_size == 50257 and gpt2_tok.specials == {"<|endoftext|>": 50256}


def test_all_of_tiny_shakespeare_matches_hf(shakespeare_text, gpt2_tok, gpt2_hf, trained_tok, trained_hf):
    assert gpt2_hf.encode(shakespeare_text).ids == gpt2_tok.encode(shakespeare_text)
    assert trained_hf.encode(shakespeare_text).ids == trained_tok.encode_python(shakespeare_text)


def test_named_patterns_are_tiktokens_own():
    import ast
    import inspect

    from tiktoken_ext import openai_public

    from gptkit.tokenizer.patterns import GPT2_PATTERN, GPT4_PATTERN

    assert GPT2_PATTERN == openai_public.r50k_pat_str
    source = inspect.getsource(openai_public.cl100k_base)
    literal = source[source.index('"pat_str": ') + len('"pat_str": ') :].split("\n")[0].rstrip(",")
    assert GPT4_PATTERN == ast.literal_eval(literal)


def test_lone_surrogates_are_a_clear_error(gpt2_tok):
    from gptkit.errors import GptkitError

    for encode in (gpt2_tok.encode, gpt2_tok.encode_ordinary):
        with pytest.raises(GptkitError, match="lone surrogate \\(U\\+D800\\) at character 1"):
            encode("a\ud800b")


@pytest.mark.parametrize("path", KOREAN, ids=lambda p: p.stem)
def test_korean_text_matches_tiktoken_and_hf(path, gpt2_tok, gpt2_tiktoken, gpt2_hf, trained_tok, trained_hf):
    text = read_exact(path)
    assert "\r\n" in text  # the stories have CRLF line endings, kept here on purpose
    ids = gpt2_tok.encode_python(text)
    assert ids == gpt2_tiktoken.encode(text) == gpt2_hf.encode(text).ids
    assert gpt2_tok.decode(ids) == text
    ours = trained_tok.encode_python(text)
    assert ours == trained_tok._tiktoken_encoding().encode_ordinary(text) == trained_hf.encode(text).ids
    assert trained_tok.decode(ours) == text


CHINESE = "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。——李白《靜夜思》 2024年"
NASTY = [
    "",
    " ",
    "\n\n\n",
    "   leading and trailing   ",
    "tabs\t\tand\r\nCRLF\r\n",
    "x" * 3000,
    " " * 700 + "end",
    "1234567890 3.14159 1,000,000",
    "emoji 😀👍🏽🇰🇷 👨‍👩‍👧",
    "combining é ñ ḁ̄ Z̤͔ͧ̑̓ä͖̭̈̇",
    "don't I'll WE'VE it's",
    CHINESE,
    "مرحبا بالعالم",
    "Здравствуй, мир!",
    "\u200b\u200d\ufeff",
    "a\u0300\u0301\u0302b",
]


@pytest.mark.parametrize("text", NASTY)
def test_nasty_strings_match_everywhere(text, gpt2_tok, gpt2_tiktoken, gpt2_hf, trained_tok, trained_hf):
    assert gpt2_tok.encode_python(text) == gpt2_tiktoken.encode(text) == gpt2_hf.encode(text).ids
    ours = trained_tok.encode_python(text)
    assert ours == trained_tok.encode(text) == trained_hf.encode(text).ids
    assert trained_tok.decode(ours) == text and gpt2_tok.decode(gpt2_tok.encode(text)) == text


def escape_surrogates(text: str) -> str:
    """Lone surrogates cannot be UTF-8; escape them the way the text would reach a file."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


unicode_text = st.text(st.characters(blacklist_categories=()), max_size=200).map(escape_surrogates)
spacey_text = st.lists(
    st.sampled_from([" ", "  ", "\n", "\t", "\r\n", "a", "Ab", "9", "123456", "'s", "'LL", "!!", "é", "한국", "😀"]),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(unicode_text, spacey_text))
def test_random_text_matches_tiktoken_and_hf(text, gpt2_tok, gpt2_tiktoken, gpt2_hf, trained_tok, trained_hf):
    assert gpt2_tok.encode_python(text) == gpt2_tiktoken.encode_ordinary(text) == gpt2_hf.encode(text).ids
    ours = trained_tok.encode_python(text)
    assert ours == trained_tok.encode_ordinary(text) == trained_hf.encode(text).ids
    assert trained_tok.decode(ours) == text
