import json
import os

import pytest

from vertseg_tf.atomic import (
    atomic_dir,
    atomic_path,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


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
