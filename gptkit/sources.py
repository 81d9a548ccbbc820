"""Input text for `prepare` and `tokenizer train`: files, folders, bundled names -> documents, in blocks, never whole.

Kinds: plain text (`.txt`, `.md`, anything else; one file = one document) and JSON lines (`.jsonl`, one
record = one document, its text under `--field`), each optionally gzip-compressed (`.gz`); Parquet and Arrow
(`.parquet`, `.arrow`: one row = one document, its text column named by `--field`; see `gptkit.columnar`).
Folders are read recursively in sorted order, hidden files skipped. Reading hashes the raw file bytes on the
way (sha256 in the manifest) and refuses empty, binary and non-UTF-8 input with the file and byte offset.
Entry points: `resolve_sources`, `iter_documents`.
"""

import codecs
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gptkit.columnar import COLUMNAR_SUFFIXES, DATASET_DICT, columnar_documents, file_sha256
from gptkit.errors import GptkitError
from gptkit.paths import input_problem, shown

BUNDLED = {
    "shakespeare": Path(__file__).parent / "data" / "tinyshakespeare.txt",
    "warandpeace": Path(__file__).parent / "data" / "war_and_peace.txt",
}
READ_BYTES = 1 << 20  # raw bytes read at a time


@dataclass
class Source:
    """One input file and what reading it found (filled in as it is read)."""

    path: Path
    jsonl: bool = False
    compressed: bool = False
    columnar: bool = False  # Parquet or Arrow
    num_bytes: int = 0
    sha256: str = ""
    characters: int = 0
    documents: int = 0

    def manifest(self) -> dict:
        return {
            "path": shown(self.path),  # a file name that is not UTF-8 is stored escaped
            "bytes": self.num_bytes,
            "sha256": self.sha256,
            "characters": self.characters,
            "documents": self.documents,
        }


def _source(path: Path) -> Source:
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    kind = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if not compressed and kind in COLUMNAR_SUFFIXES:
        return Source(path, columnar=True)
    return Source(path, jsonl=kind == ".jsonl", compressed=compressed)


def resolve_sources(paths: list[str]) -> list[Source]:
    """Expand the user's arguments into sources (folders recursively, hidden files skipped)."""
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
                raise GptkitError(f"{shown(path)}: the folder has no files; point at a folder of text files")
            if (path / DATASET_DICT).is_file():
                raise GptkitError(
                    f"{shown(path)}: a DatasetDict folder ({DATASET_DICT}) holds several splits; pass one split's "
                    f"folder, e.g. {shown(path / 'train')}"
                )
            if any(p.suffix.lower() in COLUMNAR_SUFFIXES for p in found):  # Parquet/Arrow data: its READMEs and
                found = [p for p in found if p.suffix.lower() in COLUMNAR_SUFFIXES]  # JSON metadata are no text
            files.extend(found)
        elif arg in BUNDLED:
            files.append(BUNDLED[arg])
        else:
            problem = input_problem(path) or "no such file or folder"
            raise GptkitError(
                f"{shown(arg)}: {problem}; pass text files, a folder, or a bundled name ({', '.join(BUNDLED)})"
            )
    return [_source(p) for p in files]


class _HashingReader(io.RawIOBase):
    """A file whose raw bytes are hashed and counted as they are read (also under gzip)."""

    def __init__(self, raw, source: Source):
        self.raw, self.source, self.hasher = raw, source, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        if count:
            self.hasher.update(memoryview(buffer)[:count])
            self.source.num_bytes += count
        return count


def _text_blocks(source: Source) -> Iterator[str]:
    """The file's text in blocks of about READ_BYTES, decoded strictly as UTF-8."""
    source.num_bytes = 0
    try:
        raw = open(source.path, "rb")
    except OSError as err:  # e.g. deleted since the first pass
        problem = input_problem(source.path) or err.strerror
        raise GptkitError(f"{shown(source.path)}: cannot open it ({problem}); check the file and run again") from None
    with raw:
        hashing = _HashingReader(raw, source)
        stream = gzip.GzipFile(fileobj=hashing) if source.compressed else io.BufferedReader(hashing)
        decoder = codecs.getincrementaldecoder("utf-8-sig")()  # a leading byte-order mark is not text
        offset = 0
        try:
            while True:
                data = stream.read(READ_BYTES)
                final = not data
                nul = data.find(b"\x00")  # checked first: NUL is valid UTF-8 but means a binary file
                if nul >= 0:
                    raise GptkitError(
                        f"{shown(source.path)}: looks binary (NUL byte at offset {offset + nul}); "
                        "pass UTF-8 text files only"
                    )
                try:
                    text = decoder.decode(data, final=final)
                except UnicodeDecodeError as err:  # err.object = bytes held over from the last read + data
                    at = offset - (len(err.object) - len(data)) + err.start
                    raise GptkitError(
                        f"{shown(source.path)}: not UTF-8 text (invalid byte 0x{err.object[err.start]:02x} at offset "
                        f"{at}); convert it to UTF-8 or leave it out"
                    ) from None
                offset += len(data)
                if text:
                    yield text
                if final:
                    break
        except (OSError, EOFError) as err:
            raise GptkitError(f"{shown(source.path)}: cannot read it ({type(err).__name__}: {err})") from None
    if offset == 0:
        raise GptkitError(f"{shown(source.path)}: the file is empty; remove it from the inputs")
    source.sha256 = hashing.hasher.hexdigest()


def _jsonl_documents(source: Source, text_field: str) -> Iterator[str]:
    """The `text_field` of each JSON line (blank lines skipped)."""
    pending, number = "", 0
    for block in _text_blocks(source):
        lines = (pending + block).split("\n")
        pending = lines.pop()
        for line in lines:
            number += 1
            if line.strip():
                yield _record_text(source, line, number, text_field)
    number += 1
    if pending.strip():
        yield _record_text(source, pending, number, text_field)


def _record_text(source: Source, line: str, number: int, text_field: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise GptkitError(f"{shown(source.path)}:{number}: not a JSON object ({err.msg}); fix the line") from None
    if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
        fields = ", ".join(record) if isinstance(record, dict) else type(record).__name__
        raise GptkitError(
            f"{shown(source.path)}:{number}: no text field {text_field!r} (found: {fields}); pass text_field=NAME "
            "(--field NAME)"
        )
    return record[text_field]


def iter_documents(source: Source, text_field: str = "text") -> Iterator[list[str] | Iterator[str]]:
    """Each document of `source` as an iterable of text blocks, counting characters and documents on the way."""
    source.characters = source.documents = 0
    if source.columnar:
        source.sha256, source.num_bytes = file_sha256(source.path)
        for text in columnar_documents(source.path, text_field):
            source.characters += len(text)
            source.documents += 1
            yield [text]
        if not source.documents:
            raise GptkitError(
                f"{shown(source.path)}: column {text_field!r} has no text; remove the file from the inputs"
            )
    elif source.jsonl:
        for text in _jsonl_documents(source, text_field):
            if not text:  # an empty record is no document (and gets no separator)
                continue
            source.characters += len(text)
            source.documents += 1
            yield [text]
    else:
        source.documents = 1
        yield _counted(_text_blocks(source), source)


def _counted(blocks: Iterator[str], source: Source) -> Iterator[str]:
    for block in blocks:
        source.characters += len(block)
        yield block
