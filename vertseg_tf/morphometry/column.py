"""Read-outs of a whole column: every body, the segments between neighbours, C3-C7 lordosis.

`measure_column` takes outlines (or six points) in image pixels with the pixel spacing and
the facing, places the six points, and returns a `ColumnMeasurement` whose `to_dict` is the
`measurements` block written into `dataset.json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from vertseg_tf.errors import DataError
from vertseg_tf.morphometry.readouts import (
    LISTHESIS_LIMIT_MM,
    angle_difference,
    body_readout,
    genant,
    listhesis,
)
from vertseg_tf.morphometry.six_points import (
    POINT_NAMES,
    detect_facing,
    from_canonical,
    place_six_points,
    posterior_wall_direction,
    spine_axes,
    to_canonical,
)

__all__ = [
    "ColumnMeasurement",
    "SegmentMeasurement",
    "VertebraMeasurement",
    "measure_column",
    "neighbour_indices",
]

_LEVELS = tuple(f"C{i}" for i in range(1, 8)) + tuple(f"T{i}" for i in range(1, 13)) + tuple(
    f"L{i}" for i in range(1, 6)
)


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


@dataclass
class VertebraMeasurement:
    """The read-outs of one vertebra. Lengths in `unit` ("mm", or "px" without a spacing).

    Args:
        label: its level.
        six_points: (6, 2) six points in image pixels, `POINT_NAMES` order.
        ha, hm, hp: anterior, middle and posterior heights.
        ha_hp, hm_hp: Ha/Hp and Hm/Hp.
        ha_vs_neighbours, hm_vs_neighbours, hp_vs_neighbours: each height over the mean of
            the same height of the neighbouring levels (None without a neighbour).
        height_loss, genant_grade, fracture_type: see `readouts.genant`.
        superior_endplate_deg, inferior_endplate_deg, wedge_angle_deg, posterior_wall_deg:
            see `readouts.BodyReadout`.
    """

    label: str
    six_points: np.ndarray
    unit: str
    ha: float
    hm: float
    hp: float
    ha_hp: float
    hm_hp: float
    ha_vs_neighbours: float | None
    hm_vs_neighbours: float | None
    hp_vs_neighbours: float | None
    height_loss: float
    genant_grade: int
    fracture_type: str
    superior_endplate_deg: float
    inferior_endplate_deg: float
    wedge_angle_deg: float
    posterior_wall_deg: float

    def to_dict(self) -> dict:
        out = {key: _round(value) if isinstance(value, float) else value
               for key, value in asdict(self).items() if key != "six_points"}
        out["six_points"] = {name: [round(float(x), 3), round(float(y), 3)]
                             for name, (x, y) in zip(POINT_NAMES, self.six_points)}
        return out


@dataclass
class SegmentMeasurement:
    """The motion segment between a vertebra and the one below it.

    Args:
        upper, lower: the two levels.
        segmental_angle_deg: Cobb angle between the two inferior endplates (Harrison),
            lordosis positive.
        posterior_tangent_deg: angle between the two posterior walls, lordosis positive.
        listhesis: translation of the upper body over the lower one along the lower
            superior endplate, in the column's unit; anterolisthesis positive.
        over_limit: |listhesis| > `LISTHESIS_LIMIT_MM` (None when the unit is px).
    """

    upper: str
    lower: str
    segmental_angle_deg: float
    posterior_tangent_deg: float
    listhesis: float
    over_limit: bool | None

    def to_dict(self) -> dict:
        return {key: _round(value) if isinstance(value, float) else value
                for key, value in asdict(self).items()}


@dataclass
class ColumnMeasurement:
    """The read-outs of one radiograph's column.

    Args:
        facing: "left" or "right".
        facing_source: "stored" (from the record), "given" (by the caller) or
            "detected (score S)" (`six_points.detect_facing`; |S| is the confidence).
        unit: "mm" or "px".
        vertebrae: one `VertebraMeasurement` per measured body, top to bottom.
        segments: one `SegmentMeasurement` per pair of adjacent levels both measured.
        lordosis_c3_c7_deg: Cobb angle between the C3 superior and C7 inferior endplates
            (None unless both are measured).
        posterior_tangent_c3_c7_deg: angle between the C3 and C7 posterior walls.
        errors: label -> why that vertebra could not be measured.
    """

    facing: str
    facing_source: str
    unit: str
    vertebrae: list[VertebraMeasurement] = field(default_factory=list)
    segments: list[SegmentMeasurement] = field(default_factory=list)
    lordosis_c3_c7_deg: float | None = None
    posterior_tangent_c3_c7_deg: float | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def vertebra(self, label: str) -> VertebraMeasurement | None:
        return next((v for v in self.vertebrae if v.label == label), None)

    def column_dict(self) -> dict:
        """The per-column block (no per-vertebra entries)."""
        return {
            "facing": self.facing,
            "facing_source": self.facing_source,
            "unit": self.unit,
            "lordosis_c3_c7_deg": _round(self.lordosis_c3_c7_deg),
            "posterior_tangent_c3_c7_deg": _round(self.posterior_tangent_c3_c7_deg),
            "listhesis_limit_mm": LISTHESIS_LIMIT_MM,
            "segments": [segment.to_dict() for segment in self.segments],
            **({"errors": dict(self.errors)} if self.errors else {}),
        }

    def to_dict(self) -> dict:
        return {**self.column_dict(), "vertebrae": [v.to_dict() for v in self.vertebrae]}


def neighbour_indices(labels: Sequence[str]) -> list[list[int]]:
    """For each entry, the entries directly above and below it: adjacent in the list and,
    when both labels are spine levels, adjacent levels (C4 is no neighbour of C6)."""

    def adjacent(a: str, b: str) -> bool:
        if a in _LEVELS and b in _LEVELS:
            return abs(_LEVELS.index(a) - _LEVELS.index(b)) == 1
        return True

    result = []
    for k, label in enumerate(labels):
        result.append([j for j in (k - 1, k + 1)
                       if 0 <= j < len(labels) and adjacent(label, labels[j])])
    return result


def _ratio(value: float, others: list[float]) -> float | None:
    return value / float(np.mean(others)) if others else None


def _vertebrae(labels, canonical_points, walls, spacing, facing, unit):
    readouts = [body_readout(points, wall) for points, wall in zip(canonical_points, walls)]
    measured = []
    for k, (label, readout) in enumerate(zip(labels, readouts)):
        near = [readouts[j] for j in neighbour_indices(labels)[k]]
        hp_reference = float(np.mean([r.hp for r in near])) if near else None
        loss, grade, kind = genant(readout.ha, readout.hm, readout.hp, hp_reference)
        measured.append(VertebraMeasurement(
            label=label,
            six_points=from_canonical(canonical_points[k], spacing, facing),
            unit=unit,
            ha=readout.ha, hm=readout.hm, hp=readout.hp,
            ha_hp=readout.ha / readout.hp, hm_hp=readout.hm / readout.hp,
            ha_vs_neighbours=_ratio(readout.ha, [r.ha for r in near]),
            hm_vs_neighbours=_ratio(readout.hm, [r.hm for r in near]),
            hp_vs_neighbours=_ratio(readout.hp, [r.hp for r in near]),
            height_loss=loss, genant_grade=grade, fracture_type=kind,
            superior_endplate_deg=readout.superior_endplate_deg,
            inferior_endplate_deg=readout.inferior_endplate_deg,
            wedge_angle_deg=readout.wedge_angle_deg,
            posterior_wall_deg=readout.posterior_wall_deg,
        ))
    return measured


def _segments(labels, canonical_points, vertebrae, unit):
    segments = []
    for k in range(len(labels) - 1):
        if k + 1 not in neighbour_indices(labels)[k]:
            continue
        upper, lower = vertebrae[k], vertebrae[k + 1]
        shift = listhesis(canonical_points[k], canonical_points[k + 1])
        segments.append(SegmentMeasurement(
            upper=upper.label,
            lower=lower.label,
            segmental_angle_deg=angle_difference(upper.inferior_endplate_deg,
                                                 lower.inferior_endplate_deg),
            posterior_tangent_deg=angle_difference(upper.posterior_wall_deg,
                                                   lower.posterior_wall_deg),
            listhesis=shift,
            over_limit=abs(shift) > LISTHESIS_LIMIT_MM if unit == "mm" else None,
        ))
    return segments


def _place(outlines, centres, labels, spacing, facing):
    """Canonical six points and posterior walls of every usable outline; errors by label."""
    canonical = [to_canonical(outline, spacing, facing) for outline in outlines]
    axes = spine_axes(to_canonical(centres, spacing, facing)) if centres is not None else (
        np.full((len(outlines), 2), np.nan))
    kept, points, walls, errors = [], [], [], {}
    for k, (label, outline) in enumerate(zip(labels, canonical)):
        try:
            down = axes[k] if np.isfinite(axes[k]).all() else None
            six = place_six_points(outline, down)
        except DataError as error:
            errors[label] = error.problem
            continue
        kept.append(k)
        points.append(six)
        walls.append(posterior_wall_direction(outline, six))
    return kept, points, walls, errors


def measure_column(
    labels: Sequence[str],
    *,
    outlines: Sequence[np.ndarray] | None = None,
    six_points: Sequence[np.ndarray] | None = None,
    centres=None,
    spacing=None,
    facing: str | None = None,
    facing_source: str = "given",
) -> ColumnMeasurement:
    """Measure a column, top to bottom, from body outlines or from given six points.

    Args:
        labels: the levels, top to bottom.
        outlines: one (K, 2) outline per level in image pixels; the six points are placed
            (`six_points.place_six_points`, started from the spine axis of `centres`).
        six_points: instead of outlines, one (6, 2) array per level in image pixels
            (`POINT_NAMES` order), e.g. the generator's true points; the posterior wall is
            then the superior-posterior -> inferior-posterior line.
        centres: (N, 2) centres in image pixels: the spine axis, and the facing cue.
        spacing: (row_mm, col_mm), or None: lengths in px.
        facing: "left" or "right"; None detects it (`six_points.detect_facing`).
        facing_source: how `facing` is known, recorded as given ("stored", "given").

    Returns:
        The `ColumnMeasurement`. An outline that cannot be measured (too few points,
        self-intersecting, NaN) is left out and its reason kept in `errors`; raise on it
        with `check_outline` first where one bad outline must stop the work.

    Raises:
        DataError: neither or both of `outlines` and `six_points`, counts that differ, a bad
            spacing or facing, six points that are not (6, 2) finite numbers.
    """
    if (outlines is None) == (six_points is None):
        raise DataError("measure_column", "give either outlines or six_points")
    given = list(outlines if outlines is not None else six_points)
    labels = list(labels)
    if len(given) != len(labels):
        raise DataError("measure_column", f"{len(given)} outlines for {len(labels)} labels")
    if facing is None:
        if centres is None or outlines is None:
            raise DataError("facing", "needed: no centres and outlines to detect it from")
        checked = [np.asarray(outline, dtype=np.float64) for outline in given]
        facing, score = detect_facing(checked, centres)
        facing_source = f"detected (score {score:+.2f})"
    unit = "px" if spacing is None else "mm"
    if outlines is not None:
        kept, points, walls, errors = _place(given, centres, labels, spacing, facing)
    else:
        points = []
        for label, six in zip(labels, given):
            six = np.asarray(six, dtype=np.float64)
            if six.shape != (6, 2) or not np.isfinite(six).all():
                raise DataError("six_points", f"must be 6 finite [x, y] points, got {six.shape}",
                                field=label)
            points.append(to_canonical(six, spacing, facing))
        kept, walls, errors = list(range(len(labels))), [None] * len(labels), {}
    kept_labels = [labels[k] for k in kept]
    vertebrae = _vertebrae(kept_labels, points, walls, spacing, facing, unit)
    column = ColumnMeasurement(facing, facing_source, unit, vertebrae,
                               _segments(kept_labels, points, vertebrae, unit), errors=errors)
    c3, c7 = column.vertebra("C3"), column.vertebra("C7")
    if c3 is not None and c7 is not None:
        column.lordosis_c3_c7_deg = angle_difference(c3.superior_endplate_deg,
                                                     c7.inferior_endplate_deg)
        column.posterior_tangent_c3_c7_deg = angle_difference(c3.posterior_wall_deg,
                                                              c7.posterior_wall_deg)
    return column

