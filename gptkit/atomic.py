"""Atomic file writes: write to a temp file in the same folder, then `os.replace` it into place.

A crash or Ctrl-C mid-write leaves the old file (or none), never a half-written one. Entry points:
`atomic_write_text(path, text)` and the `replacing(path)` context manager for writers that need a path.
"""

import contextlib
import os
import tempfile
from pathlib import Path

# mkstemp creates files readable by the owner only; give ours the usual umask-based mode instead.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def replacing(path):
    """Yield a temp path beside `path`; on success rename it over `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
