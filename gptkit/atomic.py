"""Atomic file writes: write to a temp file in the same folder, then `os.replace` it into place.

A crash or Ctrl-C mid-write leaves the old file (or none), never a half-written one. Entry points:
`atomic_write_text(path, text)` and the `replacing(path)` context manager for writers that need a path;
`replacing_via_private_folder(path)` for writers that make temp files of their own (safetensors does), so that
whatever a killed writer leaves is one folder that `remove_stale_temp_files` recognises and removes;
`new_folder(out)` for a whole folder of files (an imported or merged run) that appears complete or not at all.
"""

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

# mkstemp creates files readable by the owner only; give ours the usual umask-based mode instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
FOLDER_MODE = 0o777 & ~_UMASK  # what mkdir would give; mkdtemp gives 0700
FILE_MODE = 0o666 & ~_UMASK  # what open() would give; mkstemp (and safetensors' own temp files) give 0600


@contextlib.contextmanager
def replacing(path):
    """Yield a temp path beside `path`; on success rename it over `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def replacing_via_private_folder(path):
    """Like `replacing`, but the temp file lies in a fresh folder `.{name}.XXXX.tmpdir` beside `path`.

    safetensors (0.5 and later) writes through a temp file of its own (`.tmpXXXXXX`, in the target's folder)
    that a `kill -9` leaves behind under a name that says nothing of its owner; inside our folder it is ours."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmpdir", dir=path.parent))
    try:
        tmp = folder / path.name
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def new_folder(out):
    """Yield a staging folder beside `out` to fill; on success it becomes `out` (replacing an empty folder
    there), with the usual umask-based mode; on error it is removed. `out` must not hold anything."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        os.chmod(staging, FOLDER_MODE)
        if out.exists():
            out.rmdir()  # an empty folder the user made; a non-empty one fails here rather than being replaced
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# safetensors' own temp names (from a write outside a private folder, as gptkit made them before 0.1 had these)
_SAFETENSORS_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def remove_stale_temp_files(folder, names) -> list[Path]:
    """Delete what killed writes of the files `names` left in `folder` (ours and safetensors'); returns them.

    Only for folders that gptkit alone writes into (a run directory), since safetensors' temp names are anonymous."""
    folder, removed = Path(folder), []
    for name in names:
        for stale in [*folder.glob(f".{name}.*.tmp"), *folder.glob(f".{name}.*.tmpdir")]:
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    for stale in folder.glob(".tmp*"):
        if _SAFETENSORS_TEMP.fullmatch(stale.name) and stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed
