"""Command line: `vertseg-tf <command>` and `vertseg-tf-train`.

Every command raises `VertsegError` for a user's mistake; `main` prints it as one line and
exits non-zero. A traceback appears only with `--debug` (or for a genuine bug).

Each command group is one module of this package exposing `COMMANDS`, a tuple of
`common.Command`; `COMMAND_MODULES` below is the registry, in `--help` order. Building the
parser imports no TensorFlow: the heavy imports live inside each command's run function.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from vertseg_tf import __version__
from vertseg_tf.cli import bench, data, deploy, evaluate, measure, train
from vertseg_tf.cli.common import Command
from vertseg_tf.errors import VertsegError

__all__ = ["COMMAND_MODULES", "build_parser", "commands", "main", "train_main"]

COMMAND_MODULES = (data, deploy, measure, bench, train, evaluate)


def commands() -> tuple[Command, ...]:
    """Every registered command, in `--help` order."""
    return tuple(command for module in COMMAND_MODULES for command in module.COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vertseg-tf",
        description="Shape-aware UNet vertebrae segmentation of lateral cervical radiographs.",
        epilog="Run 'vertseg-tf COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"vertseg-tf {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands():
        cmd = sub.add_parser(
            command.name,
            help=command.summary,
            description=command.summary,
            epilog="example:\n" + textwrap.indent(command.example, "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # SUPPRESS: without --debug here the subcommand leaves the top-level value alone, so
        # `vertseg-tf --debug COMMAND` and `vertseg-tf COMMAND --debug` both work.
        cmd.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS,
            help="show tracebacks on errors",
        )
        command.arguments(cmd)
        cmd.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except VertsegError as error:
        if args.debug:
            raise
        print(f"vertseg-tf {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vertseg-tf {args.command}: interrupted", file=sys.stderr)
        return 130


def train_main(argv: list[str] | None = None) -> int:
    """`vertseg-tf-train ...` is `vertseg-tf train ...`."""
    return main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
