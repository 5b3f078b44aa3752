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
        default=[],
        type=_model_spec,
        metavar="NAME=RUN_DIR",
        help="a method's report name and its run folder; repeat for each method "
        "(names UNet, UNet-S, ASM-G, ASM-M, ASM-RF get the paper's tables and tests); "
        "required unless --locator is given",
    )
    parser.add_argument(
        "--locator", metavar="RUN_OR_FILE",
        help="also evaluate the automatic mode with this locator (a locator run folder, a "
        ".keras file or 'pretrained'): centre error in mm per level, identification rate, "
        "misses, false detections, and segmentation from the located centres against the "
        "true ones (with the --model networks, or the shipped segmenter without --model)",
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
    if not runs and args.locator is None:
        raise ConfigError("give at least one --model NAME=RUN_DIR, or --locator")
    if not runs:
        return _eval_locator(args)
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
        locator=args.locator,
    )
    print(f"report: {report}")
    return 0


def _eval_locator(args: argparse.Namespace) -> int:
    """`eval --locator` without `--model`: the locator's figures, and segmentation from the
    located centres with the shipped segmenter when one is installed."""
    from vertseg_tf.evaluation.automatic import evaluate_locator_run, network_predictor
    from vertseg_tf.models_io import PRETRAINED

    try:
        networks = {PRETRAINED: network_predictor(PRETRAINED)}
    except ConfigError as error:
        echo(f"no end-to-end figures: {error}")
        networks = {}
    report, evaluation = evaluate_locator_run(
        args.dataset, args.locator, args.out, split=args.split, networks=networks,
        title=args.title, command_line=command_line(), overwrite=args.overwrite,
    )
    for table in evaluation.tables():
        print(table.markdown())
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
    parser.add_argument(
        "--seeds", type=int, default=1, metavar="N",
        help="train each network once per seed (the preset's seed and the next N-1); N > 1 "
        "adds OUT/report/seeds.md: mean and sd over seeds, a per-seed table, UNet vs UNet-S "
        "per seed and on the per-vertebra errors averaged over seeds (default 1)",
    )
    parser.add_argument(
        "--model-selection", choices=("last", "best"),
        help="evaluate the last epoch or the epoch with the lowest validation loss "
        "(default: the preset's)",
    )
    add_workers_argument(parser)
    parser.add_argument("--generator-version", type=int, choices=(1, 2), default=2,
                        help="synthetic generator when no --dataset is given: 2 (default) or 1, "
                             "the first one, to reproduce earlier results")
    parser.add_argument("--automatic", action="store_true",
                        help="add the automatic mode to the report: the locator's centre "
                             "figures and segmentation from located against true centres")
    parser.add_argument("--locator", metavar="RUN_OR_FILE",
                        help="the locator of --automatic (default: the shipped one)")
    parser.add_argument("--hard-share", type=float, default=None, metavar="SHARE",
                        help="synthetic v2 data: exact share of hard vertebrae in the test "
                             "split, e.g. 0.5 (default: the preset's; demo 0.5)")


def _reproduce(args: argparse.Namespace) -> int:
    from vertseg_tf.reproduce import reproduce

    report = reproduce(
        args.preset,
        args.out,
        dataset=args.dataset,
        cache_dir=args.cache_dir,
        seeds=args.seeds,
        model_selection=args.model_selection,
        workers=args.workers,
        generator_version=args.generator_version,
        hard_share=args.hard_share,
        automatic=args.automatic,
        locator=args.locator,
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
    "    --model ASM-G=runs/asm-g --out runs/report\n"
    "vertseg-tf eval --dataset data/ --locator pretrained --out runs/locator-report",
    _eval_arguments,
    _eval,
)

REPRODUCE = Command(
    "reproduce",
    "The paper's comparison in one command: data -> patches -> UNet, UNet-S, ASM-G, ASM-M, "
    "ASM-RF -> evaluation -> report. Finished steps are skipped when run again.",
    "vertseg-tf reproduce --preset demo --out runs/demo\n"
    "vertseg-tf reproduce --preset demo --seeds 3 --model-selection best --out runs/demo-3\n"
    "vertseg-tf reproduce --preset demo --out runs/demo-v1 --generator-version 1\n"
    "vertseg-tf reproduce --preset demo --automatic --out runs/demo",
    _reproduce_arguments,
    _reproduce,
)

COMMANDS = (EVAL, REPRODUCE)
