"""The trainer: every merge is the most frequent pair (against a slow reference), streaming changes nothing,
compression matches HF tokenizers' trainer, and bad input is refused clearly."""

import pytest
import regex
from tokenizer.conftest import KOREAN

from gptkit import sources
from gptkit.errors import GptkitError
from gptkit.tokenizer import patterns
from gptkit.tokenizer.bpe_train import learn_merges, train_bpe
from gptkit.tokenizer.counting import count_chunks
from gptkit.tokenizer.patterns import GPT4_PATTERN


def reference_merges(text: str, pattern: str, num_merges: int) -> list[tuple[int, int]]:
    """Textbook BPE: recount every pair from scratch at each step; ties to the smaller (left, right)."""
    words = [list(chunk.encode("utf-8")) for chunk in regex.findall(pattern, text)]
    merges = []
    for new_id in range(256, 256 + num_merges):
        counts = {}
        for word in words:
            for pair in zip(word, word[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        for i, word in enumerate(words):
            out, j = [], 0
            while j < len(word):
                if j < len(word) - 1 and (word[j], word[j + 1]) == best:
                    out.append(new_id)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            words[i] = out
    return merges


@pytest.mark.parametrize("source", ["shakespeare", "korean", "repetitive"])
def test_every_merge_is_the_most_frequent_pair(source, shakespeare_text):
    text = {
        "shakespeare": shakespeare_text[:6000],
        "korean": KOREAN[0].read_text(encoding="utf-8")[:3000],
        "repetitive": "aaaa abab aaab " * 40 + "zzzzzzzz",
    }[source]
    counts = count_chunks([[text]], GPT4_PATTERN, [])
    assert learn_merges(counts, 150, progress=False) == reference_merges(text, GPT4_PATTERN, 150)


def test_training_is_deterministic_and_streaming_changes_nothing(tmp_path, shakespeare_text, monkeypatch):
    corpus = tmp_path / "c.txt"
    corpus.write_text(shakespeare_text[:50_000])
    whole = train_bpe([corpus], 600, progress=False)
    assert train_bpe([corpus], 600, progress=False).merges == whole.merges
    monkeypatch.setattr(sources, "READ_BYTES", 777)  # read in many small blocks
    assert train_bpe([corpus], 600, progress=False).merges == whole.merges


def test_compression_matches_hf_tokenizers_trainer(tmp_path, shakespeare_text):
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    cut = int(len(shakespeare_text) * 0.9)
    (tmp_path / "train.txt").write_text(shakespeare_text[:cut])
    held_out = shakespeare_text[cut:]
    ours = train_bpe([tmp_path / "train.txt"], 1024, pattern="gpt4", progress=False)
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=1024, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    hf.train_from_iterator([shakespeare_text[:cut]], trainer=trainer)  # one document, as ours sees the file
    ours_bpt = len(held_out.encode()) / len(ours.encode(held_out))
    hf_bpt = len(held_out.encode()) / len(hf.encode(held_out).ids)
    assert abs(ours_bpt / hf_bpt - 1) < 0.001  # the issue asks for 1%; the two trainers agree exactly here


def test_special_tokens_get_the_last_ids_and_are_never_merged(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("one doc<|endoftext|>another doc<|endoftext|>" * 50)
    with pytest.warns(UserWarning, match="only 11 distinct pairs"):  # a tiny corpus runs out of pairs
        small = train_bpe([corpus], 300, specials=["<|endoftext|>"], progress=False)
    assert small.specials == {"<|endoftext|>": 256 + 11} and small.vocab_size == 268
    corpus.write_text("<|endoftext|>".join(f"document number {i}, said {i * 7919 % 1000}" for i in range(400)))
    tok = train_bpe([corpus], 300, specials=["<|endoftext|>"], progress=False)
    assert tok.specials == {"<|endoftext|>": 299} and tok.vocab_size == 300
    assert not any(b"<|" in piece and b"|>" in piece for piece in tok.token_bytes)
    ids = tok.encode("doc<|endoftext|>", allowed_special="all")
    assert ids[-1] == 299 and tok.decode(ids) == "doc<|endoftext|>"


PIECES = [
    " ",
    "  ",
    "\n",
    "\r\n",
    "\t",
    "\xa0",
    "a",
    "Word",
    "9",
    "12345",
    "'s",
    "'LL",
    "!!",
    ".",
    "é",
    "한국",
    "😀",
    "<|endoftext|>",
    "<|e",
    "text",
    " " * 300 + "\n",
]


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4"])
def test_reading_in_blocks_gives_exactly_the_whole_text_split(pattern, monkeypatch):
    import random

    monkeypatch.setattr(patterns, "LOOKAHEAD_CHARS", 4)  # cut as close to the block end as the rule allows
    rng = random.Random(0)
    regex_pattern = patterns.PATTERNS[pattern]
    for trial in range(400):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 120)))
        cuts = sorted(rng.sample(range(1, len(text) + 1), min(len(text), rng.randint(0, 10))))
        blocks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)]) if a < b]
        specials = ["<|endoftext|>", "text"] if trial % 2 else []  # overlapping specials, longest first
        if specials:
            splitter = regex.compile("<\\|endoftext\\|>|text")
            expected = [c for part in splitter.split(text) for c in regex.findall(regex_pattern, part)]
        else:
            expected = regex.findall(regex_pattern, text)
        got = [c for chunk in patterns.iter_chunks([blocks], regex_pattern, specials) for c in chunk]
        assert got == expected, (text, [len(b) for b in blocks])


@pytest.mark.parametrize(
    "kwargs, content, expected",
    [
        ({"vocab_size": 200}, "text", "at least 257"),
        ({"vocab_size": 257, "specials": ["<|a|>"]}, "text", "at least 258"),
        ({"vocab_size": 300}, "", "the file is empty"),
        ({"vocab_size": 300, "pattern": "(unclosed"}, "text", "not a valid regex"),
    ],
)
def test_bad_training_input_is_a_one_line_error(tmp_path, kwargs, content, expected):
    corpus = tmp_path / "c.txt"
    corpus.write_text(content)
    vocab_size = kwargs.pop("vocab_size")
    with pytest.raises(GptkitError, match=expected) as err:
        train_bpe([corpus], vocab_size, progress=False, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4"])
def test_counting_in_worker_processes_gives_exactly_the_single_process_counts(pattern, shakespeare_text):
    import random

    from tokenizer.conftest import read_exact

    from gptkit.tokenizer import counting

    rng = random.Random(1)
    mixed = "".join(rng.choice(PIECES) for _ in range(4000))  # contractions, runs of spaces, specials, emoji
    records = [[line] for line in shakespeare_text[:30_000].split("\n\n")]  # many small documents, as JSONL
    no_cuts = ["中文字" * 3000, "한국어" * 3000, "\n\n" + "中文" * 5000]  # no safe place to cut for 40,000 chars
    documents = [[shakespeare_text[:200_000]], [read_exact(KOREAN[0]), read_exact(KOREAN[1])], [mixed], [""]]
    documents += records + [no_cuts]
    streamed = []
    pieces = list(counting._pieces(documents, 2000, streamed.append))
    assert len(pieces) > 100 and len(streamed) == 1  # cut in many places; the long uncut stretch streamed
    assert len(list(counting._batches(pieces, 2000))) < len(pieces) / 2  # small documents travel together
    regex_pattern = patterns.PATTERNS[pattern]
    one_process = count_chunks(documents, regex_pattern, ["<|endoftext|>"])
    workers = count_chunks(documents, regex_pattern, ["<|endoftext|>"], workers=2, piece_chars=2000)
    assert workers == one_process
