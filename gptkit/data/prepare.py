"""`gptkit prepare`: text files, folders or a bundled dataset name -> token files a trainer can memmap.

Writes `train.bin` and `val.bin` (uint16, or uint32 when the vocabulary needs it), `tokenizer.json`, and
`meta.json` (last, so a folder with `meta.json` is complete). Each file is a document; `<|endoftext|>` goes
between documents when the tokenizer has it. The split is by characters of all documents together, the
first (1 - val_fraction) for training, as nanoGPT does. Inputs are read whole here;
it does not stream corpora larger than memory. Entry point: `prepare(paths, out_dir, ...)`.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gptkit.atomic import atomic_write_text, replacing
from gptkit.errors import GptkitError
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.tokenizer.char import CharTokenizer

META_FILE = "meta.json"
EOT = "<|endoftext|>"  # put between documents when the tokenizer has it
FORMAT_VERSION = 1
BUNDLED = {"shakespeare": Path(__file__).parent / "tinyshakespeare.txt"}


@dataclass
class SourceText:
    path: Path
    text: str
    num_bytes: int
    sha256: str


def resolve_inputs(paths: list[str]) -> list[Path]:
    """Expand the user's arguments into an ordered list of files (folders recursively, hidden files skipped)."""
    if not paths:
        raise GptkitError("prepare: give at least one text file, folder, or bundled dataset name (shakespeare)")
    files: list[Path] = []
    for arg in paths:
        path = Path(arg)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise GptkitError(f"{path}: the folder has no files; point at a folder of text files")
            files.extend(found)
        elif arg in BUNDLED:
            files.append(BUNDLED[arg])
        else:
            raise GptkitError(
                f"{arg}: no such file or folder; pass text files, a folder, or a bundled name ({', '.join(BUNDLED)})"
            )
    return files


def read_text(path: Path) -> SourceText:
    """Read one UTF-8 file, refusing empty and binary files with a message naming the file and byte offset."""
    raw = path.read_bytes()
    if not raw:
        raise GptkitError(f"{path}: the file is empty; remove it from the inputs")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise GptkitError(f"{path}: looks binary (NUL byte at offset {nul}); pass UTF-8 text files only")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise GptkitError(
            f"{path}: not UTF-8 text (invalid byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "convert it to UTF-8 or leave it out"
        ) from None
    return SourceText(path, text, len(raw), hashlib.sha256(raw).hexdigest())


def _encode_document(tok, text: str, path: Path) -> list[int]:
    try:
        return tok.encode(text) if text else []
    except GptkitError as err:
        raise GptkitError(f"{path}: {err}") from None


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def write_tokens(path: Path, ids: list[int], dtype: np.dtype) -> None:
    with replacing(path) as tmp:
        np.asarray(ids, dtype=dtype).tofile(tmp)


def prepare(
    paths: list[str],
    out_dir,
    *,
    tokenizer: str = "char",
    val_fraction: float = 0.1,
    unknown_char: str | None = None,
) -> dict:
    """Tokenize `paths` into `out_dir`; returns the metadata written to `meta.json`.

    Args:
        paths: text files, folders, or bundled dataset names.
        out_dir: folder to write into (created if missing).
        tokenizer: "char" to build a character vocabulary from this text, or the path of a saved tokenizer
            (a `tokenizer.json`, or a data/run folder holding one) to reuse, e.g. for fine-tuning data.
        val_fraction: share of the text (by characters, from the end) held out for validation.
        unknown_char: for a new char tokenizer, a character that unseen characters map to at encode time.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise GptkitError(f"--val-fraction {val_fraction}: must be in [0, 1), e.g. 0.1")
    sources = [read_text(p) for p in resolve_inputs(paths)]
    tok = load_tokenizer(tokenizer) if tokenizer != "char" else None
    eot = getattr(tok, "specials", {}).get(EOT)
    texts = [s.text for s in sources]
    if eot is None:  # no separator token: a newline keeps one file's last line from running into the next
        texts = [t if t.endswith("\n") or i == len(texts) - 1 else t + "\n" for i, t in enumerate(texts)]
    if tok is None:
        tok = CharTokenizer.from_text("".join(texts), unknown=unknown_char)

    total = sum(len(t) for t in texts)
    split_at = int(total * (1.0 - val_fraction))
    train_ids: list[int] = []
    val_ids: list[int] = []
    offset = 0
    for index, (source, text) in enumerate(zip(sources, texts)):
        cut = min(max(split_at - offset, 0), len(text))
        train_ids.extend(_encode_document(tok, text[:cut], source.path))
        val_ids.extend(_encode_document(tok, text[cut:], source.path))
        offset += len(text)
        if eot is not None and index < len(texts) - 1:
            (train_ids if offset <= split_at else val_ids).append(eot)
    dtype = token_dtype(tok.vocab_size)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_tokens(out / "train.bin", train_ids, dtype)
    write_tokens(out / "val.bin", val_ids, dtype)
    tok.save(out / TOKENIZER_FILE)
    meta = {
        "format_version": FORMAT_VERSION,
        "tokenizer": TOKENIZER_FILE,
        "vocab_size": tok.vocab_size,
        "dtype": dtype.name,
        "train_tokens": len(train_ids),
        "val_tokens": len(val_ids),
        "val_fraction": val_fraction,
        "characters": total,
        "sources": [{"path": str(s.path), "bytes": s.num_bytes, "sha256": s.sha256} for s in sources],
    }
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False))
    return meta
