"""Tokenizers shared by the tokenizer tests: the real GPT-2 files and one trained on Shakespeare + Korean."""

from pathlib import Path

import pytest

from gptkit.tokenizer.bpe_train import train_bpe
from gptkit.tokenizer.formats import import_gpt2

FIXTURES = Path(__file__).parent.parent / "fixtures"
GPT2_DIR = FIXTURES / "gpt2"
KOREAN = sorted((FIXTURES / "korean").glob("*.txt"))


def read_exact(path: Path) -> str:
    """The file's text with its CRLF line endings kept (read_text would turn them into LF)."""
    return path.read_bytes().decode("utf-8")


@pytest.fixture(scope="session")
def gpt2_tok():
    return import_gpt2(GPT2_DIR / "encoder.json", GPT2_DIR / "vocab.bpe")


@pytest.fixture(scope="session")
def gpt2_tiktoken():
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    from gptkit.tokenizer.patterns import GPT2_PATTERN

    # tiktoken's own `gpt2` encoding, built from the same files without the network (see fixtures/README.md).
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(GPT2_DIR / "vocab.bpe"), encoder_json_file=str(GPT2_DIR / "encoder.json")
    )
    return tiktoken.Encoding(
        "gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256}
    )


@pytest.fixture(scope="session")
def trained_tok(tmp_path_factory, shakespeare_text):
    corpus = tmp_path_factory.mktemp("corpus") / "mixed.txt"
    corpus.write_text(shakespeare_text[:200_000] + "".join(read_exact(p) for p in KOREAN), newline="")
    return train_bpe([corpus], 2048, pattern="gpt4", specials=["<|endoftext|>", "<|pad|>"], progress=False)


def hf_from(tok, tmp_path_factory):
    from tokenizers import Tokenizer

    from gptkit.tokenizer.hf_json import write_hf_bpe

    out = tmp_path_factory.mktemp("hf")
    write_hf_bpe(tok, out)
    return Tokenizer.from_file(str(out / "tokenizer.json"))


@pytest.fixture(scope="session")
def gpt2_hf(gpt2_tok, tmp_path_factory):
    return hf_from(gpt2_tok, tmp_path_factory)


@pytest.fixture(scope="session")
def trained_hf(trained_tok, tmp_path_factory):
    return hf_from(trained_tok, tmp_path_factory)
