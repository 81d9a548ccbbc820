import pytest

from gptkit.errors import GptkitError
from gptkit.tokenizer import load_tokenizer
from gptkit.tokenizer.char import CharTokenizer

NASTY = ["", "a", "\n\n", "안녕하세요, 세상! 😀🇰🇷", "tab\tand\r\nCRLF", "中文字符 and ñ"]


def test_round_trip_on_the_whole_of_tiny_shakespeare(shakespeare_text):
    tok = CharTokenizer.from_text(shakespeare_text)
    assert tok.vocab_size == 65  # documented in the data's provenance note
    ids = tok.encode(shakespeare_text)
    assert len(ids) == len(shakespeare_text)
    assert tok.decode(ids) == shakespeare_text


@pytest.mark.parametrize("text", NASTY)
def test_round_trip_on_multibyte_and_odd_text(text):
    tok = CharTokenizer.from_text("".join(NASTY))
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode_bytes(tok.encode(text)) == text.encode("utf-8")


def test_ids_follow_code_point_order():
    tok = CharTokenizer.from_text("cab")
    assert tok.encode("abc") == [0, 1, 2]


def test_unseen_character_is_a_clear_one_line_error():
    tok = CharTokenizer.from_text("hello")
    with pytest.raises(GptkitError) as err:
        tok.encode("help")
    message = str(err.value)
    assert "'p'" in message and "U+0070" in message and "\n" not in message


def test_unknown_replacement_maps_unseen_characters():
    tok = CharTokenizer.from_text("hello", unknown="?")
    assert tok.decode(tok.encode("help!")) == "hel??"


def test_decode_of_out_of_range_id_is_an_error():
    tok = CharTokenizer.from_text("ab")
    with pytest.raises(GptkitError, match="outside"):
        tok.decode([0, 5])


def test_save_and_load_round_trip(tmp_path):
    tok = CharTokenizer.from_text("안녕 hello", unknown="h")
    tok.save(tmp_path / "tok.json")
    loaded = load_tokenizer(tmp_path / "tok.json")
    assert loaded.chars == tok.chars and loaded.unknown == "h"
    tok.save(tmp_path / "tokenizer.json")
    assert load_tokenizer(tmp_path).chars == tok.chars  # a folder holding tokenizer.json works too


def test_load_rejects_files_that_are_not_tokenizers(tmp_path):
    (tmp_path / "x.json").write_text('{"type": "mystery"}')
    with pytest.raises(GptkitError, match="unknown tokenizer type"):
        load_tokenizer(tmp_path / "x.json")
    with pytest.raises(GptkitError, match="no tokenizer file"):
        load_tokenizer(tmp_path / "missing.json")
