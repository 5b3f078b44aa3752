"""Measurements of dataset records, and the one reader and writer of `measurements.csv`.

`measurements.csv` has one row per measured vertebra; the segment to the vertebra below and
the column's C3-C7 angles are repeated on each row of the image, so the file is one table
(`CSV_COLUMNS`). Lengths are in the row's `unit`.

Where the facing comes from, in order: the image record's `facing` key, its
`synthetic.facing` (generator v1), the caller's `facing`, else it is detected
(`six_points.detect_facing`). The
generator's true six points are read from each vertebra's `truth.six_points` (or
`synthetic.truth.six_points`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import write_text_atomic
from vertseg_tf.data.dataset import DATASET_FILE, Dataset, ImageRecord
from vertseg_tf.errors import DataError
from vertseg_tf.morphometry.column import ColumnMeasurement, measure_column
from vertseg_tf.morphometry.six_points import FACINGS, POINT_NAMES, check_outline

__all__ = [
    "CSV_COLUMNS",
    "MEASUREMENTS_CSV",
    "measure_dataset",
    "measure_record",
    "measurement_rows",
    "measurements_csv_text",
    "read_measurements_csv",
    "stored_facing",
    "truth_column",
    "truth_of",
    "write_measurements_csv",
]

MEASUREMENTS_CSV = "measurements.csv"
_VERTEBRA_FIELDS = (
    "ha", "hm", "hp", "ha_hp", "hm_hp", "ha_vs_neighbours", "hm_vs_neighbours",
    "hp_vs_neighbours", "height_loss", "genant_grade", "fracture_type",
    "superior_endplate_deg", "inferior_endplate_deg", "wedge_angle_deg", "posterior_wall_deg",
)
_SEGMENT_FIELDS = ("segmental_angle_deg", "posterior_tangent_deg", "listhesis", "over_limit")
CSV_COLUMNS = (
    "image_id", "label", "unit", "facing", *_VERTEBRA_FIELDS,
    "segment_below", *(f"{name}_below" for name in _SEGMENT_FIELDS),
    "lordosis_c3_c7_deg", "posterior_tangent_c3_c7_deg",
)


def stored_facing(record: ImageRecord) -> str | None:
    """The record's stored facing ("left" / "right"), or None."""
    for facing in (record.extra.get("facing"), record.extra.get("synthetic", {}).get("facing")):
        if facing in FACINGS:
            return facing
    return None


def _where(source, index: int | None) -> str:
    return str(source) if index is None else f"images[{index}]"


def measure_record(
    record: ImageRecord, facing: str | None = None, source=DATASET_FILE,
    index: int | None = None, strict: bool = True,
) -> ColumnMeasurement:
    """Measure the annotated outlines of one image record.

    Args:
        record: the image record (contours and centres in image pixels).
        facing: the facing when the record stores none; None detects it then. A stored
            facing always wins.
        source: the file named in errors.
        index: the record's index in the dataset, named in errors.
        strict: raise at a bad outline; otherwise leave that vertebra out and keep the
            problem in the column's `errors` (keyed by the field, e.g.
            `images[3].vertebrae[1].contour`).

    Raises:
        DataError: with `strict`, a bad outline (too few points, NaN, self-intersecting),
            naming `source` and `images[index].vertebrae[j].contour`.
    """
    prefix = f"images[{record.id if index is None else index}]"
    problems, kept = {}, []
    for j, vertebra in enumerate(record.vertebrae):
        field = f"{prefix}.vertebrae[{j}].contour"
        try:
            check_outline(vertebra.contour)
        except DataError as error:
            if strict:
                raise DataError(source, error.problem, field=field) from None
            problems[field] = error.problem
            continue
        kept.append(vertebra)
    source_of_facing = "given"
    if stored_facing(record) is not None:
        facing, source_of_facing = stored_facing(record), "stored"
    column = measure_column(
        [v.label for v in kept], outlines=[v.contour for v in kept],
        centres=np.array([v.center for v in kept]).reshape(-1, 2),
        spacing=record.pixel_spacing_mm, facing=facing, facing_source=source_of_facing,
    )
    column.errors.update(problems)
    return column


def truth_of(vertebra) -> dict | None:
    """The generator's `truth` block of a vertebra record, or None."""
    truth = vertebra.extra.get("truth", vertebra.extra.get("synthetic", {}).get("truth"))
    return truth if isinstance(truth, dict) else None


def truth_column(record: ImageRecord, source=DATASET_FILE) -> ColumnMeasurement | None:
    """The read-outs computed from the generator's true six points (None without them).

    Raises:
        DataError: a truth block without all six points, naming the field.
    """
    labels, points = [], []
    for j, vertebra in enumerate(record.vertebrae):
        truth = truth_of(vertebra)
        if truth is None:
            return None
        six = truth.get("six_points", {})
        missing = [name for name in POINT_NAMES if name not in six]
        if missing:
            raise DataError(source, f"missing {', '.join(missing)}",
                            field=f"images[{record.id}].vertebrae[{j}].truth.six_points")
        labels.append(vertebra.label)
        points.append(np.array([six[name] for name in POINT_NAMES], dtype=np.float64))
    facing = stored_facing(record)
    if facing is None:
        raise DataError(source, "truth six points without a stored facing",
                        field=f"images[{record.id}].facing")
    return measure_column(labels, six_points=points, spacing=record.pixel_spacing_mm,
                          facing=facing, facing_source="stored")


def measure_dataset(
    dataset: Dataset,
    split: str | None = None,
    facing: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    strict: bool = True,
) -> list[tuple[ImageRecord, ColumnMeasurement]]:
    """Measure the ground-truth outlines of every image (of one split) of a dataset.

    Raises:
        DataError: with `strict`, the first bad outline, naming `dataset.json` and the
            field; otherwise bad outlines are left out and listed in each column's `errors`.
    """
    source = DATASET_FILE if dataset.root is None else Path(dataset.root) / DATASET_FILE
    chosen = [(k, r) for k, r in enumerate(dataset.images) if split is None or r.split == split]
    measured = []
    for done, (index, record) in enumerate(chosen, start=1):
        measured.append((record, measure_record(record, facing, source, index, strict)))
        if progress is not None:
            progress(done, len(chosen))
    return measured


def _value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return value


def measurement_rows(image_id: str, column: ColumnMeasurement) -> list[dict]:
    """The `CSV_COLUMNS` rows of one image (values as written, before formatting)."""
    below = {segment.upper: segment for segment in column.segments}
    rows = []
    for vertebra in column.vertebrae:
        row = {"image_id": image_id, "label": vertebra.label, "unit": column.unit,
               "facing": column.facing}
        row.update({name: getattr(vertebra, name) for name in _VERTEBRA_FIELDS})
        segment = below.get(vertebra.label)
        row["segment_below"] = f"{segment.upper}-{segment.lower}" if segment else None
        for name in _SEGMENT_FIELDS:
            row[f"{name}_below"] = getattr(segment, name) if segment else None
        row["lordosis_c3_c7_deg"] = column.lordosis_c3_c7_deg
        row["posterior_tangent_c3_c7_deg"] = column.posterior_tangent_c3_c7_deg
        rows.append(row)
    return rows


def measurements_csv_text(rows: Iterable[dict]) -> str:
    """`measurement_rows` output as the text of `measurements.csv` (floats to 4 decimals)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _value(row.get(key)) for key in CSV_COLUMNS})
    return buffer.getvalue()


def write_measurements_csv(rows: Iterable[dict], path) -> Path:
    """Write `measurement_rows` output as CSV atomically (floats to 4 decimals)."""
    return write_text_atomic(measurements_csv_text(rows), path)


def read_measurements_csv(path) -> list[dict]:
    """Read a `measurements.csv`: numbers as float (grade as int), empty cells as None."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise DataError(path, f"cannot read ({error.strerror})") from None
    text = {"image_id", "label", "unit", "facing", "fracture_type", "segment_below"}
    parsed = []
    for row in rows:
        out = {}
        for key, value in row.items():
            if value == "":
                out[key] = None
            elif key in text:
                out[key] = value
            elif key == "over_limit_below":
                out[key] = value == "True"
            elif key == "genant_grade":
                out[key] = int(value)
            else:
                out[key] = float(value)
        parsed.append(out)
    return parsed
