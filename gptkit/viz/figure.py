"""Saving figures as PNG: matplotlib's Agg renderer, without pyplot's global state (no window, nothing left
open), written atomically and byte-for-byte reproducible (no version or timestamp in the file)."""

import functools
import io
import warnings
from pathlib import Path

from matplotlib import font_manager, rc_context
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from gptkit.atomic import replacing
from gptkit.errors import ArgumentError
from gptkit.paths import shown

DPI = 120
# Matplotlib's PNG metadata names its version ("Software"); without it the bytes depend only on the picture.
PNG_METADATA = {"Software": None}


def new_figure(width: float, height: float) -> Figure:
    """A figure of `width` x `height` inches; it renders with Agg when saved."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata=PNG_METADATA)
    return buffer.getvalue()


def check_png_path(out) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ArgumentError("out", "pictures are written as PNG; give a path ending in .png", shown(out))
    return out


def save_png(figure: Figure, out) -> Path:
    """Write `figure` to `out` (a .png path) atomically; returns the path."""
    out = check_png_path(out)
    data = png_bytes(figure)
    with replacing(out) as tmp:
        tmp.write_bytes(data)
    return out


def token_label(text: str) -> str:
    """A token as an axis label: whitespace made visible, characters no installed font can draw escaped
    (so a label is never an empty box), long tokens shortened."""
    shown = text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥").replace("\r", "\\r")
    shown = "".join(c if drawable(c) else c.encode("unicode_escape").decode("ascii") for c in shown)
    return shown if len(shown) <= 12 else shown[:11] + "…"


# Fonts with Korean/Chinese/Japanese glyphs that matplotlib may find installed; DejaVu Sans comes first.
CJK_FONTS = (
    "Noto Sans CJK KR",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "NanumGothic",
    "Malgun Gothic",
    "AppleGothic",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "Microsoft YaHei",
    "PingFang SC",
)


@functools.cache
def font_families() -> tuple[str, ...]:
    """DejaVu Sans, then the CJK fonts installed: later fonts fill in the glyphs earlier ones lack."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ("DejaVu Sans", *(name for name in CJK_FONTS if name in installed))


def house_style(build):
    """Decorate a function that builds a figure: its text uses the font fallback list (set for the call
    only, so matplotlib's global settings stay as they were)."""

    @functools.wraps(build)
    def building(*args, **kwargs):
        with rc_context({"font.family": list(font_families())}):
            return build(*args, **kwargs)

    return building


@functools.cache
def font_charsets() -> tuple[frozenset, ...]:
    """The code points each font of the fallback list can draw."""
    charsets = []
    for family in font_families():
        path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        charsets.append(frozenset(FT2Font(path).get_charmap()))
    return tuple(charsets)


def drawable(char: str) -> bool:
    if ord(char) < 128:
        return True
    if any(ord(char) in charset for charset in font_charsets()):
        return True
    warn_missing_glyphs()
    return False


@functools.cache
def warn_missing_glyphs() -> None:
    warnings.warn(
        "some characters have no glyph in the installed fonts and are shown as escapes; for Korean, Chinese or "
        "Japanese text install a CJK font (Debian: apt-get install fonts-noto-cjk)",
        stacklevel=2,
    )
