"""The command line's one place for errors: every failure is one line naming the file.

Each case makes a command hit a real failure (root ignores file modes, so a read-only folder
is simulated by the operating system's own error raised where the write happens).
"""

import errno
import json
import os
import signal

import cv2
import numpy as np
import pytest

from vertseg_tf.cli import main
from vertseg_tf.data import synthetic


def _one_error_line(capsys, command):
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith(f"vertseg-tf {command}: error: ")]
    assert len(errors) == 1 and len(err) == 1, err
    return errors[0]


def _labelme_source(folder):
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((16, 20), np.uint8))
    shape = {"label": "C3", "points": [[2, 2], [8, 2], [8, 6], [2, 6]], "shape_type": "polygon"}
    (folder / "a.json").write_text(json.dumps({"imagePath": "a.png", "shapes": [shape]}))
    return folder


def test_permission_error_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    source = _labelme_source(tmp_path / "labelme")
    out = tmp_path / "read-only" / "dataset"

    def refused(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "mkdir", refused)
    assert main(["import", "--from", "labelme", str(source), "--out", str(out)]) == 1
    line = _one_error_line(capsys, "import")
    assert str(out.parent) in line and "permission denied" in line.lower()


def test_json_nested_too_deeply_names_the_file(tmp_path, capsys):
    (tmp_path / "dataset.json").write_text("{\"images\": " + "[" * 100_000 + "]" * 100_000 + "}")
    assert main(["patches", "--dataset", str(tmp_path), "--split", "train"]) == 1
    line = _one_error_line(capsys, "patches")
    assert str(tmp_path / "dataset.json") in line and "nested too deeply" in line


@pytest.mark.parametrize("failure", [MemoryError, RecursionError, cv2.error])
def test_unexpected_failures_are_one_line_naming_the_inputs(tmp_path, capsys, monkeypatch,
                                                            failure):
    (tmp_path / "dataset.json").write_text("{}")

    def fails(*args, **kwargs):
        raise failure("deep inside a library")

    monkeypatch.setattr("vertseg_tf.data.dataset.validate_dataset", fails)
    assert main(["validate", str(tmp_path)]) == 1
    line = _one_error_line(capsys, "validate")
    assert str(tmp_path) in line and "deep inside a library" in line
    assert "--debug" in line


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_interrupt_still_exits_130_with_nothing_written(tmp_path, capsys,
                                                                    monkeypatch):
    real_generate = synthetic.generate

    def generate_and_lose_the_interrupt(*args, **kwargs):
        def swallow(phase, info):
            if phase == "start":
                signal.raise_signal(signal.SIGINT)

        import gc

        gc.callbacks.append(swallow)
        try:
            gc.collect()  # Python prints "Exception ignored in ..." and carries on
        finally:
            gc.callbacks.remove(swallow)
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(synthetic, "generate", generate_and_lose_the_interrupt)
    out = tmp_path / "synthetic"
    assert main(["synth", "--out", str(out), "--images", "1", "--size", "small"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["synth", "import"])
def test_output_folders_are_replaced_only_with_overwrite(tmp_path, capsys, command):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.keras").write_text("keep")
    if command == "synth":
        arguments = ["synth", "--out", str(out), "--images", "1", "--size", "small"]
    else:
        source = _labelme_source(tmp_path / "labelme")
        arguments = ["import", "--from", "labelme", str(source), "--out", str(out)]
    assert main(arguments) == 1
    assert "--overwrite" in _one_error_line(capsys, command)
    assert [p.name for p in out.iterdir()] == ["model.keras"]
    assert main([*arguments, "--overwrite"]) == 0, capsys.readouterr().err
    assert (out / "dataset.json").is_file() and not (out / "model.keras").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
