import argparse
import errno
import gc
import json
import os
import signal
from pathlib import Path

import pytest

from vertseg_tf.atomic import (
    atomic_dir,
    atomic_path,
    require_new_folder,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from vertseg_tf.cli import error_line
from vertseg_tf.errors import ConfigError
from vertseg_tf.interrupts import interrupted, noticing_interrupts


def test_writers_create_the_folder_and_leave_no_temporary_file(tmp_path):
    write_text_atomic("a\r\nb", tmp_path / "sub" / "a.txt")
    write_bytes_atomic(b"\x00\x01", tmp_path / "sub" / "b.bin")
    write_json_atomic({"k": [1, 2]}, tmp_path / "sub" / "c.json")
    assert (tmp_path / "sub" / "a.txt").read_bytes() == b"a\r\nb"
    assert (tmp_path / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "c.json").read_text() == json.dumps({"k": [1, 2]}, indent=1) + "\n"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.txt", "b.bin", "c.json"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".")
        assert temporary.suffix == ".keras"
        temporary.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_permissions_follow_the_umask_like_open(tmp_path):
    previous = os.umask(0o027)
    try:
        write_text_atomic("x", tmp_path / "a.txt")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


def test_atomic_dir_takes_the_place_of_an_empty_folder_only(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_dir(tmp_path / "empty") as building:
        (building / "a.txt").write_text("new")
    assert (tmp_path / "empty" / "a.txt").read_text() == "new"
    with pytest.raises(OSError), atomic_dir(tmp_path / "empty") as building:
        (building / "b.txt").write_text("other")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["a.txt"]


def test_atomic_dir_replace_swaps_a_full_folder_and_failure_keeps_it(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out", replace=True) as building:
        (building / "half.txt").write_text("half")
        raise RuntimeError("writer failed")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["old.txt"]
    previous = os.umask(0o027)
    try:
        with atomic_dir(tmp_path / "out", replace=True) as building:
            (building / "new.txt").write_text("new")
    finally:
        os.umask(previous)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o750


def test_atomic_dir_refuses_a_full_folder_before_the_work(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.keras").write_text("trained for a week")
    ran = []
    with pytest.raises(FileExistsError, match="out"), atomic_dir(tmp_path / "out") as building:
        ran.append(building)
    assert ran == []
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.keras"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_require_new_folder(tmp_path, overwrite):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.txt").write_text("keep")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    assert require_new_folder(tmp_path / "new" / "deeper", overwrite=overwrite)
    assert require_new_folder(tmp_path / "empty", overwrite=overwrite)
    if overwrite:
        assert require_new_folder(tmp_path / "full", overwrite=True)
    else:
        with pytest.raises(ConfigError, match=r"full: .*not empty.*--overwrite"):
            require_new_folder(tmp_path / "full")
    with pytest.raises(ConfigError, match=r"file: exists and is not a folder"):
        require_new_folder(tmp_path / "file", overwrite=overwrite)
    assert (tmp_path / "full" / "a.txt").read_text() == "keep"
    assert not (tmp_path / "new").exists()


def _make_read_only(monkeypatch, folder):
    """Make `folder` read-only for this process, root included: the kernel lets root write
    into a chmod 0o500 folder, so the OS calls the atomic writers use are refused instead, as
    a read-only mount or an ACL refuses them. Everything else goes to the real call."""
    real_access, real_mkdir, real_open = os.access, os.mkdir, os.open

    def refused(path):
        return PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    def access(path, mode, *args, **kwargs):
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if Path(path).parent == folder:
            raise refused(path)
        return real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if Path(path).parent == folder and flags & os.O_CREAT:
            raise refused(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize("writer", ["require_new_folder", "atomic_dir", "atomic_path"])
def test_a_read_only_folder_is_one_error_line_naming_it(tmp_path, monkeypatch, writer):
    locked = tmp_path / "locked"
    locked.mkdir()
    _make_read_only(monkeypatch, locked)
    with pytest.raises((ConfigError, PermissionError)) as caught:
        if writer == "require_new_folder":
            require_new_folder(locked / "out")
        else:
            with (atomic_dir if writer == "atomic_dir" else atomic_path)(locked / "out"):
                pytest.fail("the block ran in a read-only folder")
    line = error_line(caught.value, argparse.Namespace())
    assert "\n" not in line and line.startswith(str(locked))
    assert "permission denied" in line.lower()
    assert list(locked.iterdir()) == []


def _swallowing_interrupt(phase, info):
    """A gc callback that gets Ctrl-C, as TensorFlow's `_xla_gc_callback` does: Python prints
    'Exception ignored in ...' and carries on."""
    if phase == "start":
        signal.raise_signal(signal.SIGINT)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("kind", ["dir", "file"])
def test_an_interrupt_swallowed_by_a_library_still_stops_the_commit(tmp_path, kind):
    target = tmp_path / ("out" if kind == "dir" else "model.keras")
    writer = atomic_dir if kind == "dir" else atomic_path
    with noticing_interrupts(), pytest.raises(KeyboardInterrupt), writer(target) as building:
        (building / "half.txt" if kind == "dir" else building).write_text("half")
        gc.callbacks.append(_swallowing_interrupt)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(_swallowing_interrupt)
    assert list(tmp_path.iterdir()) == []
    assert not interrupted()


def test_interrupt_flag_outside_noticing_is_never_set(tmp_path):
    with noticing_interrupts():
        assert not interrupted()
    with atomic_dir(tmp_path / "out") as building:
        (building / "a.txt").write_text("a")
    assert (tmp_path / "out" / "a.txt").read_text() == "a"
