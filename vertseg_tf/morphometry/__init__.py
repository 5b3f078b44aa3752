"""Clinical read-outs from vertebral-body outlines: six-point morphometry, Genant grade and
type, endplate and segmental angles, C3-C7 lordosis, posterior tangents, listhesis.

numpy only. The method and its references are in docs/morphometry.md.

Example:
    >>> from vertseg_tf.morphometry import measure_column
    >>> column = measure_column(["C3", "C4"], outlines=[c3, c4], centres=centres,
    ...                         spacing=(0.14, 0.14), facing="left")  # doctest: +SKIP
    >>> column.vertebra("C3").genant_grade  # doctest: +SKIP
    0
"""

from vertseg_tf.morphometry.column import (
    ColumnMeasurement,
    SegmentMeasurement,
    VertebraMeasurement,
    measure_column,
    neighbour_indices,
)
from vertseg_tf.morphometry.readouts import (
    FRACTURE_TYPES,
    GENANT_THRESHOLDS,
    LISTHESIS_LIMIT_MM,
    genant,
    genant_grade,
    heights,
    listhesis,
)
from vertseg_tf.morphometry.six_points import (
    POINT_NAMES,
    STATIONS,
    check_outline,
    detect_facing,
    place_six_points,
    to_canonical,
)

__all__ = [
    "FRACTURE_TYPES",
    "GENANT_THRESHOLDS",
    "LISTHESIS_LIMIT_MM",
    "POINT_NAMES",
    "STATIONS",
    "ColumnMeasurement",
    "SegmentMeasurement",
    "VertebraMeasurement",
    "check_outline",
    "detect_facing",
    "genant",
    "genant_grade",
    "heights",
    "listhesis",
    "measure_column",
    "neighbour_indices",
    "place_six_points",
    "to_canonical",
]
