"""Clinical read-outs from six points: heights, ratios, Genant grade and type, angles, listhesis.

All inputs are in the canonical frame of `six_points` (x to posterior, y down; mm, or px
without a spacing), so the numbers do not depend on the facing. Angle conventions:

* An endplate's angle is the direction from its anterior to its posterior point, in degrees
  from the image horizontal, positive when the posterior end is lower.
* A body's wedge angle is inferior minus superior endplate angle: positive when the anterior
  height is the smaller one (anterior wedging, kyphotic).
* Segmental, Cobb and posterior-tangent angles between an upper and a lower level are
  positive for lordosis (the lower level turned so that the column is convex anteriorly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "FRACTURE_TYPES",
    "GENANT_THRESHOLDS",
    "LISTHESIS_LIMIT_MM",
    "BodyReadout",
    "angle_difference",
    "body_readout",
    "direction_angle",
    "genant",
    "genant_grade",
    "heights",
    "listhesis",
]

GENANT_THRESHOLDS = (0.20, 0.25, 0.40)
"""Height loss bounds of Genant grades 1, 2 and 3 (Genant et al. 1993): grade 1 for
0.20 <= loss < 0.25, grade 2 for 0.25 <= loss <= 0.40, grade 3 above 0.40."""
FRACTURE_TYPES = ("none", "wedge", "biconcave", "crush")
LISTHESIS_LIMIT_MM = 3.5
"""Sagittal translation on a lateral film above which a motion segment counts as unstable
(White and Panjabi)."""


def direction_angle(start, end) -> float:
    """Angle in degrees of the direction start -> end from the +x axis (y down: clockwise on
    screen is positive), in (-180, 180]."""
    dx, dy = np.asarray(end, dtype=np.float64) - np.asarray(start, dtype=np.float64)
    return float(np.degrees(np.arctan2(dy, dx)))


def angle_difference(first: float, second: float) -> float:
    """first - second in degrees, wrapped to (-180, 180]."""
    difference = (first - second) % 360.0
    return float(difference - 360.0 if difference > 180.0 else difference)


def heights(points) -> tuple[float, float, float]:
    """Ha, Hm, Hp: the distances between the superior and inferior anterior, middle and
    posterior points of a (6, 2) six-point array."""
    points = np.asarray(points, dtype=np.float64)
    ha, hm, hp = np.linalg.norm(points[3:] - points[:3], axis=1)
    return float(ha), float(hm), float(hp)


def genant_grade(height_loss: float) -> int:
    """Genant semi-quantitative grade 0-3 of a fractional height loss (`GENANT_THRESHOLDS`).

    Example:
        >>> [genant_grade(loss) for loss in (0.1, 0.2, 0.25, 0.4, 0.41)]
        [0, 1, 2, 2, 3]
    """
    mild, moderate, severe = GENANT_THRESHOLDS
    if height_loss < mild:
        return 0
    if height_loss < moderate:
        return 1
    return 2 if height_loss <= severe else 3


def genant(ha: float, hm: float, hp: float, hp_reference: float | None = None):
    """Height loss, Genant grade and fracture type of a body from its three heights.

    The three losses are 1 - Ha/Hp (wedge), 1 - Hm/Hp (biconcave) and 1 - Hp/Hp_reference
    (crush: the whole body lower than its neighbours; only with a reference, the mean
    posterior height of the neighbouring levels). The height loss is the largest of them
    (never below 0), the type the one that gives it (first in that order on a tie),
    "none" at grade 0.

    Returns:
        `(height_loss, grade, fracture_type)`.

    Example:
        >>> genant(7.0, 10.0, 10.0)
        (0.3, 2, 'wedge')
    """
    losses = {"wedge": 1.0 - ha / hp, "biconcave": 1.0 - hm / hp}
    if hp_reference is not None and hp_reference > 0:
        losses["crush"] = 1.0 - hp / hp_reference
    kind = max(losses, key=lambda name: losses[name])
    # rounded first, so that 1 - 8/10 counts as the 0.20 it is meant to be
    loss = round(max(losses[kind], 0.0), 12)
    grade = genant_grade(loss)
    return float(loss), grade, kind if grade > 0 else "none"


def listhesis(upper_points, lower_points) -> float:
    """Translation of the upper body over the lower one, along the lower superior endplate.

    The inferior-posterior point of the upper body minus the superior-posterior point of the
    lower one, projected on the lower body's superior endplate direction (posterior ->
    anterior): positive for anterolisthesis (the upper body forward), negative for
    retrolisthesis.
    """
    upper, lower = np.asarray(upper_points, float), np.asarray(lower_points, float)
    towards_anterior = lower[0] - lower[2]
    towards_anterior = towards_anterior / np.linalg.norm(towards_anterior)
    return float((upper[5] - lower[2]) @ towards_anterior)


@dataclass
class BodyReadout:
    """The read-outs of one body that need no neighbour (canonical frame).

    Args:
        ha, hm, hp: anterior, middle and posterior heights.
        superior_endplate_deg, inferior_endplate_deg: endplate angles.
        wedge_angle_deg: inferior minus superior endplate angle.
        posterior_wall_deg: angle of the posterior wall, pointing down, from the +x axis
            (90 for an upright wall).
    """

    ha: float
    hm: float
    hp: float
    superior_endplate_deg: float
    inferior_endplate_deg: float
    wedge_angle_deg: float
    posterior_wall_deg: float


def body_readout(points, posterior_wall=None) -> BodyReadout:
    """Heights and angles of one body from its six points (canonical frame).

    Args:
        points: (6, 2) six points in `six_points.POINT_NAMES` order.
        posterior_wall: (2,) direction down the posterior wall (from the outline, see
            `six_points.posterior_wall_direction`); default superior-posterior ->
            inferior-posterior.
    """
    points = np.asarray(points, dtype=np.float64)
    superior = direction_angle(points[0], points[2])
    inferior = direction_angle(points[3], points[5])
    wall = points[5] - points[2] if posterior_wall is None else np.asarray(posterior_wall)
    return BodyReadout(
        *heights(points),
        superior_endplate_deg=superior,
        inferior_endplate_deg=inferior,
        wedge_angle_deg=angle_difference(inferior, superior),
        posterior_wall_deg=direction_angle((0.0, 0.0), wall),
    )
