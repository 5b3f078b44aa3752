"""The CLI's first impression: help without TensorFlow, docs links, global flags, --quiet."""

import argparse
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.child_process import REPOSITORY, child_environment
from vertseg_tf import cli, progress
from vertseg_tf.cli.common import Command, echo
from vertseg_tf.progress import Progress
from vertseg_tf.startup import _QuietImportFinder


def _run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPOSITORY,
                          env=child_environment(keep_tf_logs=False), capture_output=True,
                          text=True, timeout=timeout, check=True)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_of_every_command_imports_no_tensorflow_and_no_numpy():
    result = _run_python(
        """
        import contextlib, io, sys
        from vertseg_tf.cli import commands, main
        for argv in (["--help"], *([command.name, "--help"] for command in commands())):
            with contextlib.redirect_stdout(io.StringIO()) as shown:
                try:
                    main(argv)
                except SystemExit as done:
                    assert done.code == 0, argv
            assert "usage: vertseg-tf" in shown.getvalue(), argv
        heavy = {"tensorflow", "keras", "jax", "tf_keras", "numpy", "cv2", "scipy"}
        print(sorted({m.split(".")[0] for m in sys.modules} & heavy))
        """
    )
    assert result.stdout.strip() == "[]"


def test_lazy_packages_still_offer_every_public_name():
    result = _run_python(
        """
        import importlib, sys
        for package in ("vertseg_tf.data", "vertseg_tf.data.synthetic", "vertseg_tf.training"):
            module = importlib.import_module(package)
            assert "numpy" not in sys.modules, package
            assert set(module.__all__) <= set(dir(module)), package
        from vertseg_tf.data import load_dataset
        from vertseg_tf.data.dataset import load_dataset as home
        from vertseg_tf.data.synthetic import GENERATOR_VERSION, generate
        from vertseg_tf.training import TRAIN_PRESETS, RunFolder, epoch_order, train
        assert load_dataset is home and GENERATOR_VERSION == 2 and "demo" in TRAIN_PRESETS
        for package in ("vertseg_tf.data", "vertseg_tf.data.synthetic", "vertseg_tf.training"):
            module = sys.modules[package]
            print(package, all(getattr(module, name) is not None for name in module.__all__))
        """
    )
    assert result.stdout.split() == ["vertseg_tf.data", "True", "vertseg_tf.data.synthetic",
                                     "True", "vertseg_tf.training", "True"]


def test_every_command_help_ends_with_a_link_to_its_docs_section():
    text = (REPOSITORY / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\S+)$", text, re.MULTILINE))
    for name, parser in _subparsers(cli.build_parser()).items():
        last = parser.format_help().rstrip().splitlines()[-1]
        page, _, anchor = last.removeprefix("docs: ").partition("#")
        assert last.startswith("docs: ") and anchor == name, last
        assert Path(page) == REPOSITORY / "docs" / "cli.md" and name in sections


@pytest.mark.parametrize("flag", ["debug", "verbose", "quiet"])
def test_global_flags_work_before_and_after_the_command(flag):
    parser = cli.build_parser()
    assert getattr(parser.parse_args([f"--{flag}", "validate", "d"]), flag) is True
    assert getattr(parser.parse_args(["validate", "d", f"--{flag}"]), flag) is True
    assert getattr(parser.parse_args(["validate", "d"]), flag) is False


@pytest.fixture
def noisy_command(monkeypatch):
    """A registered command that reports progress into `lines` and echoes a step line."""
    lines = []

    class Recorder:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    def run(args):
        echo("step one")
        report = Progress("work", stream=Recorder(), bar=False)
        report(1, 1)
        print("result")
        return 0

    noisy = Command("noisy", "Report progress.", "vertseg-tf noisy", lambda parser: None, run)
    monkeypatch.setattr(cli, "commands", lambda: (noisy,))
    return lines


def test_quiet_silences_progress_and_step_lines_but_not_results(noisy_command, capsys):
    assert cli.main(["noisy", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert (out, err, noisy_command) == ("result\n", "", [])
    assert progress.is_enabled()  # restored for whatever runs next in this process
    assert cli.main(["noisy"]) == 0
    out, err = capsys.readouterr()
    assert out == "result\n" and err == "step one\n"
    assert "".join(noisy_command).startswith("work: 1/1, ETA 0 s")


def test_verbose_leaves_the_tensorflow_start_up_alone(noisy_command, monkeypatch, capsys):
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path
                                           if not isinstance(f, _QuietImportFinder)])
    assert cli.main(["--verbose", "noisy"]) == 0
    assert not any(isinstance(f, _QuietImportFinder) for f in sys.meta_path)
    assert cli.main(["noisy"]) == 0
    assert sum(isinstance(f, _QuietImportFinder) for f in sys.meta_path) == 1
