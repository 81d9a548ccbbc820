"""From generated token ids to text pieces: incremental UTF-8 decoding and stop strings.

A character can span several byte-level BPE tokens, so bytes are decoded incrementally and a piece is
emitted only once it is valid text. Stop strings end generation: the text before the first stop is
emitted, the stop itself is not, and text that might be the start of a stop is held back until it is
known not to be. Entry points: `decode_pieces`, `cut_at_stops`.
"""

import codecs
from collections.abc import Iterable, Iterator


def decode_pieces(tokenizer, ids: Iterable[int]) -> Iterator[str]:
    """Text pieces for a stream of token ids; invalid bytes become U+FFFD, as `decode` does."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for token_id in ids:
        piece = decoder.decode(tokenizer.decode_bytes([token_id]))
        if piece:
            yield piece
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def _held_back(text: str, stops: list[str]) -> int:
    """Length of the longest end of `text` that is the beginning of a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def cut_at_stops(pieces: Iterable[str], stops: list[str]) -> Iterator[str]:
    """Pass `pieces` through until the text contains a stop string; stop there (closing the source)."""
    stops = [s for s in stops if s]
    if not stops:
        yield from pieces
        return
    pending = ""
    try:
        for piece in pieces:
            pending += piece
            found = [at for at in (pending.find(s) for s in stops) if at >= 0]
            if found:
                if min(found):
                    yield pending[: min(found)]
                return
            keep = _held_back(pending, stops)
            if len(pending) > keep:
                yield pending[: len(pending) - keep]
                pending = pending[len(pending) - keep :]
        if pending:
            yield pending
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
