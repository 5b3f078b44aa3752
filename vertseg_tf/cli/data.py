"""Dataset commands: `validate`, `import`, `synth`, `patches`."""

from __future__ import annotations

import argparse

from vertseg_tf.cli.common import Command, add_workers_argument, cli_progress
from vertseg_tf.data.import_formats import IMPORT_FORMATS
from vertseg_tf.data.options import PIXEL_ORIGINS, SPLITS
from vertseg_tf.data.synthetic.options import (
    FACINGS,
    GENERATOR_VERSION,
    GENERATOR_VERSIONS,
    IMAGE_FORMATS,
    IMAGE_SIZES,
)
from vertseg_tf.errors import ConfigError

__all__ = ["COMMANDS"]


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DIR", help="dataset folder holding dataset.json")
    parser.add_argument("--strict", action="store_true", help="stop at the first error")


def _validate(args) -> int:
    from vertseg_tf.data.dataset import validate_dataset

    problems = validate_dataset(
        args.dataset, strict=args.strict, progress=cli_progress("validate")
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
        help="labelme: a Labelme JSON file or a folder of them; coco: the COCO JSON file; "
        "aasce: the folder holding data/ and labels/; corners-csv: a folder of <name>.csv "
        "files beside their images (or of train/val/test subfolders of them)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="new dataset folder (must not exist or be empty, unless --overwrite)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace DIR when it exists and is not empty"
    )
    parser.add_argument(
        "--split",
        default=None,
        choices=SPLITS,
        help="split of every imported image (default: train; aasce and split subfolders of "
        "corners-csv take the split from the source)",
    )
    parser.add_argument(
        "--first-level",
        default=None,
        metavar="LEVEL",
        help="corners-csv: level of the first two rows when the labels are not levels "
        "(default: L1)",
    )
    parser.add_argument(
        "--link",
        action="store_true",
        help="hard-link the images instead of copying them (copied across file systems)",
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


def _import(args) -> int:
    from vertseg_tf.data.import_formats import import_dataset

    options = {
        "link": args.link,
        "pixel_origin": args.pixel_origin,
        "progress": cli_progress("import"),
        "overwrite": args.overwrite,
    }
    if args.source_format == "aasce":
        if args.split is not None:
            raise ConfigError("--split does not apply to --from aasce: its folders give the split")
    else:
        options["split"] = args.split or "train"
    if args.first_level is not None:
        if args.source_format != "corners-csv":
            raise ConfigError("--first-level applies to --from corners-csv only")
        options["first_level"] = args.first_level
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
    parser.add_argument("--out", required=True,
                        help="output folder (must be absent or empty, unless --overwrite)")
    parser.add_argument("--images", type=int, default=24, help="number of images (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", choices=IMAGE_SIZES, default="full",
                        help="full: 1500-2500 px; small: about 512 px (default full)")
    parser.add_argument("--format", dest="image_format", choices=tuple(IMAGE_FORMATS),
                        default="png",
                        help="16-bit PNG or DICOM (default png)")
    parser.add_argument("--hard-fraction", type=float, default=0.2,
                        help="share of images with at least one condition (default 0.2)")
    parser.add_argument("--hard-share", type=float, default=None, metavar="SHARE",
                        help="generator v2: exact share of hard vertebrae in the test split "
                             "(e.g. 0.5); --hard-fraction then rules the training images only")
    parser.add_argument("--facing", choices=FACINGS, default=None,
                        help="side the patient faces (default: random, 50/50, for generator v2; "
                             "left for v1)")
    parser.add_argument("--generator-version", type=int, choices=GENERATOR_VERSIONS,
                        default=GENERATOR_VERSION,
                        help="2: the realistic generator (default); 1: the first one, unchanged, "
                             "to reproduce earlier results")
    parser.add_argument("--preview", action="store_true",
                        help="also write preview.png, a contact sheet of up to 12 images")
    parser.add_argument("--preview-tile", type=int, default=None, metavar="WIDTH",
                        help="preview tile width in pixels (default 420; smaller = smaller file)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out when it exists and is not empty")


def _synth(args: argparse.Namespace) -> int:
    from vertseg_tf.data.synthetic import generate

    dataset = generate(
        args.images, args.seed, args.out, size=args.size, image_format=args.image_format,
        hard_fraction=args.hard_fraction, facing=args.facing, hard_share=args.hard_share,
        version=args.generator_version, preview=args.preview, preview_width=args.preview_tile,
        progress=cli_progress("synth"), overwrite=args.overwrite,
    )
    hard = sum(any(v.is_hard for v in im.vertebrae) for im in dataset.images)
    hard_test = sum(v.is_hard for im in dataset.split("test") for v in im.vertebrae)
    print(f"wrote {len(dataset.images)} images ({len(dataset.split('train'))} train, "
          f"{len(dataset.split('test'))} test, {hard} with conditions, {hard_test} hard test "
          f"vertebrae) to {dataset.root}")
    return 0


def _patches_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="native dataset folder")
    parser.add_argument("--split", required=True, choices=SPLITS)
    parser.add_argument(
        "--augment", action="store_true", help="45 patches per vertebra (5 scales x 9 angles)"
    )
    parser.add_argument("--sheet", metavar="FILE.png", help="write a contact sheet of patches")
    parser.add_argument("--count", type=int, default=25, help="patches on the sheet (25)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sheet's choice (0)")
    parser.add_argument(
        "--cache-dir", help="patch cache folder ($VERTSEG_TF_CACHE/patches or ~/.cache/...)"
    )
    add_workers_argument(parser)


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
        progress=cli_progress(f"patches {args.split}"),
        workers=args.workers,
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


VALIDATE = Command(
    "validate",
    "Check a native dataset: every problem as one line 'SEVERITY: FILE: FIELD: PROBLEM'.",
    "vertseg-tf validate runs/synthetic\nvertseg-tf validate my_dataset --strict",
    _validate_arguments,
    _validate,
)

IMPORT = Command(
    "import",
    "Convert Labelme or COCO (CVAT) outlines, or the corners of AASCE 2019 / BUU-LSPINE, into a "
    "native dataset folder.",
    "vertseg-tf import --from labelme labelme_project/ --out my_dataset --split train\n"
    "vertseg-tf import --from aasce boostnet_labeldata/ --out aasce\n"
    "vertseg-tf import --from corners-csv BUU-LSPINE/LA --out buu_lateral --split test\n"
    "vertseg-tf import --from coco export/annotations/instances_default.json \\\n"
    "    --out my_dataset --link",
    _import_arguments,
    _import,
)

SYNTH = Command(
    "synth",
    "Generate a synthetic dataset of lateral cervical radiographs with C3-C7 annotated.",
    "vertseg-tf synth --out runs/synthetic --images 12 --seed 0 --size small --preview\n"
    "vertseg-tf synth --out runs/v1 --images 40 --size small --generator-version 1\n"
    "vertseg-tf synth --out runs/hard --images 40 --size small --hard-share 0.5",
    _synth_arguments,
    _synth,
)

PATCHES = Command(
    "patches",
    "Cut (or load from the cache) the vertebra patches of a dataset split.",
    "vertseg-tf patches --dataset runs/synthetic --split train --augment --sheet sheet.png",
    _patches_arguments,
    _patches,
)

COMMANDS = (VALIDATE, IMPORT, SYNTH, PATCHES)
