"""`vertseg-tf measure`: clinical read-outs of a dataset's ground-truth outlines, and their
validation against the synthetic generator's truth (`--validate`, optionally end to end with
a model's outlines)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vertseg_tf.cli.common import Command, cli_progress, command_line

__all__ = ["COMMANDS", "MEASURE", "column_lines", "print_stored_measurements"]

MEASUREMENTS_JSON = "measurements.json"
VALIDATION_JSON = "validation.json"
VALIDATION_MD = "validation.md"


def _number(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def column_lines(column: dict) -> list[str]:
    """Printable lines of a column's measurements (`ColumnMeasurement.to_dict()` form)."""
    unit = column["unit"]
    lines = []
    for v in column["vertebrae"]:
        grade = (f"grade {v['genant_grade']} {v['fracture_type']} "
                 f"(height loss {100 * v['height_loss']:.0f} %)" if v["genant_grade"] else
                 "grade 0")
        lines.append(f"  {v['label']}: Ha {v['ha']:.1f} Hm {v['hm']:.1f} Hp {v['hp']:.1f} {unit}, "
                     f"Ha/Hp {v['ha_hp']:.2f} Hm/Hp {v['hm_hp']:.2f}, "
                     f"wedge {v['wedge_angle_deg']:.1f} deg, {grade}")
    for s in column["segments"]:
        flag = " (over 3.5 mm)" if s["over_limit"] else ""
        lines.append(f"  {s['upper']}-{s['lower']}: segmental {s['segmental_angle_deg']:.1f} deg, "
                     f"posterior tangent {s['posterior_tangent_deg']:.1f} deg, "
                     f"listhesis {s['listhesis']:+.1f} {unit}{flag}")
    lines.append(f"  C3-C7 lordosis (Cobb) {_number(column['lordosis_c3_c7_deg'])} deg, "
                 f"posterior tangent {_number(column['posterior_tangent_c3_c7_deg'])} deg; "
                 f"facing {column['facing']} ({column['facing_source']})")
    for where, problem in column.get("errors", {}).items():
        lines.append(f"  {where}: not measured: {problem}")
    return lines


def print_stored_measurements(json_path) -> None:
    """Print the measurements `vertseg-tf segment` stored in its dataset.json."""
    (image,) = json.loads(Path(json_path).read_text(encoding="utf-8"))["images"]
    column = {**image["measurements"],
              "vertebrae": [v["measurements"] for v in image["vertebrae"] if "measurements" in v]}
    print("measurements:")
    for line in column_lines(column):
        print(line)


def _measure_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DATASET", help="native dataset folder")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="new folder for measurements.csv and measurements.json "
                             "(must not exist or be empty)")
    parser.add_argument("--split", help="measure only this split (default: all; with "
                                        "--validate: test)")
    parser.add_argument("--facing", choices=("left", "right"),
                        help="side the patient faces on images that store no facing "
                             "(default: detected per image; a stored facing always wins)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad outline")
    parser.add_argument("--validate", action="store_true",
                        help="compare with the generator's true six points (synthetic v2 "
                             "data); writes validation.json and validation.md")
    parser.add_argument("--model", help="with --validate: also measure this model's outlines, "
                                        "segmented from the stored centres (end to end)")


def _model_columns(model, dataset, records, facings):
    from vertseg_tf.data.images import read_image
    from vertseg_tf.deploy.inference import Segmenter
    from vertseg_tf.deploy.measurements import measure_segmentation

    segmenter = Segmenter(model)
    progress = cli_progress("measure model outlines")
    columns = []
    for done, (record, facing) in enumerate(zip(records, facings), start=1):
        image, _ = read_image(dataset.image_path(record))
        results = segmenter.segment(image, [v.center for v in record.vertebrae],
                                    [v.label for v in record.vertebrae])
        columns.append(measure_segmentation(results, record.pixel_spacing_mm, facing))
        progress(done, len(records))
    return columns


def _validation(dataset, measured, model) -> dict:
    from vertseg_tf.evaluation.morphometry import compare_columns, slip_agreement, summarise
    from vertseg_tf.morphometry import detect_facing, genant_grade
    from vertseg_tf.morphometry.records import stored_facing, truth_column, truth_of

    truths = [truth_column(record, Path(dataset.root) / "dataset.json")
              for record, _ in measured]
    if any(truth is None for truth in truths):
        from vertseg_tf.errors import DataError

        raise DataError(Path(dataset.root) / "dataset.json",
                        "--validate needs the generator's truth six points on every vertebra "
                        "(synthetic data v2: vertseg-tf synth)", field="vertebrae[].truth")
    records = [record for record, _ in measured]
    sources = {"ground-truth outlines": [column for _, column in measured]}
    if model is not None:
        sources["model outlines"] = _model_columns(model, dataset, records,
                                                   [truth.facing for truth in truths])
    summaries = {name: summarise(compare_columns(zip(truths, columns)))
                 for name, columns in sources.items()}
    detected = [detect_facing([v.contour for v in r.vertebrae], [v.center for v in r.vertebrae])[0]
                == stored_facing(r) for r in records]
    stored_grades = [genant_grade(truth_of(v)["height_loss"]) for r in records for v in r.vertebrae]
    slips = [(truth_of(v).get("listhesis_mm", 0.0), segment.listhesis)
             for r, truth in zip(records, truths)
             for v in r.vertebrae
             for segment in truth.segments if segment.upper == v.label]
    computed = [v.genant_grade for truth in truths for v in truth.vertebrae]
    return {
        "summaries": summaries,
        "facing_detection": {"correct": int(sum(detected)), "images": len(detected)},
        "listhesis_vs_applied_slip": slip_agreement(slips),
        "truth_grade_agreement": {
            "agree": int(sum(a == b for a, b in zip(stored_grades, computed))),
            "vertebrae": len(computed),
            "note": "grade from the generator's stored height_loss vs grade computed from its "
                    "six points",
        },
    }


def _measure(args: argparse.Namespace) -> int:
    from vertseg_tf.atomic import atomic_dir, write_json_atomic, write_text_atomic
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.errors import DataError
    from vertseg_tf.evaluation.morphometry import format_validation_table
    from vertseg_tf.morphometry.records import (
        MEASUREMENTS_CSV,
        measure_dataset,
        measurement_rows,
        write_measurements_csv,
    )

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(out, "output folder exists and is not empty; choose a new folder")
    if args.model and not args.validate:
        raise DataError("--model", "applies with --validate only")
    dataset = load_dataset(args.dataset)
    split = args.split or ("test" if args.validate else None)
    measured = measure_dataset(dataset, split, args.facing, cli_progress("measure"),
                               strict=args.strict)
    if not measured:
        raise DataError(Path(args.dataset) / "dataset.json", f"no image in split {split!r}")
    problems = [(where, problem) for _, column in measured
                for where, problem in column.errors.items()]
    validation = _validation(dataset, measured, args.model) if args.validate else None
    with atomic_dir(out) as building:
        rows = [row for record, column in measured
                for row in measurement_rows(record.id, column)]
        write_measurements_csv(rows, building / MEASUREMENTS_CSV)
        write_json_atomic({"format": "vertseg-measurements/1", "dataset": str(args.dataset),
                           "split": split, "command": command_line(),
                           "images": [{"id": record.id, "measurements": column.to_dict()}
                                      for record, column in measured]},
                          building / MEASUREMENTS_JSON)
        if validation is not None:
            table = format_validation_table(validation["summaries"])
            write_json_atomic({"command": command_line(), **validation},
                              building / VALIDATION_JSON)
            write_text_atomic(f"# Morphometry validation\n\n`{command_line()}`\n\n{table}\n",
                              building / VALIDATION_MD)
    _report(args, measured, problems, validation, out)
    return 1 if problems else 0


def _report(args, measured, problems, validation, out) -> None:
    from vertseg_tf.evaluation.morphometry import format_validation_table

    if len(measured) == 1:
        for line in column_lines(measured[0][1].to_dict()):
            print(line)
    vertebrae = [v for _, column in measured for v in column.vertebrae]
    graded = sum(v.genant_grade > 0 for v in vertebrae)
    print(f"{len(measured)} image(s), {len(vertebrae)} vertebrae measured, {graded} with a "
          f"Genant grade above 0")
    if validation is not None:
        print(format_validation_table(validation["summaries"]))
        facing = validation["facing_detection"]
        print(f"facing detected correctly on {facing['correct']} of {facing['images']} images")
    for where, problem in problems:
        print(f"vertseg-tf measure: error: {args.dataset}/dataset.json: {where}: {problem}",
              file=sys.stderr)
    print(f"wrote {out}")


MEASURE = Command(
    "measure",
    "Clinical read-outs of a dataset's ground-truth outlines: six-point heights, Genant "
    "grade, angles, lordosis, listhesis (CSV and JSON).",
    "vertseg-tf measure my_cohort --out runs/cohort_measurements\n"
    "vertseg-tf measure data/synthetic_v2 --validate --model runs/unet-s --out runs/morpho_val",
    _measure_arguments,
    _measure,
)

COMMANDS = (MEASURE,)
