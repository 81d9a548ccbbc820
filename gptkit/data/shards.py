"""Token shards on disk: write them in bounded pieces (atomically), and list what a manifest says exists.

A split is a list of shard files `train-00000.bin`, ... of at most `shard_tokens` tokens each (uint16, or
uint32 for vocabularies over 65,536). Each shard is written to a temp file and renamed only when complete,
with its token count and sha256 recorded for the manifest. Entry point: `ShardWriter`.
"""

import hashlib
import os
from pathlib import Path

import numpy as np

SHARD_TOKENS = 100_000_000  # ~200 MB of uint16 per shard


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


class ShardWriter:
    """Appends token arrays to `{split}-NNNNN.bin` files of at most `shard_tokens` tokens."""

    def __init__(self, folder: Path, split: str, dtype: np.dtype, shard_tokens: int = SHARD_TOKENS):
        self.folder, self.split, self.dtype, self.shard_tokens = Path(folder), split, dtype, shard_tokens
        self.shards: list[dict] = []
        self._file = None
        self._count = 0

    def _open(self) -> None:
        name = f"{self.split}-{len(self.shards):05d}.bin"
        self._name, self._tmp = name, self.folder / f".{name}.tmp"
        self._file = open(self._tmp, "wb")
        self._hash = hashlib.sha256()
        self._count = 0

    def write(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=self.dtype)
        while len(ids):
            if self._file is None:
                self._open()
            room = self.shard_tokens - self._count
            part, ids = ids[:room], ids[room:]
            data = part.tobytes()
            self._file.write(data)
            self._hash.update(data)
            self._count += len(part)
            if self._count == self.shard_tokens:
                self._finish()

    def _finish(self) -> None:
        self._file.close()
        os.replace(self._tmp, self.folder / self._name)  # only complete shards carry a real name
        self.shards.append({"file": self._name, "tokens": self._count, "sha256": self._hash.hexdigest()})
        self._file = None

    def close(self) -> list[dict]:
        if self._file is not None:
            self._finish()
        return self.shards

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
            self._file = None


def output_files(folder: Path) -> list[Path]:
    """A previous prepare's files in `folder`, its manifest first (never anything else that lives there)."""
    found = [folder / "meta.json"] if (folder / "meta.json").is_file() else []
    patterns = ("train-*.bin", "val-*.bin", "train.bin", "val.bin", "*.mask.bin", "*.conversations.bin", ".*.tmp")
    for pattern in (*patterns, "tokenizer.json"):
        found += sorted(p for p in folder.glob(pattern) if p.is_file())
    return found
