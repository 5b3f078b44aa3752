"""Command line: `vertseg-tf <command>` and `vertseg-tf-train`.

Every command raises `VertsegError` for a user's mistake; `main` prints it as one line and
exits non-zero. A traceback appears only with `--debug` (or for a genuine bug).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable

from vertseg_tf import __version__
from vertseg_tf.errors import VertsegError

__all__ = ["main", "train_main", "build_parser"]

_COMMANDS: list[tuple[str, str, str, Callable, Callable]] = []


def command(name: str, summary: str, example: str, arguments: Callable):
    """Register the decorated `run(args)` as `vertseg-tf NAME`; `arguments(parser)` adds options."""

    def register(run: Callable) -> Callable:
        _COMMANDS.append((name, summary, example, arguments, run))
        return run

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vertseg-tf",
        description="Shape-aware UNet vertebrae segmentation of lateral cervical radiographs.",
        epilog="Run 'vertseg-tf COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"vertseg-tf {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary, example, add_arguments, run in _COMMANDS:
        cmd = sub.add_parser(
            name,
            help=summary,
            description=summary,
            epilog="example:\n" + textwrap.indent(example, "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_argument("--debug", action="store_true", help="show tracebacks on errors")
        add_arguments(cmd)
        cmd.set_defaults(run=run)
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


def _patches_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="native dataset folder")
    parser.add_argument("--split", required=True, choices=("train", "val", "test"))
    parser.add_argument(
        "--augment", action="store_true", help="45 patches per vertebra (5 scales x 9 angles)"
    )
    parser.add_argument("--sheet", metavar="FILE.png", help="write a contact sheet of patches")
    parser.add_argument("--count", type=int, default=25, help="patches on the sheet (25)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sheet's choice (0)")
    parser.add_argument(
        "--cache-dir", help="patch cache folder ($VERTSEG_TF_CACHE/patches or ~/.cache/...)"
    )


@command(
    "patches",
    "Cut (or load from the cache) the vertebra patches of a dataset split.",
    "vertseg-tf patches --dataset runs/synthetic --split train --augment --sheet sheet.png",
    _patches_arguments,
)
def _patches(args: argparse.Namespace) -> int:
    from collections import Counter

    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.data.patches import PatchSet, save_contact_sheet

    dataset = load_dataset(args.dataset)
    patch_set = PatchSet.from_dataset(dataset, args.split, args.augment, cache_dir=args.cache_dir)
    per_label = Counter(patch_set.labels)
    vertebrae = Counter(v.label for record in dataset.split(args.split) for v in record.vertebrae)
    print(f"{len(patch_set)} patches from {sum(vertebrae.values())} vertebrae ({args.split})")
    for label in sorted(per_label):
        print(
            f"  {label}: {vertebrae[label]} vertebrae, {per_label[label]} patches "
            f"({per_label[label] // max(vertebrae[label], 1)} per vertebra)"
        )
    if args.sheet:
        path = save_contact_sheet(patch_set, args.sheet, count=args.count, seed=args.seed)
        print(f"contact sheet: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
