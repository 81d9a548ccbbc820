"""Paths as the user gave them: why one cannot be read or written, and how to show one in a message or manifest.

`input_problem(path)` tells a missing file from a FIFO, a symbolic-link loop or an unreadable one, so an error
does not say "no such file" of a file that is there. `check_output_folder` refuses an output folder (`out_dir`,
`--out`) that is a file or cannot be written, before any work is done. `shown(path)` is the path as text that
can be printed and stored in UTF-8 JSON even when the file name is not valid UTF-8 (its bad bytes appear as
`\\xNN`). `read_json` reads a JSON file with one-line errors naming it: the one JSON reader of gptkit.
"""

import errno
import json
import os
import stat
from pathlib import Path

from gptkit.errors import ArgumentError, GptkitError


def shown(path) -> str:
    """`path` as printable, UTF-8-encodable text (undecodable bytes of a file name as `\\xNN` escapes)."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def input_problem(path) -> str | None:
    """Why `path` is neither a readable regular file nor a folder, in a few words; None when it is one."""
    try:
        info = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link loop"
        if err.errno == errno.ENOENT:
            return "a symbolic link to nothing" if os.path.islink(path) else "no such file or folder"
        return f"cannot be read ({err.strerror})"
    if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
        return None
    kinds = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device"}
    kind = next((name for test, name in kinds.items() if test(info.st_mode)), "a special file")
    return f"{kind}, not a regular file"


def file_problem(path) -> str:
    """Why `path` is not a readable regular file, in a few words ("no such file or folder", "a folder, not a
    file", "a FIFO (named pipe), not a regular file", ...); for error messages."""
    return input_problem(path) or ("a folder, not a file" if os.path.isdir(path) else "not a regular file")


def folder_problem(path) -> str:
    """Why `path` is not a folder, in a few words ("no such file or folder", "a file, not a folder", "a symbolic
    link loop", ...); for error messages."""
    return input_problem(path) or ("a file, not a folder" if os.path.isfile(path) else "not a folder")


def check_output_folder(path, argument: str = "out_dir", flag: str = "--out") -> None:
    """Refuse an output folder that is a file, lies under a file, or cannot be written; the error names
    `argument` (`flag` on the command line)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ArgumentError(argument, "is a file, not a folder; choose a folder", shown(path), flag=flag)
    existing = next((p for p in [path, *path.parents] if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        problem = f"{shown(existing)} is a file, so no folder can be made there"
        raise ArgumentError(argument, problem, shown(path), flag=flag)
    if not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{shown(existing)} is not writable; choose a folder you can write to"
        raise ArgumentError(argument, problem, shown(path), flag=flag)


def read_json(path, *, what: str = "fix or replace the file"):
    """The JSON value in `path`, or a one-line error naming the file, the problem and `what` to do."""
    path = Path(path)
    if not path.is_file():  # also refuses a FIFO, whose reading would never end
        raise GptkitError(f"{shown(path)}: {file_problem(path)}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:  # bad JSON or UTF-8, a 5,000-digit number, nesting too deep
        raise GptkitError(f"{shown(path)}: not valid JSON ({str(err)[:200]}); {what}") from None
    except OSError as err:
        raise GptkitError(f"{shown(path)}: cannot be read ({err.strerror})") from None
