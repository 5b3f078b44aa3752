"""Morphometry of a segmented radiograph: read-outs from the predicted outlines, and their
drawing on the overlay (the six points, the three heights, the Genant grade when above 0)."""

from __future__ import annotations

import numpy as np

from vertseg_tf.morphometry import ColumnMeasurement, measure_column
from vertseg_tf.morphometry.records import (
    MEASUREMENTS_CSV,
    measurement_rows,
    write_measurements_csv,
)

__all__ = ["MEASUREMENTS_CSV", "draw_measurements", "measure_segmentation",
           "write_segmentation_measurements"]

_POINTS = (255, 80, 255)
_FRACTURED = (60, 60, 255)


def measure_segmentation(results, spacing=None, facing: str | None = None) -> ColumnMeasurement:
    """The read-outs of the non-empty predicted outlines of one radiograph.

    Args:
        results: the `VertebraSegmentation` list of `Segmenter.segment`, top to bottom.
        spacing: (row_mm, col_mm), or None (lengths in px).
        facing: "left" or "right"; None detects it from the outlines and centres.

    Returns:
        The `ColumnMeasurement`; an outline that cannot be measured is listed in `errors`.
    """
    kept = [result for result in results if len(result.contour)]
    return measure_column(
        [result.label for result in kept],
        outlines=[result.contour for result in kept],
        centres=np.array([result.center for result in kept]).reshape(-1, 2),
        spacing=spacing,
        facing=facing,
    )


def write_segmentation_measurements(folder, image_id: str, column: ColumnMeasurement):
    """Write `measurements.csv` of one segmented image into `folder`."""
    return write_measurements_csv(measurement_rows(image_id, column), folder / MEASUREMENTS_CSV)


def draw_measurements(canvas: np.ndarray, column: ColumnMeasurement, thickness: int) -> None:
    """Draw the six points and the Ha, Hm, Hp lines of every measured vertebra on a BGR
    canvas, with the heights (and "grade N TYPE" in red when the grade is above 0)."""
    import cv2

    for vertebra in column.vertebrae:
        points = np.round(vertebra.six_points * 16).astype(np.int32)
        fractured = vertebra.genant_grade > 0
        for top, bottom in zip(points[:3], points[3:]):
            cv2.line(canvas, tuple(top), tuple(bottom), _FRACTURED if fractured else _POINTS,
                     1, cv2.LINE_AA, 4)
        for point in points:
            cv2.circle(canvas, tuple(point), 16 * (thickness + 1), _POINTS, -1, cv2.LINE_AA, 4)
        lines = [f"{vertebra.ha:.1f}/{vertebra.hm:.1f}/{vertebra.hp:.1f} {column.unit}"]
        if fractured:
            lines.append(f"grade {vertebra.genant_grade} {vertebra.fracture_type}")
        right = vertebra.six_points[:, 0].max() + 6 * thickness
        top = vertebra.six_points[:, 1].min() + 10 * thickness
        for k, text in enumerate(lines):
            origin = (int(right), int(top + 12 * thickness * k))
            cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.35 * thickness,
                        _FRACTURED if k else _POINTS, thickness, cv2.LINE_AA)
