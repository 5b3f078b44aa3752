"""Evaluation commands: `eval` (trained runs -> report) and `reproduce` (the whole comparison)."""

from __future__ import annotations

import argparse

from vertseg_tf.cli.common import Command, add_workers_argument, command_line, echo
from vertseg_tf.errors import ConfigError

__all__ = ["COMMANDS"]


def _model_spec(text: str) -> tuple[str, str]:
    name, sep, run_dir = text.partition("=")
    if not sep or not name or not run_dir:
        raise argparse.ArgumentTypeError(f"expected NAME=RUN_DIR, got {text!r}")
    return name, run_dir


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, metavar="DIR", help="native dataset folder")
    parser.add_argument("--split", default="test", help="split to evaluate (test)")
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        type=_model_spec,
        metavar="NAME=RUN_DIR",
        help="a method's report name and its run folder; repeat for each method "
        "(names UNet, UNet-S, ASM-G, ASM-M, ASM-RF get the paper's tables and tests)",
    )
    parser.add_argument("--out", required=True, metavar="REPORT_DIR",
                        help="report folder (must not exist or be empty, unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace REPORT_DIR when it exists and is not empty")
    parser.add_argument("--cache-dir", help="patch cache folder")
    add_workers_argument(parser)
    parser.add_argument("--title", default="vertseg-tf evaluation", help="report heading")


def _eval(args: argparse.Namespace) -> int:
    from vertseg_tf.evaluation.runs import evaluate_runs

    runs = dict(args.models)
    if len(runs) != len(args.models):
        raise ConfigError("each --model NAME must be given once")
    report = evaluate_runs(
        args.dataset,
        runs,
        args.out,
        split=args.split,
        cache_dir=args.cache_dir,
        workers=args.workers,
        title=args.title,
        command_line=command_line(),
        progress=echo,
        overwrite=args.overwrite,
    )
    print(f"report: {report}")
    return 0


def _reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    from vertseg_tf.reproduce import REPRODUCE_PRESETS

    parser.add_argument(
        "--preset",
        default="demo",
        choices=tuple(REPRODUCE_PRESETS),
        help="; ".join(f"{name}: {p.summary}" for name, p in REPRODUCE_PRESETS.items()),
    )
    parser.add_argument(
        "--dataset", metavar="DIR", help="native dataset folder (default: synthetic data)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (resumable)")
    parser.add_argument("--cache-dir", help="patch cache folder")
    add_workers_argument(parser)
    parser.add_argument("--generator-version", type=int, choices=(1, 2), default=2,
                        help="synthetic generator when no --dataset is given: 2 (default) or 1, "
                             "the first one, to reproduce earlier results")
    parser.add_argument("--hard-share", type=float, default=None, metavar="SHARE",
                        help="synthetic v2 data: exact share of hard vertebrae in the test "
                             "split, e.g. 0.5")


def _reproduce(args: argparse.Namespace) -> int:
    from vertseg_tf.reproduce import reproduce

    report = reproduce(
        args.preset,
        args.out,
        dataset=args.dataset,
        cache_dir=args.cache_dir,
        workers=args.workers,
        generator_version=args.generator_version,
        hard_share=args.hard_share,
        command_line=command_line(),
        log=echo,
    )
    print(f"report: {report}")
    return 0


EVAL = Command(
    "eval",
    "Evaluate trained runs on a dataset split: per-vertebra CSV, Tables 1-3, Figures 6-9, "
    "report.md.",
    "vertseg-tf eval --dataset data/ --model UNet=runs/unet --model UNet-S=runs/unet-s \\\n"
    "    --model ASM-G=runs/asm-g --out runs/report",
    _eval_arguments,
    _eval,
)

REPRODUCE = Command(
    "reproduce",
    "The paper's comparison in one command: data -> patches -> UNet, UNet-S, ASM-G, ASM-M, "
    "ASM-RF -> evaluation -> report. Finished steps are skipped when run again.",
    "vertseg-tf reproduce --preset demo --out runs/demo\n"
    "vertseg-tf reproduce --preset demo --out runs/demo-v1 --generator-version 1",
    _reproduce_arguments,
    _reproduce,
)

COMMANDS = (EVAL, REPRODUCE)
