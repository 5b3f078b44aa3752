"""What every command module shares: the `Command` record and the progress and echo helpers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vertseg_tf.progress import Progress

__all__ = [
    "CLI_DOCS", "Command", "add_workers_argument", "cli_progress", "command_line", "docs_link",
    "echo",
]

CLI_DOCS = "docs/cli.md"
"""The command-line reference, relative to the repository root; one section per command."""


@dataclass(frozen=True)
class Command:
    """One `vertseg-tf NAME` command.

    Args:
        name: the word after `vertseg-tf`.
        summary: one line for `vertseg-tf --help` and the command's description.
        example: command lines shown under "example:" in the command's `--help`.
        arguments: `arguments(parser)` adds the command's options; imports nothing heavy.
        run: `run(args) -> int` does the work; TensorFlow and friends are imported here.
    """

    name: str
    summary: str
    example: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def cli_progress(label: str) -> Progress:
    """Per-image progress lines on stderr, silent for jobs done within a second."""
    return Progress(label, unit="images", quiet_under_s=1.0)


def add_workers_argument(parser: argparse.ArgumentParser) -> None:
    """`--workers N`: processes that cut the patches (default: every core)."""

    def positive(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
        return int(text)

    parser.add_argument(
        "--workers", type=positive, metavar="N",
        help="processes that cut the patches (default: every core; the patches are the same)",
    )


def command_line() -> str:
    """The command line as the user typed it, for reports that record how they were made."""
    return " ".join(["vertseg-tf", *sys.argv[1:]])


def echo(line: str) -> None:
    """A status line on stderr (a step starting), above any progress bar; silent with --quiet."""
    from vertseg_tf.progress import write

    write(line)


def docs_link(command: str | None = None) -> str:
    """Where a command's reference is: `CLI_DOCS#command`, absolute in a source checkout.

    Example:
        >>> docs_link("train").endswith("docs/cli.md#train")
        True
    """
    anchor = f"#{command}" if command else ""
    checkout = Path(__file__).resolve().parents[2] / CLI_DOCS
    if checkout.is_file():
        return f"{checkout}{anchor}"
    return f"{CLI_DOCS}{anchor} in the vertseg-tf repository"
