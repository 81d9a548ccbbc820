"""Parquet and Arrow input: one row's text column is one document, read a row group (or record batch) at a time.

Most public pre-training corpora ship as Parquet, and `datasets.save_to_disk` writes Arrow IPC streams
(`data-00000-of-00001.arrow`); both are read without loading the file: only the chosen column of one row group
is in memory at a time. Needs `pyarrow` (`pip install 'gptkit[parquet]'`), imported only when such a file
comes. In a folder with Parquet or Arrow files only those are read (its README and `datasets` JSON metadata are
no text). Entry points: `COLUMNAR_SUFFIXES`, `columnar_documents`, `file_sha256`.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path

from gptkit.errors import GptkitError
from gptkit.paths import shown

COLUMNAR_SUFFIXES = (".parquet", ".arrow")
DATASET_DICT = "dataset_dict.json"  # `DatasetDict.save_to_disk`: one folder per split


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError:
        raise GptkitError(
            "reading .parquet and .arrow files needs pyarrow: pip install 'gptkit[parquet]' (or pip install pyarrow)"
        ) from None
    return pyarrow


def _batches(path: Path, field: str) -> Iterator:
    """Arrays of the `field` column, one per row group (Parquet) or record batch (Arrow IPC file or stream)."""
    pa = _pyarrow()
    try:
        if path.suffix.lower() == ".parquet":
            parquet = pa.parquet.ParquetFile(path)
            _check_column(path, field, parquet.schema_arrow)
            for group in range(parquet.num_row_groups):
                yield parquet.read_row_group(group, columns=[field]).column(0)
            return
        source = pa.memory_map(str(path))
        try:
            reader = pa.ipc.open_file(source)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:  # not the file format: `save_to_disk` writes the stream format
            source = pa.memory_map(str(path))
            reader = pa.ipc.open_stream(source)
            batches = iter(reader)
        _check_column(path, field, reader.schema)
        for batch in batches:
            yield batch.column(batch.schema.get_field_index(field))
    except (pa.ArrowException, OSError) as err:
        raise GptkitError(f"{shown(path)}: cannot read it as {path.suffix[1:]} ({err}); check the file") from None


def _check_column(path: Path, field: str, schema) -> None:
    if field not in schema.names:
        raise GptkitError(
            f"{shown(path)}: no column {field!r} (columns: {', '.join(schema.names)}); pass text_field=NAME "
            "(--field NAME)"
        )
    kind = schema.field(field).type
    if str(kind) not in ("string", "large_string", "string_view"):
        raise GptkitError(f"{shown(path)}: column {field!r} holds {kind}, not text; pass the text column with --field")


def columnar_documents(path: Path, field: str) -> Iterator[str]:
    """The non-empty texts of the `field` column, in row order (nulls and empty strings are no documents)."""
    for column in _batches(path, field):
        for text in column.to_pylist():
            if text:
                yield text


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256, size) of a file's bytes, read a MiB at a time."""
    hasher, size = hashlib.sha256(), 0
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            hasher.update(block)
            size += len(block)
    return hasher.hexdigest(), size
