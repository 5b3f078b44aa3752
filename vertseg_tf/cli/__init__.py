"""Command line: `vertseg-tf <command>` and `vertseg-tf-train`.

Every command raises `VertsegError` for a user's mistake; `main` prints it as one line and
exits non-zero. A traceback appears only with `--debug` (or for a genuine bug).

Each command group is one module of this package exposing `COMMANDS`, a tuple of
`common.Command`; `COMMAND_MODULES` below is the registry, in `--help` order. Building the
parser imports no TensorFlow: the heavy imports live inside each command's run function.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap

from vertseg_tf import __version__, progress
from vertseg_tf.cli import bench, data, deploy, evaluate, measure, train
from vertseg_tf.cli.common import Command, docs_link
from vertseg_tf.errors import VertsegError
from vertseg_tf.startup import quiet_tensorflow_startup

__all__ = ["COMMAND_MODULES", "build_parser", "commands", "main", "train_main"]

COMMAND_MODULES = (data, deploy, measure, bench, train, evaluate)


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
        with progress.silenced() if args.quiet else contextlib.nullcontext():
            return int(args.run(args) or 0)
    except VertsegError as error:
        if args.debug:
            raise
        progress.close_all()
        print(f"vertseg-tf {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress.close_all()
        print(f"vertseg-tf {args.command}: interrupted", file=sys.stderr)
        return 130


def train_main(argv: list[str] | None = None) -> int:
    """`vertseg-tf-train ...` is `vertseg-tf train ...`."""
    return main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
