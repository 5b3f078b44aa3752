"""Deployment commands: `export` (SavedModel + TFLite) and `segment` (one radiograph)."""

from __future__ import annotations

import argparse

from vertseg_tf.cli.common import Command
from vertseg_tf.errors import ConfigError

__all__ = ["COMMANDS"]


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", nargs="?",
        help="training run folder with model.keras (or a .keras file)",
    )
    parser.add_argument(
        "--model", metavar="pretrained",
        help="'pretrained': export the model shipped with vertseg-tf instead of a RUN_DIR",
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
    parser.add_argument(
        "--locator", metavar="RUN_OR_FILE",
        help="add the SavedModel's 'locate' signature (whole film in, C2-T1 centres out) with "
        "this locator run folder or .keras file, 'pretrained' for the shipped one, or 'none' "
        "to leave it out (default: the shipped locator when it is installed)",
    )


def _export_locator(choice: str | None):
    """What `--locator` asks `export_run` for: None, a path, or "pretrained"."""
    from vertseg_tf.models_io import PRETRAINED
    from vertseg_tf.pretrained import LOCATOR_FILE, PRETRAINED_DIR

    if choice is None:
        return PRETRAINED if (PRETRAINED_DIR / LOCATOR_FILE).is_file() else None
    return None if choice.lower() == "none" else choice


def _export(args: argparse.Namespace) -> int:
    import json

    from vertseg_tf.deploy.export import MANIFEST_FILE, export_run
    from vertseg_tf.models_io import PRETRAINED, load_pretrained_model

    if (args.run_dir is None) == (args.model is None):
        raise ConfigError(f"give either RUN_DIR or --model {PRETRAINED}")
    if args.model is not None and args.model != PRETRAINED:
        raise ConfigError(f"--model takes only {PRETRAINED!r}; give a run folder as RUN_DIR")
    source = load_pretrained_model() if args.model is not None else args.run_dir
    target = export_run(source, args.out, args.version, tflite=args.tflite,
                        locator=_export_locator(args.locator))
    parity = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8"))["parity"]
    saved_model = parity["saved_model"]
    print(f"{target}: SavedModel max |diff| {saved_model['max_abs_diff']:.2e} "
          f"({saved_model['loaded_in']}, tolerance {saved_model['tolerance']:g})")
    for name, figures in parity.items():
        if name.startswith("tflite_"):
            print(f"  {name[7:]}: max |diff| {figures['max_abs_diff']:.2e}, "
                  f"mask Dice {figures['mask_dice']:.4f}")
    if "locate" in parity:
        locate = parity["locate"]
        print(f"  locate: same levels found on {locate['films']} films, centres within "
              f"{locate['max_center_diff_px']:.2e} px of Locator.locate")
        cut = parity["segment_radiograph"]
        print(f"  segment_radiograph: {cut['vertebrae']} vertebrae as Segmenter.segment_located, "
              f"placed within {cut['max_placement_diff_px']:.2e} px, "
              f"{cut['mask_pixel_agreement']:.4%} of mask pixels equal")
    else:
        print("  no locate signature (no locator given or installed)")
    return 0


def _segment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="radiograph (DICOM, PNG, JPEG, TIFF)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--centers",
        help='clicked centres, top to bottom: "x,y;x,y;..." (default: found by the locator)',
    )
    where.add_argument(
        "--centers-file",
        metavar="FILE",
        help="centres file: JSON [[x, y], ...] or one 'x,y' per line",
    )
    parser.add_argument(
        "--model", default="pretrained",
        help=".keras file, SavedModel folder or .tflite file (default: 'pretrained', the model "
        "shipped with vertseg-tf, trained on synthetic films only)",
    )
    parser.add_argument(
        "--locator", default="pretrained", metavar="RUN_OR_FILE",
        help="locator run folder or .keras file, used without --centers (default: "
        "'pretrained', the locator shipped with vertseg-tf, trained on synthetic films only)",
    )
    parser.add_argument(
        "--review", action="store_true",
        help="without --centers: also write review.png with the found centres and levels",
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
    parser.add_argument(
        "--facing", choices=("left", "right"),
        help="side the patient faces, for the measurements (default: detected)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace DIR when it exists and is not empty"
    )


def _segment(args: argparse.Namespace) -> int:
    from vertseg_tf.cli.measure import print_stored_measurements
    from vertseg_tf.deploy.inference import (
        Segmenter,
        parse_centers,
        read_centers_file,
        segment_to_dataset,
    )

    if args.centers is not None:
        centers = parse_centers(args.centers)
    elif args.centers_file is not None:
        centers = read_centers_file(args.centers_file)
    else:
        centers = None
    labels = None if args.labels is None else [x.strip() for x in args.labels.split(",")]
    if centers is None and labels is not None:
        raise ConfigError("--labels needs --centers (the locator names the levels it finds)")
    json_path, results = segment_to_dataset(
        Segmenter(args.model, locator=args.locator), args.image, centers, args.out, labels,
        scale=args.scale, facing=args.facing, review=args.review,
        overwrite=args.overwrite,
    )
    for result in results:
        flags = ", ".join(result.flags) if result.flags else "ok"
        found = ("" if result.center_confidence is None
                 else f", centre found, confidence {result.center_confidence:.2f}")
        print(f"  {result.label}: {len(result.contour)} contour points, "
              f"area {result.area_px:.0f} px^2 ({flags}{found})")
    if centers is None:
        _print_located(json_path)
    print_stored_measurements(json_path)
    print(f"wrote {json_path}, {json_path.parent / 'measurements.csv'} and "
          f"{json_path.parent / 'overlay.png'}")
    return 0


def _print_located(json_path) -> None:
    """The located levels that are not segmented (C2, T1) and those not found."""
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.locate.heatmaps import SEGMENTED_LEVELS

    located = load_dataset(json_path).images[0].extra["located_levels"]
    named = [label for label, level in located.items()
             if level["found"] and label not in SEGMENTED_LEVELS]
    missing = [label for label, level in located.items() if not level["found"]]
    if named:
        print(f"  also found, not segmented: {', '.join(named)}")
    if missing:
        print(f"  not found (missing, not guessed): {', '.join(missing)}")


EXPORT = Command(
    "export",
    "Export a trained model as a TF Serving SavedModel and TFLite models, checking parity.",
    "vertseg-tf export runs/demo --out models/vertseg --version 1\n"
    "vertseg-tf export runs/demo/model.keras --out models/vertseg --version 2 --tflite int8\n"
    "vertseg-tf export --model pretrained --out models/vertseg --version 3",
    _export_arguments,
    _export,
)

SEGMENT = Command(
    "segment",
    "Segment the vertebrae of a radiograph from clicked centres or, without --centers, from the "
    "centres the locator finds; write a dataset and overlay.",
    "vertseg-tf segment scan.png --out runs/scan_auto --review\n"
    'vertseg-tf segment scan.png --centers "412,380;418,452;421,520" --out runs/scan_seg\n'
    'vertseg-tf segment scan.png --centers "412,380;418,452;421,520" '
    "--model models/vertseg/1 --out runs/scan_seg --labels C3,C4,C5",
    _segment_arguments,
    _segment,
)

COMMANDS = (EXPORT, SEGMENT)
