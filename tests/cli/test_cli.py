"""The command registry and the top-level options of `vertseg-tf`."""

import subprocess
import sys

import pytest

from vertseg_tf.cli import build_parser, commands, main
from vertseg_tf.errors import DataError


@pytest.mark.parametrize("position", ["before", "after"])
def test_debug_before_or_after_the_command_shows_the_traceback(tmp_path, position):
    command = ["patches", "--dataset", str(tmp_path / "no_such_dataset"), "--split", "train"]
    argv = ["--debug", *command] if position == "before" else [*command, "--debug"]
    with pytest.raises(DataError, match="no_such_dataset"):
        main(argv)


def test_without_debug_an_error_is_one_line_and_exit_1(tmp_path, capsys):
    missing = str(tmp_path / "no_such_dataset")
    assert main(["patches", "--dataset", missing, "--split", "train"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("vertseg-tf patches: error: ")
    assert "no_such_dataset" in error


def test_parser_defaults_debug_to_false_in_both_positions():
    parser = build_parser()
    assert parser.parse_args(["validate", "d"]).debug is False
    assert parser.parse_args(["--debug", "validate", "d"]).debug is True
    assert parser.parse_args(["validate", "d", "--debug"]).debug is True


def test_every_command_has_help_with_an_example(capsys):
    names = [command.name for command in commands()]
    assert len(names) == len(set(names))
    for name in names:
        with pytest.raises(SystemExit) as stop:
            main([name, "--help"])
        assert stop.value.code == 0
        assert "example:\n  vertseg-tf" in capsys.readouterr().out, name


def test_building_the_parser_imports_no_tensorflow():
    code = ("import sys; from vertseg_tf.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
