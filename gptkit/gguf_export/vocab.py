"""A gptkit tokenizer in the form llama.cpp tokenizes identically, as GGUF `tokenizer.ggml.*` metadata.

- Byte-level BPE: llama.cpp's `gpt2` tokenizer model with our tokens and merges in GPT-2's byte-to-unicode
  spelling, and the pre-tokenizer whose regex is ours: `gpt-2` for the gpt2 pattern, `dbrx` (the cl100k_base
  regex, merges by rank like ours) for the gpt4 pattern. Other patterns have no llama.cpp pre-tokenizer.
- Characters: the same `gpt2` model, each character a token of its UTF-8 bytes, with merges that build the
  multi-byte characters from their bytes (prefix by prefix) and nothing else, so every character of the
  vocabulary is one token and a character outside it falls apart into bytes llama.cpp leaves out. One
  exception: llama.cpp's `gpt2` model takes id 11 as the end of text when the file names none, which would stop
  generation at a real character; a vocabulary without an end-of-text token whose characters are all ASCII is
  written as llama.cpp's `rwkv` model instead (a greedy longest match over the tokens' bytes: the same ids, and
  no end token at all). With multi-byte characters that model can hang on a character it lacks, so those keep
  the `gpt2` model and the export says where llama.cpp will stop.
Special tokens (chat tokens included) are control tokens; ids the tokenizer does not use up to the model's
vocabulary rows are unused placeholders. No BOS is added, as gptkit adds none.
"""

from dataclasses import dataclass, field

from gptkit.chat.template import IM_END
from gptkit.errors import GptkitError
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.formats import to_visible
from gptkit.tokenizer.patterns import pattern_name

NORMAL, CONTROL, UNUSED = 1, 3, 5  # gguf.TokenType (an unknown-char token stays NORMAL: llama.cpp hides UNKNOWN)
PRE_TOKENIZERS = {"gpt2": "gpt-2", "gpt4": "dbrx"}
END_OF_TEXT = "<|endoftext|>"
INERT_MERGE = "ĠĠ ĠĠ"  # a merge that never applies: with no others, every symbol is one byte, never "ĠĠ"


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
        if self.model == "gpt2":  # llama.cpp requires the key, and the gguf package writes no empty array
            writer.add_token_merges(self.merges or [INERT_MERGE])
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
    if vocab.eos is None and vocab.model == "gpt2" and rows > 11:
        shown_token = tokenizer.decode([11]) if not isinstance(tokenizer, BPETokenizer) else vocab.tokens[11]
        vocab.notes.append(
            f"note: the tokenizer has no {END_OF_TEXT}, so llama.cpp takes id 11 ({shown_token!r}) as the end of "
            "text and stops generating there; a tokenizer with that special token avoids this"
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
    ascii_only = all(c.isascii() for c in tok.chars)
    if not any(end in tok.specials for end in (IM_END, END_OF_TEXT)) and ascii_only:
        return _rwkv_vocab(tok, rows, source)
    tokens = [to_visible(c.encode("utf-8")) for c in tok.chars]
    merges = []  # every proper prefix of a multi-byte character joined with its next byte, shorter prefixes first
    for length in range(2, 5):
        for char in tok.chars:
            data = char.encode("utf-8")
            if len(data) >= length:
                merges.append(f"{to_visible(data[: length - 1])} {to_visible(data[length - 1 : length])}")
    types = [NORMAL] * len(tokens)
    _place_specials(tokens, types, tok.specials, rows)
    unknown = tok.stoi[tok.unknown] if tok.unknown is not None else None
    return GGUFVocab("gpt2", tokens, types, list(dict.fromkeys(merges)), pre="gpt-2", unknown=unknown)


def _rwkv_vocab(tok, rows: int, source: str) -> GGUFVocab:
    if "\n" not in tok.stoi:
        raise GptkitError(
            f"export --format gguf: {source} has no newline character, which llama.cpp's character tokenizer "
            "requires; prepare the data with text that has one"
        )
    tokens = [_rwkv_escape(c) for c in tok.chars]
    types = [NORMAL] * len(tokens)
    # Placeholders start with a character outside this ASCII vocabulary: text gptkit accepts never spells one.
    _place_specials(tokens, types, tok.specials, rows, placeholder="\u2400unused{}")
    unknown = tok.stoi[tok.unknown] if tok.unknown is not None else None
    return GGUFVocab("rwkv", tokens, types, unknown=unknown)


def _place_specials(
    tokens: list[str], types: list[int], specials: dict[str, int], rows: int, placeholder: str = "[PAD{}]"
) -> None:
    """Extend `tokens` to `rows` entries: specials at their ids as control tokens, other ids unused."""
    if max([len(tokens) - 1, *specials.values()]) >= rows:
        raise GptkitError(f"export --format gguf: the tokenizer has ids beyond the model's {rows} vocabulary rows")
    by_id = {i: text for text, i in specials.items()}
    for i in range(len(tokens), rows):
        tokens.append(by_id.get(i, placeholder.format(i)))
        types.append(CONTROL if i in by_id else UNUSED)


def _rwkv_escape(char: str) -> str:
    """A character as llama.cpp's rwkv vocabulary spells it: backslash escapes for \\, \\t, \\n, \\r and other
    control bytes (two lower-case hex digits), everything else as itself."""
    named = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
    if char in named:
        return named[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x20 or ord(char) == 0x7F else char
