"""Command line: `vertseg-tf <command>` and `vertseg-tf-train`.

Every command raises `VertsegError` for a user's mistake; `main` prints it as one line and
exits non-zero. A traceback appears only with `--debug` (or for a genuine bug).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from vertseg_tf import __version__
from vertseg_tf.errors import ConfigError, VertsegError
from vertseg_tf.progress import Progress

__all__ = ["build_parser", "main", "train_main"]

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


def _cli_progress(label: str) -> Progress:
    """Per-image progress lines on stderr, silent for jobs done within a second."""
    return Progress(label, unit="images", quiet_under_s=1.0)


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DIR", help="dataset folder holding dataset.json")
    parser.add_argument("--strict", action="store_true", help="stop at the first error")


@command(
    "validate",
    "Check a native dataset: every problem as one line 'SEVERITY: FILE: FIELD: PROBLEM'.",
    "vertseg-tf validate runs/synthetic\nvertseg-tf validate my_dataset --strict",
    _validate_arguments,
)
def _validate(args) -> int:
    from vertseg_tf.data.dataset import validate_dataset

    problems = validate_dataset(
        args.dataset, strict=args.strict, progress=_cli_progress("validate")
    )
    for problem in problems:
        print(problem)
    errors = sum(problem.is_error for problem in problems)
    warnings = len(problems) - errors
    verdict = "not usable" if errors else "usable"
    stopped = " (stopped at the first error: --strict)" if args.strict and errors else ""
    print(f"{args.dataset}: {errors} error(s), {warnings} warning(s); {verdict}{stopped}")
    return 1 if errors else 0


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    from vertseg_tf.data.dataset import SPLITS
    from vertseg_tf.data.importers import IMPORT_FORMATS, PIXEL_ORIGINS

    parser.add_argument(
        "--from",
        dest="source_format",
        required=True,
        choices=IMPORT_FORMATS,
        help="annotation format of SRC",
    )
    parser.add_argument(
        "source",
        metavar="SRC",
        help="labelme: a Labelme JSON file or a folder of them; coco: the COCO JSON file",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="new dataset folder (must not exist or be empty)",
    )
    parser.add_argument(
        "--split",
        default="train",
        choices=SPLITS,
        help="split of every imported image (default: train)",
    )
    parser.add_argument(
        "--link",
        action="store_true",
        help="hard-link (or symlink) the images instead of copying them",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        default=None,
        help="coco: folder the file_names are relative to "
        "(default: beside the JSON file, then ../images)",
    )
    parser.add_argument(
        "--pixel-origin",
        choices=PIXEL_ORIGINS,
        default="corner",
        help="where the tool puts (0, 0): 'corner' of the top-left pixel (Labelme, COCO, CVAT; "
        "coordinates are shifted by -0.5) or its 'center' (default: corner)",
    )


@command(
    "import",
    "Convert Labelme or COCO (CVAT) polygon annotations of C3-C7 into a native dataset folder.",
    "vertseg-tf import --from labelme labelme_project/ --out my_dataset --split train\n"
    "vertseg-tf import --from coco export/annotations/instances_default.json \\\n"
    "    --out my_dataset --link",
    _import_arguments,
)
def _import(args) -> int:
    from vertseg_tf.data.importers import import_dataset

    options = {
        "split": args.split,
        "link": args.link,
        "pixel_origin": args.pixel_origin,
        "progress": _cli_progress("import"),
    }
    if args.images is not None:
        if args.source_format != "coco":
            raise ConfigError("--images applies to --from coco only")
        options["images_dir"] = args.images
    dataset = import_dataset(args.source_format, args.source, args.out, **options)
    vertebrae = sum(len(image.vertebrae) for image in dataset.images)
    print(
        f"{args.out}: imported {len(dataset.images)} image(s), {vertebrae} vertebra(e); "
        f"check it with: vertseg-tf validate {args.out}"
    )
    return 0


def _synth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (must be absent or empty)")
    parser.add_argument("--images", type=int, default=24, help="number of images (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", choices=("small", "full"), default="full",
                        help="full: 1500-2500 px; small: about 512 px (default full)")
    parser.add_argument("--format", dest="image_format", choices=("png", "dicom"), default="png",
                        help="16-bit PNG or DICOM (default png)")
    parser.add_argument("--hard-fraction", type=float, default=0.2,
                        help="share of images with at least one condition (default 0.2)")
    parser.add_argument("--facing", choices=("left", "right", "random"), default="left",
                        help="side the patient faces (default left)")
    parser.add_argument("--preview", action="store_true",
                        help="also write preview.png, a contact sheet of up to 12 images")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


@command(
    "synth",
    "Generate a synthetic dataset of lateral cervical radiographs with C3-C7 annotated.",
    "vertseg-tf synth --out runs/synthetic --images 12 --seed 0 --size small --preview",
    _synth_arguments,
)
def _synth(args: argparse.Namespace) -> int:
    from vertseg_tf.data.synthetic import generate

    dataset = generate(
        args.images, args.seed, args.out, size=args.size, image_format=args.image_format,
        hard_fraction=args.hard_fraction, facing=args.facing, preview=args.preview,
        progress=False if args.quiet else _cli_progress("synth"),
    )
    hard = sum(any(v.is_hard for v in im.vertebrae) for im in dataset.images)
    print(f"wrote {len(dataset.images)} images ({len(dataset.split('train'))} train, "
          f"{len(dataset.split('test'))} test, {hard} with conditions) to {dataset.root}")
    return 0


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
    patch_set = PatchSet.from_dataset(
        dataset,
        args.split,
        args.augment,
        cache_dir=args.cache_dir,
        progress=_cli_progress(f"patches {args.split}"),
    )
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


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", metavar="RUN_DIR",
        help="training run folder with model.keras (or a .keras file)",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="TF Serving base folder, e.g. models/vertseg"
    )
    parser.add_argument(
        "--version", required=True, type=int, help="version number; writes DIR/VERSION/"
    )
    parser.add_argument(
        "--tflite",
        default="float32,float16,int8",
        help="comma-separated TFLite variants to write, or '' for none "
        "(default float32,float16,int8)",
    )


@command(
    "export",
    "Export a trained model as a TF Serving SavedModel and TFLite models, checking parity.",
    "vertseg-tf export runs/demo --out models/vertseg --version 1\n"
    "vertseg-tf export runs/demo/model.keras --out models/vertseg --version 2 --tflite int8",
    _export_arguments,
)
def _export(args: argparse.Namespace) -> int:
    import json

    from vertseg_tf.deploy.export import MANIFEST_FILE, export_run

    target = export_run(args.run_dir, args.out, args.version, tflite=args.tflite)
    parity = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8"))["parity"]
    print(f"{target}: SavedModel max |diff| {parity['saved_model']['max_abs_diff']:.2e} "
          f"(fresh process, tolerance 1e-05)")
    for name, figures in parity.items():
        if name.startswith("tflite_"):
            print(f"  {name[7:]}: max |diff| {figures['max_abs_diff']:.2e}, "
                  f"mask Dice {figures['mask_dice']:.4f}")
    return 0


def _segment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="radiograph (DICOM, PNG, JPEG, TIFF)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--centers", help='clicked centres, top to bottom: "x,y;x,y;..."')
    where.add_argument(
        "--centers-file",
        metavar="FILE",
        help="centres file: JSON [[x, y], ...] or one 'x,y' per line",
    )
    parser.add_argument(
        "--model", required=True, help=".keras file, SavedModel folder or .tflite file"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="new folder for dataset.json and overlay.png"
    )
    parser.add_argument(
        "--labels", help="comma-separated levels, one per centre (default C3, C4, ...)"
    )
    parser.add_argument(
        "--scale", type=float, help="vertebra scale in pixels (required for a single centre)"
    )


@command(
    "segment",
    "Segment the vertebrae of a radiograph from clicked centres; write a dataset and overlay.",
    'vertseg-tf segment scan.png --centers "412,380;418,452;421,520" '
    "--model models/vertseg/1 --out runs/scan_seg --labels C3,C4,C5",
    _segment_arguments,
)
def _segment(args: argparse.Namespace) -> int:
    from vertseg_tf.deploy.inference import (
        Segmenter,
        parse_centers,
        read_centers_file,
        segment_to_dataset,
    )

    if args.centers is not None:
        centers = parse_centers(args.centers)
    else:
        centers = read_centers_file(args.centers_file)
    labels = None if args.labels is None else [x.strip() for x in args.labels.split(",")]
    json_path, results = segment_to_dataset(
        Segmenter(args.model), args.image, centers, args.out, labels, scale=args.scale
    )
    for result in results:
        flags = ", ".join(result.flags) if result.flags else "ok"
        print(f"  {result.label}: {len(result.contour)} contour points, "
              f"area {result.area_px:.0f} px^2 ({flags})")
    print(f"wrote {json_path} and {json_path.parent / 'overlay.png'}")
    return 0


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="FILE.json", help="JSON report to write")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few steps: the whole suite in about 2 minutes "
                             "on 2 cores")
    parser.add_argument("--only", metavar="A,B",
                        help="sections to run: train_step, pipeline, synthetic, asm, "
                             "inference, memory (default: all)")


def _benchmark_suite(repository: Path | None = None):
    """`benchmarks.suite` of `repository`: the source checkout this package was imported from."""
    import importlib

    repository = repository or Path(__file__).resolve().parent.parent
    if not (repository / "benchmarks" / "suite.py").is_file():
        raise ConfigError(
            f"{repository / 'benchmarks'}: not found; 'vertseg-tf bench' runs the scripts in "
            "benchmarks/ of a source checkout: clone vertseg-tf and run it there "
            "(pip install -e . or python -m vertseg_tf bench)"
        )
    if str(repository) not in sys.path:
        sys.path.insert(0, str(repository))
    return importlib.import_module("benchmarks.suite")


@command(
    "bench",
    "Run the benchmark suite (benchmarks/): speed and memory figures as ratios, printed and "
    "written as JSON.",
    "vertseg-tf bench --quick --out runs/bench_quick.json\n"
    "vertseg-tf bench --out runs/bench.json --only train_step,inference",
    _bench_arguments,
)
def _bench(args: argparse.Namespace) -> int:
    from vertseg_tf.data.dataset import write_json_atomic

    suite = _benchmark_suite()
    only = [name.strip() for name in (args.only or "").split(",") if name.strip()]
    unknown = [name for name in only if name not in suite.SECTIONS]
    if unknown:
        raise ConfigError(f"--only: unknown section(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(suite.SECTIONS)}")
    report = suite.run_suite(args.quick, only or None)
    write_json_atomic(report, args.out)
    print(suite.format_table(report))
    print(f"wrote {args.out}")
    return 0


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from vertseg_tf.training.config import LOOPS, METHODS, MIXED_PRECISION, STRATEGIES

    parser.add_argument(
        "--dataset", metavar="DIR",
        help="native dataset folder (default: the embedded synthetic dataset, generated and "
        "cached on first use)",
    )
    parser.add_argument("--method", choices=METHODS, help="what to train (default: unet-s)")
    parser.add_argument(
        "--preset", choices=("paper", "demo", "study", "smoke"),
        help="built-in config, the same as training/<preset>.toml (default: demo)",
    )
    parser.add_argument("--config", metavar="FILE.toml", help="config file (see training/)")
    parser.add_argument("--epochs", type=int, help="passes over the training patches")
    parser.add_argument("--batch-size", type=int, help="patches per step (paper: 25)")
    parser.add_argument("--lr", type=float, help="RMSprop learning rate")
    parser.add_argument("--scale-lr", action="store_true",
                        help="scale the learning rate by batch size / reference batch size (25)")
    parser.add_argument("--shape-weight", type=float, help="weight of the shape term (unet-s)")
    parser.add_argument("--e-mode", choices=("graph", "py_function"), help="how E is computed")
    parser.add_argument("--shape-weighting", choices=("fixed", "balanced"),
                        help="fixed w, or w that makes the shape term as large as the log loss")
    parser.add_argument("--e-per", choices=("image", "pixel"),
                        help="E per image (Eq. 4) or each pixel's own ground-truth distance")
    parser.add_argument("--shape-warmup", type=int, metavar="K",
                        help="train K epochs on the log loss alone before the shape term")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine", "step"),
                        help="learning-rate schedule (step: --lr-step-factor every "
                        "--lr-step-epochs epochs)")
    parser.add_argument("--lr-step-epochs", type=int, help="epochs between steps (10)")
    parser.add_argument("--lr-step-factor", type=float, help="factor of each step (0.5)")
    parser.add_argument("--model-selection", choices=("last", "best"),
                        help="model.keras holds the last epoch or the lowest validation loss")
    parser.add_argument("--seed", type=int, help="seed of the weights and the data order")
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="run folder (default: runs/<preset>-<method>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing RUN_DIR")
    parser.add_argument("--loop", choices=LOOPS,
                        help="custom TensorFlow loop or model.fit (any Keras backend)")
    parser.add_argument("--strategy", choices=STRATEGIES, help="tf.distribute strategy")
    parser.add_argument("--deterministic", action="store_true",
                        help="TensorFlow op determinism: equal seeds give equal weights")
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION,
                        help="mixed bfloat16 compute (float32 weights and loss)")
    parser.add_argument("--cache-dir", metavar="DIR", help="patch cache folder")


_TRAIN_OVERRIDES = {
    "method": "method",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "shape_weight": "shape_weight",
    "e_mode": "e_mode",
    "shape_weighting": "shape_weighting",
    "e_per": "e_per",
    "shape_warmup": "shape_warmup_epochs",
    "lr_schedule": "lr_schedule",
    "lr_step_epochs": "lr_step_epochs",
    "lr_step_factor": "lr_step_factor",
    "model_selection": "model_selection",
    "seed": "seed",
    "loop": "loop",
    "strategy": "strategy",
    "mixed_precision": "mixed_precision",
}


def _train_config(args: argparse.Namespace):
    from vertseg_tf.training import TRAIN_PRESETS, load_config, read_run_config

    if args.config and args.preset:
        raise ConfigError("--config and --preset exclude each other")
    if args.config:
        config = load_config(args.config)
    elif args.preset:
        config = TRAIN_PRESETS[args.preset]
    elif args.resume and args.out:
        config = read_run_config(args.out)
    else:
        config = TRAIN_PRESETS["demo"]
    changes = {
        field: getattr(args, option)
        for option, field in _TRAIN_OVERRIDES.items()
        if getattr(args, option) is not None
    }
    for flag in ("deterministic", "scale_lr"):
        if getattr(args, flag):
            changes[flag] = True
    return config.replace(**changes)


@command(
    "train",
    "Train UNet / UNet-S (or fit an ASM baseline) on a dataset's patches; also vertseg-tf-train.",
    "vertseg-tf-train --preset demo --method unet-s\n"
    "vertseg-tf-train --preset paper --method unet-s --dataset DIR --out runs/paper-unet-s\n"
    "KERAS_BACKEND=jax vertseg-tf-train --preset paper --loop fit --dataset DIR \\\n"
    "    --mixed-precision bfloat16 --batch-size 250 --scale-lr --out runs/paper-jax",
    _train_arguments,
)
def _train(args: argparse.Namespace) -> int:
    from vertseg_tf.training import train

    config = _train_config(args)
    out = args.out or f"runs/{args.preset or 'demo'}-{config.method}"
    result = train(
        config, args.dataset, out, resume=args.resume, overwrite=args.overwrite,
        cache_dir=args.cache_dir,
    )
    final = result.get("final", {})
    shown = ", ".join(
        f"{name} {final[name]:.4f}" for name in ("loss", "val_loss", "val_dice") if name in final
    )
    done = f"trained {config.method} for {result['epochs']} epoch(s)" if config.is_unet else (
        f"fitted {config.method} on {result['n_training_patches']} patches"
    )
    print(
        f"{done} in {result['wall_time_s']:.0f} s{': ' + shown if shown else ''}; "
        f"run folder: {out}"
    )
    return 0


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
    parser.add_argument("--out", required=True, metavar="REPORT_DIR", help="report folder")
    parser.add_argument("--cache-dir", help="patch cache folder")
    parser.add_argument("--title", default="vertseg-tf evaluation", help="report heading")


@command(
    "eval",
    "Evaluate trained runs on a dataset split: per-vertebra CSV, Tables 1-3, Figures 6-9, "
    "report.md.",
    "vertseg-tf eval --dataset data/ --model UNet=runs/unet --model UNet-S=runs/unet-s \\\n"
    "    --model ASM-G=runs/asm-g --out runs/report",
    _eval_arguments,
)
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
        title=args.title,
        command_line=_command_line(),
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(f"report: {report}")
    return 0


def _command_line() -> str:
    return " ".join(["vertseg-tf", *sys.argv[1:]])


def _reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    from vertseg_tf.evaluation.reproduce import REPRODUCE_PRESETS

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


@command(
    "reproduce",
    "The paper's comparison in one command: data -> patches -> UNet, UNet-S, ASM-G, ASM-M, "
    "ASM-RF -> evaluation -> report. Finished steps are skipped when run again.",
    "vertseg-tf reproduce --preset demo --out runs/demo\n"
    "vertseg-tf reproduce --preset demo --seeds 3 --model-selection best --out runs/demo-3",
    _reproduce_arguments,
)
def _reproduce(args: argparse.Namespace) -> int:
    from vertseg_tf.evaluation.reproduce import reproduce

    report = reproduce(
        args.preset,
        args.out,
        dataset=args.dataset,
        cache_dir=args.cache_dir,
        seeds=args.seeds,
        model_selection=args.model_selection,
        command_line=_command_line(),
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
