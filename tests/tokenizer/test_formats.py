"""Round trips through every format give identical encodings; real consumers load what we write."""

import json

import pytest
from tokenizer.conftest import KOREAN

from gptkit.errors import GptkitError
from gptkit.tokenizer import load_tokenizer
from gptkit.tokenizer.formats import (
    export_gpt2,
    export_tiktoken,
    from_tiktoken_encoding,
    import_gpt2,
    import_tiktoken,
)
from gptkit.tokenizer.hf_json import read_hf_bpe, write_hf_bpe


@pytest.fixture(scope="module")
def sample_text(shakespeare_text):
    return shakespeare_text[-20_000:] + KOREAN[1].read_text(encoding="utf-8")[:5000] + " 😀 1234567 <|x|>"


@pytest.fixture(params=["trained", "gpt2"])
def tok(request, trained_tok, gpt2_tok):
    return {"trained": trained_tok, "gpt2": gpt2_tok}[request.param]


def test_our_json_round_trip(tok, tmp_path, sample_text):
    tok.save(tmp_path / "tok.json")
    back = load_tokenizer(tmp_path / "tok.json")
    assert back.encode(sample_text) == tok.encode(sample_text) and back.specials == tok.specials


def test_gpt2_format_round_trip_and_tiktoken_loads_it(tok, tmp_path, sample_text):
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    export_gpt2(tok, tmp_path)
    back = import_gpt2(tmp_path / "encoder.json", tmp_path / "vocab.bpe", pattern=tok.pattern)
    assert back.encode(sample_text) == tok.encode(sample_text)
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(tmp_path / "vocab.bpe"), encoder_json_file=str(tmp_path / "encoder.json")
    )
    enc = tiktoken.Encoding("check", pat_str=tok.pattern, mergeable_ranks=ranks, special_tokens=tok.specials)
    assert enc.encode_ordinary(sample_text) == tok.encode_python(sample_text)


def test_tiktoken_format_and_encoding_round_trip(tok, tmp_path, sample_text):
    export_tiktoken(tok, tmp_path)
    back = import_tiktoken(tmp_path / "tokenizer.tiktoken")
    assert back.merges == tok.merges and back.specials == tok.specials
    assert back.encode(sample_text) == tok.encode(sample_text)
    again = from_tiktoken_encoding(tok._tiktoken_encoding())
    assert again.encode_python(sample_text) == tok.encode_python(sample_text)


def test_hf_tokenizer_json_loads_in_tokenizers_and_transformers(tok, tmp_path, sample_text):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    write_hf_bpe(tok, tmp_path)
    ids = tok.encode(sample_text)
    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode(sample_text).ids == ids
    fast = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    assert fast(sample_text)["input_ids"] == ids and fast.decode(ids) == sample_text
    if "<|endoftext|>" in tok.specials:
        assert fast.convert_tokens_to_ids("<|endoftext|>") == tok.specials["<|endoftext|>"]
    back = read_hf_bpe(tmp_path / "tokenizer.json")
    assert back.merges == tok.merges and back.specials == tok.specials and back.encode(sample_text) == ids


def test_a_gpt2_style_hf_tokenizer_json_imports_exactly(tmp_path, gpt2_tok, shakespeare_text):
    from tokenizer.conftest import GPT2_DIR
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    hf = Tokenizer(models.BPE.from_file(str(GPT2_DIR / "encoder.json"), str(GPT2_DIR / "vocab.bpe")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's regex inside ByteLevel
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens(["<|endoftext|>"])
    hf.save(str(tmp_path / "tokenizer.json"))
    ours = read_hf_bpe(tmp_path / "tokenizer.json")
    assert ours.specials == {"<|endoftext|>": 50256}
    assert ours.encode(shakespeare_text) == gpt2_tok.encode(shakespeare_text) == hf.encode(shakespeare_text).ids


def test_hf_features_that_would_change_ids_are_refused(tmp_path, trained_tok):
    write_hf_bpe(trained_tok, tmp_path)
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    for change, expected in [
        (lambda d: d.update(normalizer={"type": "NFC"}), "normalizer"),
        (lambda d: d["added_tokens"][0].update(special=False), "not special"),
        (lambda d: d["pre_tokenizer"]["pretokenizers"][0].update(behavior="Removed"), "Isolated"),
        (lambda d: d["model"].update(ignore_merges=True), "ignore_merges"),
    ]:
        copy = json.loads(json.dumps(data))
        change(copy)
        (tmp_path / "changed.json").write_text(json.dumps(copy))
        with pytest.raises(GptkitError, match=expected):
            read_hf_bpe(tmp_path / "changed.json")


def test_custom_patterns_and_unreachable_merges_use_our_encoder():
    from gptkit.tokenizer.bpe import BPETokenizer, check_rank_consistent

    custom = BPETokenizer([], pattern=r"[a-z]+$|[a-z]|\s")
    assert custom.backend == "python"  # tiktoken's regex engine reads `$` differently
    b, c, a = 98, 99, 97  # merges (b,c), (a,b), (ab,c): "abc" can never be reached through its own merge
    odd = BPETokenizer([(b, c), (a, b), (257, c)], pattern=r"[\s\S]+")
    assert not check_rank_consistent(odd)
    marked = BPETokenizer(odd.merges, pattern=odd.pattern, rank_consistent=False)
    assert marked.backend == "python" and marked.encode("abc") == [97, 256]  # HF's answer too


def test_gpt2_export_refuses_another_byte_order(tmp_path):
    from gptkit.tokenizer.bpe import BPETokenizer

    with pytest.raises(GptkitError, match="export as tiktoken or hf"):
        export_gpt2(BPETokenizer([], pattern="gpt2"), tmp_path)


def test_special_token_rules_follow_tiktoken(gpt2_tok, gpt2_tiktoken):
    text = "a<|endoftext|>b"
    with pytest.raises(GptkitError, match="special token '<\\|endoftext\\|>' at character 1"):
        gpt2_tok.encode(text)
    assert gpt2_tok.encode(text, allowed_special="all") == gpt2_tiktoken.encode(text, allowed_special="all")
    assert gpt2_tok.encode(text, allowed_special={"<|endoftext|>"})[1] == 50256
    plain = gpt2_tok.encode(text, disallowed_special=())
    assert plain == gpt2_tiktoken.encode(text, disallowed_special=()) and 50256 not in plain
    with pytest.raises(GptkitError, match="not special tokens"):
        gpt2_tok.encode(text, allowed_special={"<|mask|>"})


def test_decoding_partial_utf8(gpt2_tok):
    ids = gpt2_tok.encode("한")  # one character, several byte-level tokens
    assert len(ids) > 1
    assert gpt2_tok.decode(ids[:1]) == "\ufffd"
    assert gpt2_tok.decode_bytes(ids[:1]) + gpt2_tok.decode_bytes(ids[1:]) == "한".encode()
    with pytest.raises(GptkitError, match="not in this tokenizer's vocabulary"):
        gpt2_tok.decode([50257])


def test_batch_encode_equals_one_by_one(trained_tok, sample_text):
    texts = [sample_text[i : i + 997] for i in range(0, len(sample_text), 997)]
    assert trained_tok.encode_batch(texts, workers=2) == [trained_tok.encode(t) for t in texts]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "tok.json: not valid JSON .*not a tokenizer file"),
        ('{"type": "bpe", "format_version": 1, "pattern": "x", "merges": [[1, 300]]}', "refers to a token made later"),
        ('{"type": "bpe", "format_version": 1, "pattern": "x", "merges": "oops"}', "damaged BPE tokenizer"),
        (
            '{"type": "bpe", "format_version": 1, "pattern": "x", "merges": [], "specials": {"<s>": 5}}',
            "already a byte",
        ),
        ('{"type": "bpe", "format_version": 9}', "unsupported"),
    ],
)
def test_corrupt_tokenizer_files_are_one_line_errors(tmp_path, content, expected):
    (tmp_path / "tok.json").write_text(content)
    with pytest.raises(GptkitError, match=expected) as err:
        load_tokenizer(tmp_path / "tok.json")
    assert "\n" not in str(err.value)


def test_gpt2_import_checks_its_files(tmp_path):
    (tmp_path / "encoder.json").write_text(json.dumps({"a": 0}))
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\n")
    with pytest.raises(GptkitError, match="single-byte token"):
        import_gpt2(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    with pytest.raises(GptkitError, match="no such file"):
        import_gpt2(tmp_path / "missing.json", tmp_path / "vocab.bpe")
