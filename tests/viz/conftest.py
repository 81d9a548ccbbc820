"""The real GPT-2 tokenizer as a JSON file, for the token view."""

from pathlib import Path

import pytest

from gptkit.tokenizer.formats import import_gpt2

GPT2_DIR = Path(__file__).parent.parent / "fixtures" / "gpt2"


@pytest.fixture(scope="session")
def gpt2_tokenizer_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "gpt2.json"
    import_gpt2(GPT2_DIR / "encoder.json", GPT2_DIR / "vocab.bpe").save(path)
    return path
