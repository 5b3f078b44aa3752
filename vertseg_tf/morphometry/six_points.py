"""Six-point placement on a vertebral-body outline, and the facing of a lateral film.

Everything here works in the *canonical frame*: millimetres (pixels when the spacing is
unknown), x towards the patient's back, y down the image. A left-facing film (anterior at
smaller x) is only scaled; a right-facing one is also mirrored (x -> -x), so both facings give
the same numbers. `to_canonical` and `from_canonical` convert image pixels both ways.

Placement (deterministic, no random start, a fixed number of refinements):

1. Body frame: a unit axis `down` (cranio-caudal) and `posterior` = `down` turned by -90
   degrees. The start is the local spine axis when the caller knows it (the neighbouring
   centres, as the patches use), else the principal axis of the outline's area nearer the
   image vertical.
2. The body's depth D is measured wall to wall across its middle: along the line through
   the area centroid in the direction `posterior`, from the first to the last crossing of
   the outline (so corner osteophytes and the anterior-inferior lip do not stretch it). On
   the lines parallel to `down` at `STATIONS` = 10 %, 50 % and 90 % of D from the anterior
   wall, the outline's most superior crossing is the superior point and its most inferior
   crossing the inferior point: anterior, middle and posterior.
3. The frame is re-aimed: `posterior` becomes the mean direction of the two endplates
   (superior-anterior -> superior-posterior and inferior-anterior -> inferior-posterior), and
   step 2 is repeated: `AIMING_STATIONS` lists the refinements, all at the inner stations
   25/50/75 % (robust to a poor start axis, untouched by the lip and corner osteophytes); the
   six points are then placed at `STATIONS` in the last frame.

The 10 % inset keeps the anterior and posterior points on the endplates, off the rounded
corners, the anterior-inferior lip and small corner osteophytes; the synthetic generator
defines its fracture height loss at the same stations.
"""

from __future__ import annotations

import numpy as np

from vertseg_tf.errors import DataError
from vertseg_tf.geometry import (
    line_crossings,
    polygon_area,
    polygon_centroid,
    polygon_is_simple,
    polygon_second_moments,
)

__all__ = [
    "AIMING_STATIONS",
    "FACINGS",
    "FACING_CUE_SCALES",
    "MIN_OUTLINE_POINTS",
    "POINT_NAMES",
    "STATIONS",
    "WALL_TRIM",
    "check_outline",
    "detect_facing",
    "from_canonical",
    "place_six_points",
    "posterior_wall_direction",
    "principal_down_axis",
    "spine_axes",
    "to_canonical",
]

FACINGS = ("left", "right")
STATIONS = (0.1, 0.5, 0.9)
"""Fractions of the body depth, from the anterior extreme, of the anterior, middle and
posterior points."""
AIMING_STATIONS = ((0.25, 0.5, 0.75),) * 4
"""Stations of the frame refinements: inner ones, which stay on the endplates even when the
start axis is 20 degrees off, and which the anterior-inferior lip and corner osteophytes
(outside 20 % of the depth) do not tilt."""
MIN_OUTLINE_POINTS = 4
FACING_CUE_SCALES = (0.03, 0.2)
"""Spread (standard deviation, rounded) of the column's bow over its chord and of the mean lip
offset over 120 synthetic v2 films (seed 11): the units in which `detect_facing` adds them."""
WALL_TRIM = 0.3
"""Share of the posterior height left out at each end when fitting the posterior wall: the
middle 40 % of the wall, clear of the rounded corners."""
POINT_NAMES = (
    "superior_anterior",
    "superior_middle",
    "superior_posterior",
    "inferior_anterior",
    "inferior_middle",
    "inferior_posterior",
)
"""Order of the rows of a (6, 2) six-point array (the generator's key names)."""


def _scale(spacing) -> np.ndarray:
    """(x, y) mm per pixel from a (row_mm, col_mm) spacing; ones without a spacing."""
    if spacing is None:
        return np.ones(2)
    row_mm, col_mm = (float(value) for value in spacing)
    if not (np.isfinite([row_mm, col_mm]).all() and row_mm > 0 and col_mm > 0):
        raise DataError("pixel_spacing_mm", f"must be two positive numbers, got {spacing!r}")
    return np.array([col_mm, row_mm])


def _check_facing(facing: str) -> float:
    if facing not in FACINGS:
        raise DataError("facing", f"must be 'left' or 'right', got {facing!r}")
    return -1.0 if facing == "right" else 1.0


def to_canonical(points_px, spacing=None, facing: str = "left") -> np.ndarray:
    """Image pixels (x, y) -> canonical frame (mm or px; x to posterior, y down).

    Example:
        >>> to_canonical([[10.0, 4.0]], (0.5, 0.25), "right").tolist()
        [[-2.5, 2.0]]
    """
    mirror = _check_facing(facing)
    points = np.asarray(points_px, dtype=np.float64) * _scale(spacing)
    return points * np.array([mirror, 1.0])


def from_canonical(points, spacing=None, facing: str = "left") -> np.ndarray:
    """The inverse of `to_canonical`: canonical frame -> image pixels."""
    mirror = _check_facing(facing)
    points = np.asarray(points, dtype=np.float64) * np.array([mirror, 1.0])
    return points / _scale(spacing)


def check_outline(outline, what: str = "outline") -> np.ndarray:
    """The outline as a (K, 2) float64 array, or a DataError saying what is wrong.

    A usable outline is a finite, simple (not self-intersecting) polygon with at least
    `MIN_OUTLINE_POINTS` distinct vertices, closed implicitly (a repeated first point is
    dropped).

    Raises:
        DataError: naming `what`: wrong shape, NaN or infinite values, too few points, a
            self-intersecting or zero-area outline.
    """
    try:
        points = np.asarray(outline, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(what, "must be a list of [x, y] numbers") from None
    if points.ndim != 2 or points.shape[1:] != (2,):
        raise DataError(what, f"must be (K, 2) points, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise DataError(what, "has NaN or infinite coordinates")
    if len(points) > 1 and np.array_equal(points[0], points[-1]):
        points = points[:-1]
    distinct = len(np.unique(points, axis=0))
    if distinct < MIN_OUTLINE_POINTS:
        raise DataError(what, f"has {distinct} distinct point(s); six-point placement needs "
                              f"at least {MIN_OUTLINE_POINTS}")
    if not polygon_is_simple(points):
        raise DataError(what, "intersects itself (or repeats a vertex); not a body outline")
    if abs(polygon_area(points)) < 1e-9:
        raise DataError(what, "encloses no area")
    return points


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def _posterior_of(down: np.ndarray) -> np.ndarray:
    return np.array([down[1], -down[0]])


def principal_down_axis(outline: np.ndarray) -> np.ndarray:
    """The principal axis of the outline's area nearer the image vertical, pointing down:
    the cranio-caudal start axis when the spine axis is unknown."""
    _, vectors = np.linalg.eigh(polygon_second_moments(outline))
    axis = max(vectors.T, key=lambda vector: abs(vector[1]))
    return axis if axis[1] > 0 else -axis


def _endplate_points(outline, centre, down, posterior, stations=STATIONS) -> np.ndarray:
    walls = line_crossings(outline, centre, posterior)
    if len(walls) < 2:
        raise DataError("outline", "the body's walls cannot be found (the outline does not "
                                   "cross its mid-line)")
    anterior_end, posterior_end = walls[0], walls[-1]
    points = np.empty((6, 2))
    for k, fraction in enumerate(stations):
        origin = centre + (anterior_end + fraction * (posterior_end - anterior_end)) * posterior
        crossings = line_crossings(outline, origin, down)
        if len(crossings) < 2:
            raise DataError("outline", "the endplates cannot be found (the outline does not "
                                       "cross the body's depth stations)")
        points[k] = origin + crossings[0] * down
        points[3 + k] = origin + crossings[-1] * down
    return points


def place_six_points(outline, down=None) -> np.ndarray:
    """The six morphometry points of a body outline given in the canonical frame.

    Args:
        outline: (K, 2) outline in the canonical frame (see `to_canonical`).
        down: (2,) start of the cranio-caudal axis (e.g. the spine axis from neighbouring
            centres); default: `principal_down_axis`.

    Returns:
        (6, 2) points in `POINT_NAMES` order, canonical frame.

    Raises:
        DataError: an unusable outline (see `check_outline`).

    Example:
        >>> box = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 8.0], [0.0, 8.0]])
        >>> place_six_points(box)[[0, 3]].tolist()
        [[1.0, 0.0], [1.0, 8.0]]
    """
    outline = check_outline(outline)
    centre = polygon_centroid(outline)
    down = principal_down_axis(outline) if down is None else _unit(down)
    for stations in AIMING_STATIONS:
        points = _endplate_points(outline, centre, down, _posterior_of(down), stations)
        posterior = _unit(_unit(points[2] - points[0]) + _unit(points[5] - points[3]))
        down = np.array([-posterior[1], posterior[0]])
    return _endplate_points(outline, centre, down, _posterior_of(down))


def spine_axes(centres) -> np.ndarray:
    """Unit down axes of a column from its centres, as the patches use: c[k+1] - c[k-1],
    one-sided at the ends; NaN rows where there is no second centre (or they coincide)."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    axes = np.full_like(centres, np.nan)
    if len(centres) < 2:
        return axes
    for k in range(len(centres)):
        step = centres[min(k + 1, len(centres) - 1)] - centres[max(k - 1, 0)]
        norm = np.linalg.norm(step)
        if norm > 0:
            axes[k] = step / norm
    return axes


def _lip_vote(outline: np.ndarray, down: np.ndarray) -> float:
    """> 0 when the lowest part of the body lies at smaller x: an anterior-inferior lip on
    a left-facing film."""
    centred = outline - outline.mean(axis=0)
    depth_axis = _posterior_of(down)
    heights, along = centred @ down, centred @ depth_axis
    lowest = heights >= np.quantile(heights, 0.9)
    half_depth = max(np.ptp(along) / 2.0, 1e-12)
    return float(-along[lowest].mean() / half_depth)


def _column_bow(centres: np.ndarray) -> float:
    """Signed largest distance of the middle centres from the first-to-last chord, over the
    chord's length; > 0 towards +x for a column running down the image."""
    if len(centres) < 3:
        return 0.0
    chord = centres[-1] - centres[0]
    length = float(np.linalg.norm(chord))
    if length == 0:
        return 0.0
    offsets = (centres[1:-1] - centres[0]) @ (np.array([chord[1], -chord[0]]) / length)
    return float(offsets[np.argmax(np.abs(offsets))] / length)


def detect_facing(outlines, centres) -> tuple[str, float]:
    """Guess which way a lateral film faces from the body outlines and their centres.

    Two cues, in image pixels (a left-facing film has anterior at smaller x), each divided by
    its spread on synthetic v2 films (`FACING_CUE_SCALES`) and added:

    * **curvature**: the cervical column is most often lordotic, convex anteriorly; the
      middle centres then lie on the anterior side of the chord from the first centre to the
      last. The cue is the bow (the largest distance of a centre from the chord) over the
      chord's length, negative towards smaller x.
    * **lip**: the anterior-inferior lip of C3-C6 puts the lowest tenth of each outline (along
      the spine axis) anterior of the body's middle; the cue is the mean over the outlines of
      that offset over the half depth.

    Both are heuristics: a kyphotic neck with no lip is read the wrong way round. Store the
    facing when it is known (`"facing"` on the image record); it is then used as given.

    Args:
        outlines: N (K, 2) outlines in image pixels, top to bottom.
        centres: (N, 2) their centres in image pixels.

    Returns:
        `(facing, score)`: "left" or "right", and the summed cue (> 0 for left; its size is
        the confidence, in units of the cues' spread).
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    axes = spine_axes(centres)
    votes = []
    for outline, axis in zip(outlines, axes):
        outline = np.asarray(outline, dtype=np.float64)
        down = axis if np.isfinite(axis).all() else principal_down_axis(outline)
        votes.append(_lip_vote(outline, down))
    bow_scale, lip_scale = FACING_CUE_SCALES
    score = float(np.mean(votes)) / lip_scale - _column_bow(centres) / bow_scale
    return ("left" if score >= 0 else "right"), score


def posterior_wall_direction(outline, points) -> np.ndarray:
    """Unit direction down the posterior wall of a body (canonical frame), for the posterior
    tangent: the principal axis of the outline vertices in the posterior band (beyond the
    posterior station) between the posterior points, the top and bottom `WALL_TRIM` (30 %)
    of that height left out (the rounded corners); the line superior-posterior -> inferior-posterior
    when fewer than three vertices are in the band.

    Args:
        outline: (K, 2) outline, canonical frame.
        points: (6, 2) its six points from `place_six_points`.
    """
    outline = np.asarray(outline, dtype=np.float64)
    chord = points[5] - points[2]
    down = _unit(chord)
    posterior = _posterior_of(down)
    along = (outline - points[2]) @ posterior
    height = (outline - points[2]) @ down
    span = float(np.linalg.norm(chord))
    band = outline[(along >= 0.0) & (height >= WALL_TRIM * span)
                   & (height <= (1.0 - WALL_TRIM) * span)]
    if len(band) < 3:
        return down
    centred = band - band.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axis = vectors[:, -1]
    return axis if axis @ down > 0 else -axis
