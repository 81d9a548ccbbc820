"""`gptkit prepare`: text files, folders, .jsonl or .gz -> token shards and a manifest, streaming.

Two passes over the input, each in bounded blocks so memory does not grow with the corpus: the first counts
characters (and, for a new char tokenizer, collects the alphabet) and hashes every file; the second encodes
blocks in a pool of worker processes, in order, into shards of bounded size. Each file (or JSON line) is a
document; `<|endoftext|>` goes between documents when the tokenizer has it. The last `val_fraction` of all
characters is the validation split, as nanoGPT splits Tiny Shakespeare. The new dataset is built in a hidden
folder inside `out` and moved in only when complete, `meta.json` last: a prepare that fails leaves the previous
dataset untouched, and a folder with a manifest is always complete. Entry point: `prepare`.
"""

import json
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import regex

from gptkit.atomic import atomic_write_text
from gptkit.data.shards import SHARD_TOKENS, ShardWriter, output_files, token_dtype
from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import check_output_folder, shown
from gptkit.sources import BUNDLED, Source, iter_documents, resolve_sources
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.tokenizer.bpe import BPETokenizer
from gptkit.tokenizer.char import CharTokenizer
from gptkit.tokenizer.patterns import LOOKAHEAD_CHARS, PATTERNS

META_FILE = "meta.json"
FORMAT_VERSION = 2
EOT = "<|endoftext|>"  # put between documents when the tokenizer has it
JOB_CHARS = 1 << 20  # characters of text per encoding job
__all__ = ["BUNDLED", "prepare"]

# A space between two letters is a chunk boundary under the gpt2 and gpt4 patterns (the word before ends at
# its last letter; " word" starts a new chunk), so a document can be cut there and encoded in pieces.
_SAFE_CUT = regex.compile(r"\p{L}(?= \p{L})")


def safe_cut(text: str, limit: int, pattern: regex.Pattern) -> int:
    """A position <= limit where `text` may be cut without changing its BPE encoding, or 0 if none.

    First a space between two letters near `limit`; else (text without spaces, such as Chinese) the start of a
    chunk of `pattern` whose previous chunk ends in a non-space character at least LOOKAHEAD_CHARS before
    the end of the text looked at (the rule `iter_chunks` uses, exact for the gpt2 and gpt4 patterns).
    """
    window = max(0, limit - 65536)
    last = 0
    for match in _SAFE_CUT.finditer(text, window, limit):
        last = match.end()
    if last:
        return last
    end = min(len(text), limit + LOOKAHEAD_CHARS)
    previous_end_ok, best = False, 0
    for match in pattern.finditer(text, window, end):
        if match.start() > limit:
            break
        if previous_end_ok and match.start() > window:
            best = match.start()
        previous_end_ok = bool(match.group()) and not match.group()[-1].isspace()
    return best


# -- worker side -------------------------------------------------------------------------------------------

_WORKER_TOKENIZER = None


def _init_worker(tokenizer_dict: dict) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = _tokenizer_from_dict(tokenizer_dict)


def _tokenizer_from_dict(raw: dict):
    return CharTokenizer.from_dict(raw) if raw["type"] == "char" else BPETokenizer.from_dict(raw)


def encode_job(job: list, tok=None) -> np.ndarray:
    """Encode a job: a list of text pieces (str) and end-of-document ids (int), in order."""
    tok = tok or _WORKER_TOKENIZER
    parts = []
    for item in job:
        if isinstance(item, int):
            parts.append(np.array([item], dtype=np.int64))
        elif isinstance(tok, CharTokenizer):
            parts.append(tok.encode_array(item))
        else:
            parts.append(np.array(tok.encode(item), dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


# -- main side ---------------------------------------------------------------------------------------------


def _jobs(
    sources: list[Source],
    text_field: str,
    split_at: int,
    separator: int | None,
    newline_separator: bool,
    cut: str,
    chunker: regex.Pattern | None = None,
) -> Iterator:
    """(split, job) pairs in corpus order; a job holds about JOB_CHARS characters of one split.

    `cut` says where a long document may be cut into jobs: "anywhere" (char tokenizers), "words" (the gpt2
    and gpt4 patterns, whose compiled regex is `chunker`; see `safe_cut`) or "never". `separator` goes
    between documents; a newline separator (char tokenizers) only after one that does not end with one.
    """
    position, first, ends_with_newline = 0, True, False
    current: dict[str, list] = {"train": [], "val": []}
    size = {"train": 0, "val": 0}

    def add(split: str, item) -> Iterator:
        current[split].append(item)
        size[split] += len(item) if isinstance(item, str) else 0
        if size[split] >= JOB_CHARS:
            yield split, current[split]
            current[split], size[split] = [], 0

    for source in sources:
        for blocks in iter_documents(source, text_field):
            if not first and separator is not None and not (newline_separator and ends_with_newline):
                yield from add("train" if position <= split_at else "val", separator)
            first = False
            pending = ""
            for block in blocks:
                pending += block
                while len(pending) > JOB_CHARS:
                    at = JOB_CHARS if cut == "anywhere" else safe_cut(pending, JOB_CHARS, chunker) if chunker else 0
                    if not at:
                        break
                    yield from _route(add, pending[:at], position, split_at)
                    position += at
                    ends_with_newline = pending[at - 1] == "\n"
                    pending = pending[at:]
            if pending:
                yield from _route(add, pending, position, split_at)
                position += len(pending)
                ends_with_newline = pending.endswith("\n")
    for split in ("train", "val"):
        if current[split]:
            yield split, current[split]


def _route(add, text: str, position: int, split_at: int) -> Iterator:
    """Send `text` (starting at corpus character `position`) to train, val, or both around `split_at`."""
    cut = min(max(split_at - position, 0), len(text))
    if cut:
        yield from add("train", text[:cut])
    if cut < len(text):
        yield from add("val", text[cut:])


def _scan(sources: list[Source], text_field: str, tok) -> tuple[int, set]:
    """First pass: characters in all documents and their alphabet (for char tokenizers); sha256 and sizes
    of every source. Text a given tokenizer cannot encode is refused here, with the file it is in."""
    total, alphabet = 0, set()
    specials = list(tok.specials) if isinstance(tok, BPETokenizer) else []
    keep = max((len(s) for s in specials), default=1) - 1
    known = set(tok.chars) if isinstance(tok, CharTokenizer) and tok.unknown is None else None
    for source in sources:
        for blocks in iter_documents(source, text_field):
            tail = ""
            for block in blocks:
                if tok is None or known is not None:
                    new = set(block) - alphabet
                    alphabet |= new
                    if known is not None and new - known:
                        bad = sorted(new - known)[0]
                        raise GptkitError(
                            f"{source.path}: character {bad!r} (U+{ord(bad):04X}) is not in the tokenizer's "
                            "vocabulary; prepare with a tokenizer that covers this text"
                        )
                for special in specials:  # a special token's text in the data would be an error when encoding
                    if (tail + block).find(special) >= 0:
                        raise GptkitError(
                            f"{source.path}: the text contains the special token {special!r}; remove it, or use a "
                            "tokenizer without that special token"
                        )
                tail = block[-keep:] if keep else ""
        total += source.characters
    return total, alphabet


def _new_char_tokenizer(sources: list[Source], alphabet: set, unknown_char: str | None) -> CharTokenizer:
    multi_doc = sum(s.documents for s in sources) > 1  # documents are then separated by newlines
    return CharTokenizer.from_text("".join(sorted(alphabet)) + ("\n" if multi_doc else ""), unknown=unknown_char)


def prepare(
    paths: list[str],
    out_dir,
    *,
    tokenizer: str = "char",
    val_fraction: float = 0.1,
    unknown_char: str | None = None,
    text_field: str = "text",
    workers: int = 1,
    shard_tokens: int = SHARD_TOKENS,
) -> dict:
    """Tokenize `paths` into `out_dir`; returns the manifest written to `meta.json`.

    Args:
        paths: text files (.txt, .jsonl, optionally .gz), folders, or bundled dataset names.
        out_dir: folder to write into (created if missing; a previous prepare there is replaced).
        tokenizer: "char" to build a character vocabulary from this text, or the path of a saved tokenizer
            (a `tokenizer.json`, or a data/run folder holding one) to reuse, e.g. for fine-tuning data.
        val_fraction: share of all characters (from the end) held out for validation.
        unknown_char: for a new char tokenizer, a character that unseen characters map to at encode time.
        text_field: the field of each JSON line that holds its text.
        workers: encoding processes (1 = encode in this process).
        shard_tokens: tokens per shard file at most.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ArgumentError("val_fraction", "must be in [0, 1), e.g. 0.1", val_fraction)
    if workers < 1:
        raise ArgumentError("workers", "must be at least 1", workers)
    if unknown_char is not None and tokenizer == "char" and len(unknown_char) != 1:
        raise ArgumentError("unknown_char", "must be exactly one character", unknown_char)
    out = Path(out_dir)
    check_output_folder(out)
    sources = resolve_sources(paths)
    tok = load_tokenizer(tokenizer) if tokenizer != "char" else None
    total, alphabet = _scan(sources, text_field, tok)
    hashes = [s.sha256 for s in sources]
    if total == 0:
        raise GptkitError(f"prepare: the inputs hold no text (checked {len(sources)} file(s)); pass text files")
    if tok is None:
        tok = _new_char_tokenizer(sources, alphabet, unknown_char)
    multi_doc = sum(s.documents for s in sources) > 1
    if isinstance(tok, BPETokenizer):
        separator = tok.specials.get(EOT)
        cut = "words" if tok.pattern in (PATTERNS["gpt2"], PATTERNS["gpt4"]) else "never"
    else:
        separator = tok.encode("\n")[0] if multi_doc and "\n" in tok.stoi else None
        cut = "anywhere"
    split_at = int(total * (1.0 - val_fraction))
    dtype = token_dtype(tok.vocab_size)

    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob(".preparing-*"), *out.glob(".previous-*")]:  # left by a prepare that was killed
        shutil.rmtree(stale, ignore_errors=True)
    # Everything is written into a hidden folder inside `out` (the same file system, so moving in is renames)
    # and moved in only when complete: a prepare that fails leaves the previous dataset in `out` as it was.
    staging = Path(tempfile.mkdtemp(prefix=".preparing-", dir=out))
    writers = {split: ShardWriter(staging, split, dtype, shard_tokens) for split in ("train", "val")}
    try:
        chunker = tok.compiled if cut == "words" else None
        jobs = _jobs(sources, text_field, split_at, separator, isinstance(tok, CharTokenizer), cut, chunker)
        for split, ids in _encoded(jobs, tok, workers):
            writers[split].write(ids)
        shards = {split: writer.close() for split, writer in writers.items()}
        changed = [s.path for s, h in zip(sources, hashes) if s.sha256 != h]
        if changed:
            raise GptkitError(f"{shown(changed[0])}: the file changed while it was being prepared; run prepare again")
        meta = _manifest(tok, shards, sources, total, val_fraction, separator, dtype)
        tok.save(staging / TOKENIZER_FILE)
        atomic_write_text(staging / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False))
        move_into(staging, out)
    finally:
        for writer in writers.values():
            writer.abort()  # closes a shard still open after an error; nothing once all are closed
        shutil.rmtree(staging, ignore_errors=True)
    return meta


def _manifest(tok, shards: dict, sources: list[Source], total: int, val_fraction, separator, dtype) -> dict:
    counts = {split: sum(s["tokens"] for s in shards[split]) for split in shards}
    meta = {
        "format_version": FORMAT_VERSION,
        "tokenizer": TOKENIZER_FILE,
        "vocab_size": tok.vocab_size,
        "dtype": dtype.name,
        "train_tokens": counts["train"],
        "val_tokens": counts["val"],
        "val_fraction": val_fraction,
        "characters": total,
        "documents": sum(s.documents for s in sources),
        "separator": separator,
        "splits": shards,
        "sources": [s.manifest() for s in sources],
    }
    return meta


def move_into(staging: Path, out: Path) -> None:
    """Replace the dataset in `out` by the complete one in `staging`, by renames only. The old files are moved
    aside first (manifest first) and deleted only once the new ones are all in (manifest last); if a rename
    fails, the old dataset is put back. So `out` never looks complete while it is not."""
    previous = Path(tempfile.mkdtemp(prefix=".previous-", dir=out))
    old = output_files(out)
    new = sorted(p.name for p in staging.iterdir() if p.name != META_FILE) + [META_FILE]
    try:
        for path in old:
            os.replace(path, previous / path.name)
        for name in new:
            os.replace(staging / name, out / name)
    except OSError:
        for name in new:
            (out / name).unlink(missing_ok=True)
        for path in reversed(old):  # the manifest back last
            os.replace(previous / path.name, path)
        raise
    finally:
        shutil.rmtree(previous, ignore_errors=True)


def _encoded(jobs: Iterator, tok, workers: int) -> Iterator[tuple[str, np.ndarray]]:
    """Encoded jobs in order; with workers > 1, at most 2 jobs per worker are in flight (bounded memory)."""
    if workers == 1:
        for split, job in jobs:
            yield split, encode_job(job, tok)
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(tok.to_dict(),)) as pool:
        pending: deque = deque()
        for split, job in jobs:
            pending.append((split, pool.submit(encode_job, job)))
            if len(pending) >= 2 * workers:
                done_split, future = pending.popleft()
                yield done_split, future.result()
        while pending:
            done_split, future = pending.popleft()
            yield done_split, future.result()
