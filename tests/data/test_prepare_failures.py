"""A prepare that fails never costs the user their previous dataset, and every failure names its file."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import tiny_config

import gptkit.data.prepare as prepare_module
from gptkit.data.dataset import TokenDataset
from gptkit.data.prepare import prepare
from gptkit.errors import GptkitError
from gptkit.train.loop import train


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_file_gone_in_the_second_pass_leaves_the_previous_dataset_as_it_was(tmp_path, shakespeare_text, monkeypatch):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text(shakespeare_text[:30_000])
    (texts / "b.txt").write_text(shakespeare_text[30_000:40_000])
    out = tmp_path / "data"
    prepare([str(texts)], out)
    before = snapshot(out)

    first_pass = prepare_module._scan

    def scan_then_lose_a_file(*args, **kwargs):  # the file disappears between the two passes
        result = first_pass(*args, **kwargs)
        (texts / "b.txt").unlink()
        return result

    monkeypatch.setattr(prepare_module, "_scan", scan_then_lose_a_file)
    (texts / "a.txt").write_text(shakespeare_text[:35_000])  # a changed corpus, so the new dataset would differ
    with pytest.raises(GptkitError, match=r"b\.txt: cannot open it \(no such file or folder\)"):
        prepare([str(texts)], out)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "texts"]
    result = train(tiny_config(out, "train.max_iters=3"), tmp_path / "run", echo=lambda line: None, progress=False)
    assert result.step == 3


def test_a_file_name_that_is_not_utf8_is_prepared_and_shown_escaped(tmp_path, shakespeare_text):
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.txt")  # Latin-1 bytes: not a UTF-8 file name
    try:
        (folder / name).write_text(shakespeare_text[:5000])
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system refuses names that are not UTF-8")
    meta = prepare([str(folder)], tmp_path / "out")
    assert meta["sources"][0]["path"].endswith("caf\\xe9.txt")
    assert TokenDataset(tmp_path / "out").num_tokens("train") > 0
    (folder / name).write_bytes(b"\xff\xfe not utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gptkit", "prepare", str(folder), "--out", str(tmp_path / "out")],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 2 and b"caf\\xe9.txt: not UTF-8 text" in result.stderr, result.stderr
    assert TokenDataset(tmp_path / "out").num_tokens("train") > 0  # the earlier dataset is still there


def test_a_fifo_or_a_link_loop_is_not_called_missing(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for path, says in [("pipe", "a FIFO (named pipe), not a regular file"), ("loop", "a symbolic link loop")]:
        with pytest.raises(GptkitError, match=rf"{path}: {says.replace('(', '.').replace(')', '.')}"):
            prepare([str(tmp_path / path)], tmp_path / "out")
    with pytest.raises(GptkitError, match="dangling: a symbolic link to nothing"):
        prepare([str(tmp_path / "dangling")], tmp_path / "out")


def test_an_out_that_is_a_file_is_refused_by_name(tmp_path, small_text_file, small_data):
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(GptkitError, match="out_dir='.*taken': is a file, not a folder"):
        prepare([str(small_text_file)], tmp_path / "taken")
    with pytest.raises(GptkitError, match="out_dir='.*taken': is a file, not a folder"):
        train(tiny_config(small_data), tmp_path / "taken", echo=lambda line: None, progress=False)
    with pytest.raises(GptkitError, match="taken is a file, so no folder can be made there"):
        prepare([str(small_text_file)], tmp_path / "taken" / "sub")
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.fixture
def locked_folder(tmp_path):
    """A folder this process cannot write into: read-only by mode, or for root (whom modes do not stop)
    immutable (`chattr +i`)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o555)
        yield locked
        locked.chmod(0o755)
        return
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
        pytest.skip("no way to make a folder read-only for root here (chattr +i failed)")
    try:
        yield locked
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)


def test_a_read_only_out_is_a_one_line_error(small_text_file, locked_folder):
    for out in (locked_folder, locked_folder / "new"):
        result = subprocess.run(
            [sys.executable, "-m", "gptkit", "prepare", str(small_text_file), "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "locked is not writable" in result.stderr, result.stderr


def test_an_out_on_another_file_system_works_and_fails_safely(tmp_path, small_text_file, shakespeare_text, monkeypatch):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system (/dev/shm) here")
    target = Path(tempfile.mkdtemp(dir=shm))
    try:
        (tmp_path / "out").symlink_to(target)  # e.g. a Docker volume: renames from beside it would cross devices
        prepare([str(small_text_file)], tmp_path / "out")
        before = snapshot(target)
        (tmp_path / "gone.txt").write_text(shakespeare_text[:1000])
        first_pass = prepare_module._scan

        def scan_then_lose_a_file(*args, **kwargs):
            result = first_pass(*args, **kwargs)
            (tmp_path / "gone.txt").rename(tmp_path / "kept.txt")
            return result

        with monkeypatch.context() as patch:
            patch.setattr(prepare_module, "_scan", scan_then_lose_a_file)
            with pytest.raises(GptkitError, match="gone.txt: cannot open it"):
                prepare([str(tmp_path / "gone.txt")], tmp_path / "out")
        assert snapshot(target) == before
        (tmp_path / "kept.txt").rename(tmp_path / "gone.txt")
        (target / ".preparing-killed").mkdir()  # what a kill -9 leaves
        prepare([str(tmp_path / "gone.txt")], tmp_path / "out")
        assert not [p for p in target.iterdir() if p.name.startswith(".")]
        assert TokenDataset(tmp_path / "out").num_tokens("train") > 0
    finally:
        shutil.rmtree(target, ignore_errors=True)
