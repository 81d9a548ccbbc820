import pytest
from tokenizer.conftest import GPT2_DIR

from gptkit.generate import cut_at_stops, decode_pieces
from gptkit.tokenizer.formats import import_gpt2


@pytest.mark.parametrize(
    "pieces, stops, expected",
    [
        (["Hello", " wor", "ld\n", "\nnext"], ["\n\n"], "Hello world"),
        (["ab", "c"], ["x"], "abc"),
        (["a\n", "b"], ["\n\n"], "a\nb"),  # a held-back "\n" is released when no stop follows
        (["END"], ["END"], ""),
        (["one", " two"], ["two", "on"], ""),
    ],  # the earliest stop wins
)
def test_cut_at_stops(pieces, stops, expected):
    assert "".join(cut_at_stops(iter(pieces), stops)) == expected


def test_nothing_past_a_stop_is_requested():
    asked = []

    def source():
        for piece in ["a", "STOP", "b", "c"]:
            asked.append(piece)
            yield piece

    assert list(cut_at_stops(source(), ["STOP"])) == ["a"]
    assert asked == ["a", "STOP"]


def test_multibyte_characters_stream_whole():
    tok = import_gpt2(GPT2_DIR / "encoder.json", GPT2_DIR / "vocab.bpe")
    text = "한국어 😀 ok"
    ids = tok.encode(text)
    assert len(ids) > len(text.split())  # several characters span several tokens
    pieces = list(decode_pieces(tok, ids))
    assert "".join(pieces) == text and "\ufffd" not in "".join(pieces)
