"""Command line: `vertseg-tf <command>` and `vertseg-tf-train`.

Every command raises `VertsegError` for a user's mistake; `main` prints it as one line and
exits 1. `OSError` (a read-only folder, a full disk), `MemoryError`, `RecursionError` and
OpenCV errors become one line too (`error_line`). A traceback appears only with `--debug`
(or for a genuine bug). Ctrl-C exits 130 with nothing half written, even when a library
swallowed the `KeyboardInterrupt` (`vertseg_tf.interrupts`).

Each command group is one module of this package exposing `COMMANDS`, a tuple of
`common.Command`; `COMMAND_MODULES` below is the registry, in `--help` order. Building the
parser imports no TensorFlow: the heavy imports live inside each command's run function.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap

from vertseg_tf import __version__, progress
from vertseg_tf.cli import app, bench, data, deploy, evaluate, measure, train
from vertseg_tf.cli.common import Command, docs_link
from vertseg_tf.errors import VertsegError
from vertseg_tf.interrupts import noticing_interrupts, raise_if_interrupted
from vertseg_tf.startup import quiet_tensorflow_startup

__all__ = ["COMMAND_MODULES", "build_parser", "commands", "error_line", "main", "train_main"]

COMMAND_MODULES = (data, deploy, app, measure, bench, train, evaluate)


def commands() -> tuple[Command, ...]:
    """Every registered command, in `--help` order."""
    return tuple(command for module in COMMAND_MODULES for command in module.COMMANDS)


_GLOBAL_FLAGS = (
    ("--debug", "show tracebacks on errors"),
    ("--verbose", "keep TensorFlow's start-up and log lines on stderr"),
    ("--quiet", "no progress bars or progress lines (results and errors only)"),
)


def _add_global_flags(parser: argparse.ArgumentParser, *, default) -> None:
    """The flags valid before and after COMMAND; a subcommand's default must not undo them."""
    for flag, help_text in _GLOBAL_FLAGS:
        parser.add_argument(flag, action="store_true", default=default, help=help_text)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `vertseg-tf` parser; with `only`, just that command gets its options.

    Every command is listed either way. `main` passes the command word of the command line,
    so `vertseg-tf --help` and `vertseg-tf COMMAND --help` import only what that command's
    options need (no other command's modules, no TensorFlow).
    """
    parser = argparse.ArgumentParser(
        prog="vertseg-tf",
        description="Shape-aware UNet vertebrae segmentation of lateral cervical radiographs.",
        epilog="Run 'vertseg-tf COMMAND --help' for a command's options and an example.\n"
        f"docs: {docs_link()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vertseg-tf {__version__}")
    _add_global_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands():
        cmd = sub.add_parser(
            command.name,
            help=command.summary,
            description=command.summary,
            epilog="example:\n" + textwrap.indent(command.example, "  ")
            + f"\n\ndocs: {docs_link(command.name)}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # SUPPRESS: a subcommand's default must not undo a flag given before COMMAND, so
        # `vertseg-tf --debug COMMAND` and `vertseg-tf COMMAND --debug` both work.
        _add_global_flags(cmd, default=argparse.SUPPRESS)
        if only is None or command.name == only:
            command.arguments(cmd)
        cmd.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The global options are flags, so the first word that is not an option is the command.
    command_word = next((word for word in argv if not word.startswith("-")), "")
    args = build_parser(only=command_word).parse_args(argv)
    if not args.verbose:
        quiet_tensorflow_startup()
    try:
        with noticing_interrupts(), (
            progress.silenced() if args.quiet else contextlib.nullcontext()
        ):
            status = int(args.run(args) or 0)
            # A Ctrl-C swallowed inside a library callback still ends the command as one.
            raise_if_interrupted()
            return status
    except KeyboardInterrupt:
        progress.close_all()
        print(f"vertseg-tf {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug or not _is_one_line_error(error):
            raise
        progress.close_all()
        print(f"vertseg-tf {args.command}: error: {error_line(error, args)}", file=sys.stderr)
        return 1


def error_line(error: BaseException, args: argparse.Namespace) -> str:
    """One line for a failure, naming the file: the place every command's errors go through.

    `VertsegError` already names its file and field. An `OSError` (permission denied, disk
    full, ...) names its own file. A `MemoryError`, a `RecursionError` or an OpenCV error
    raised deep inside a library names no file, so the line names the files and folders the
    command was given.
    """
    if isinstance(error, VertsegError):
        return str(error)
    if isinstance(error, OSError):
        reason = (error.strerror or str(error) or type(error).__name__).lower()
        where = error.filename if error.filename is not None else ", ".join(_given_paths(args))
        return f"{where or 'a file'}: {reason}"
    kind = {MemoryError: "out of memory", RecursionError: "input nested too deeply"}.get(
        type(error), "OpenCV failed"
    )
    detail = " ".join(str(error).split())[:200]
    inputs = ", ".join(_given_paths(args)) or "the command's input"
    return f"{inputs}: {kind} ({type(error).__name__}: {detail}); run with --debug for details"


def _is_one_line_error(error: BaseException) -> bool:
    """Whether `error` is a user's mistake or the machine's limit rather than a bug."""
    expected = (VertsegError, OSError, MemoryError, RecursionError)
    return isinstance(error, expected) or type(error).__module__.split(".")[0] == "cv2"


def _given_paths(args: argparse.Namespace) -> list[str]:
    """The command-line values that name existing files or folders, in option order."""
    values = [v for k, v in vars(args).items() if k not in ("command", "run", "debug")]
    return [value for value in values if isinstance(value, str) and value and
            os.path.exists(value)]


def train_main(argv: list[str] | None = None) -> int:
    """`vertseg-tf-train ...` is `vertseg-tf train ...`."""
    return main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
