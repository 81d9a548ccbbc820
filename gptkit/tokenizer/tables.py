"""What each token id of a vocabulary spells, the one source the per-id tables are built from.

Evaluation (bytes per token), masking (word edges, character counts, replacement ids), passage splitting
(newlines) and the server (a prompt-length bound) each need a fact per id; they all start from
`token_pieces`, which also settles the two awkward cases once: special tokens (markers, not text) and ids
beyond the tokenizer (a model's vocabulary may be padded past it). Entry point: `token_pieces`.
"""

from gptkit.errors import GptkitError


def token_pieces(tokenizer, vocab_size: int | None = None) -> list[bytes | None]:
    """The bytes each id below `vocab_size` (default: the tokenizer's) spells; None for special tokens and
    for ids the tokenizer does not have."""
    specials = set(getattr(tokenizer, "special_by_id", {}))
    size = tokenizer.vocab_size if vocab_size is None else vocab_size
    pieces: list[bytes | None] = []
    for token_id in range(size):
        if token_id in specials or token_id >= tokenizer.vocab_size:
            pieces.append(None)
            continue
        try:
            pieces.append(tokenizer.decode_bytes([token_id]))
        except GptkitError:  # an unused id (a gap before special tokens)
            pieces.append(None)
    return pieces


def vocabulary_texts(tokenizer, vocab_size: int | None = None) -> list[str | None]:
    """`token_pieces` as text: each id of the vocabulary (a partial UTF-8 character becomes U+FFFD)."""
    return [None if p is None else p.decode("utf-8", errors="replace") for p in token_pieces(tokenizer, vocab_size)]
