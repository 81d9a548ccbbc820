"""How a tokenizer cuts text: each token's own text, and a terminal view with coloured token boundaries.

Entry points: `token_texts(tokenizer, ids)` and `render_tokens(tokenizer, text, color=)`. A byte-level token
that holds part of a multi-byte character shows its bytes as `\\xNN` escapes, since it is not text alone.
"""

from gptkit.errors import GptkitError
from gptkit.tokenizer.char import UnknownCharacterError

# Background colours (ANSI 256-colour palette, light enough for black text) cycled over the tokens.
BACKGROUNDS = (153, 223, 187, 217, 229, 195)
RESET = "\x1b[0m"


def token_texts(tokenizer, ids: list[int]) -> list[str]:
    """The text of each token on its own."""
    return [tokenizer.decode_bytes([i]).decode("utf-8", errors="backslashreplace") for i in ids]


def visible(text: str) -> str:
    """Whitespace and control characters made visible, so every token has a width on screen."""
    return text.replace(" ", "␣").replace("\t", "⇥").replace("\r", "␍").replace("\n", "⏎\n")


def render_tokens(tokenizer, text: str, *, color: bool) -> str:
    """`text` with token boundaries shown (colours, or `|` between tokens) and a summary line."""
    try:
        ids = tokenizer.encode(text)
    except UnknownCharacterError as err:
        raise GptkitError(f"text: character {err.char!r} is not in this tokenizer's vocabulary") from None
    pieces = token_texts(tokenizer, ids)
    if color:
        shown = "".join(
            f"\x1b[30;48;5;{BACKGROUNDS[i % len(BACKGROUNDS)]}m{visible(p)}{RESET}" for i, p in enumerate(pieces)
        )
    else:
        shown = "|".join(visible(p) for p in pieces)
    per_token = len(text) / len(ids) if ids else 0.0
    summary = f"{len(ids)} tokens, {len(text)} characters, {len(text.encode('utf-8'))} bytes"
    return f"{shown}\n{summary} ({per_token:.2f} characters/token)\nids: {ids}"
