"""A gptkit tokenizer in the form llama.cpp tokenizes identically, as GGUF `tokenizer.ggml.*` metadata.

- Byte-level BPE: llama.cpp's `gpt2` tokenizer model with our tokens and merges in GPT-2's byte-to-unicode
  spelling, and the pre-tokenizer whose regex is ours: `gpt-2` for the gpt2 pattern, `dbrx` (the cl100k_base
  regex, merges by rank like ours) for the gpt4 pattern. Other patterns have no llama.cpp pre-tokenizer.
- Characters: llama.cpp's `rwkv` tokenizer model, a greedy longest match over the tokens' bytes. When every
  token is one character that is exactly our one id per character, and it is the one model in llama.cpp that
  names no end-of-text token by default (its `gpt2` model would stop generating at id 11, a real character).
Special tokens (chat tokens included) are control tokens; ids the tokenizer does not use up to the model's
vocabulary rows are unused placeholders. No BOS is added, as gptkit adds none.
"""

from dataclasses import dataclass, field

from gptkit.chat.template import IM_END
from gptkit.errors import GptkitError
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.formats import to_visible
from gptkit.tokenizer.patterns import pattern_name

NORMAL, UNKNOWN, CONTROL, UNUSED = 1, 2, 3, 5  # gguf.TokenType
PRE_TOKENIZERS = {"gpt2": "gpt-2", "gpt4": "dbrx"}
END_OF_TEXT = "<|endoftext|>"


@dataclass
class GGUFVocab:
    model: str  # tokenizer.ggml.model
    tokens: list[str]
    types: list[int]
    merges: list[str] = field(default_factory=list)
    pre: str | None = None
    eos: int | None = None
    unknown: int | None = None
    notes: list[str] = field(default_factory=list)  # what a user should know about the file, said after writing

    def add_to(self, writer) -> None:
        writer.add_tokenizer_model(self.model)
        if self.pre is not None:
            writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.types)
        if self.merges:
            writer.add_token_merges(self.merges)
        if self.eos is not None:
            writer.add_bos_token_id(self.eos)  # GPT-2's convention: one token ends and starts texts
            writer.add_eos_token_id(self.eos)
        if self.unknown is not None:
            writer.add_unk_token_id(self.unknown)
        writer.add_add_bos_token(False)
        writer.add_add_eos_token(False)


def gguf_vocab(tokenizer, rows: int, source: str) -> GGUFVocab:
    """The vocabulary for a model with `rows` embedding rows (at least the tokenizer's size)."""
    if isinstance(tokenizer, BPETokenizer):
        vocab = _bpe_vocab(tokenizer, rows, source)
    else:
        vocab = _char_vocab(tokenizer, rows, source)
    end = IM_END if IM_END in tokenizer.specials else END_OF_TEXT
    vocab.eos = tokenizer.specials.get(end)
    if vocab.eos is None and vocab.model == "gpt2":
        vocab.notes.append(
            f"note: the tokenizer has no {END_OF_TEXT}, so llama.cpp takes id 11 "
            f"({vocab.tokens[11]!r}) as the end of text and stops generating there; a tokenizer trained with "
            f"--special '{END_OF_TEXT}' avoids this"
        )
    return vocab


def _bpe_vocab(tok: BPETokenizer, rows: int, source: str) -> GGUFVocab:
    name = pattern_name(tok.pattern)
    if name not in PRE_TOKENIZERS:
        raise GptkitError(
            f"export --format gguf: {source} splits text with {'pattern ' + name if name else 'a custom pattern'}, "
            "which llama.cpp has no pre-tokenizer for; only the gpt2 and gpt4 patterns can be exported"
        )
    tokens = [to_visible(data) for data in tok.token_bytes]
    if len(set(tokens)) != len(tokens):
        raise GptkitError(f"export --format gguf: {source} has two tokens with the same bytes; llama.cpp needs unique")
    types = [NORMAL] * len(tokens)
    merges = [f"{tokens[left]} {tokens[right]}" for left, right in tok.merges]
    _place_specials(tokens, types, tok.specials, rows)
    return GGUFVocab("gpt2", tokens, types, merges, pre=PRE_TOKENIZERS[name])


def _char_vocab(tok, rows: int, source: str) -> GGUFVocab:
    if "\n" not in tok.stoi:
        raise GptkitError(
            f"export --format gguf: {source} has no newline character, which llama.cpp's character tokenizer "
            "requires; prepare the data with text that has one"
        )
    tokens = [_rwkv_escape(c) for c in tok.chars]
    types = [NORMAL] * len(tokens)
    unknown = None
    if tok.unknown is not None:
        unknown = tok.stoi[tok.unknown]
        types[unknown] = UNKNOWN
    _place_specials(tokens, types, tok.specials, rows)
    return GGUFVocab("rwkv", tokens, types, unknown=unknown)


def _place_specials(tokens: list[str], types: list[int], specials: dict[str, int], rows: int) -> None:
    """Extend `tokens` to `rows` entries: specials at their ids as control tokens, other ids unused."""
    if max([len(tokens) - 1, *specials.values()]) >= rows:
        raise GptkitError(f"export --format gguf: the tokenizer has ids beyond the model's {rows} vocabulary rows")
    by_id = {i: text for text, i in specials.items()}
    for i in range(len(tokens), rows):
        tokens.append(by_id.get(i, f"[PAD{i}]"))
        types.append(CONTROL if i in by_id else UNUSED)


def _rwkv_escape(char: str) -> str:
    """A character as llama.cpp's rwkv vocabulary spells it: backslash escapes for \\, \\t, \\n, \\r and other
    control bytes (two lower-case hex digits), everything else as itself."""
    named = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
    if char in named:
        return named[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x20 or ord(char) == 0x7F else char
