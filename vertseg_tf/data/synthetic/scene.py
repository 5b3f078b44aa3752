"""A whole lateral neck scene, patient facing left: bones, soft tissue, metal, in image pixels.

`build_scene` places the sampled spine in an image of random size and pixel spacing and adds
everything a lateral cervical film shows around it: posterior elements (pedicles, articular
pillars with their facet joints, laminae and spinous processes) overlapping the back of the
bodies, C1, the dens, the skull base, the mandible, the hyoid, the prevertebral soft
tissue, the airway and the shoulders. Conditions change the bones (density, cortices,
osteophytes, sclerotic endplates, grafts) and add the plate and screws of an implant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vertseg_tf.data.synthetic.anatomy import (
    ANNOTATED_LEVELS,
    LEVELS,
    BodyParams,
    Level,
    Spine,
    body_outline,
    sample_spine,
)
from vertseg_tf.data.synthetic.conditions import ConditionPlan

__all__ = ["SIZES", "BonePart", "Scene", "SoftTissue", "build_scene"]

# Image height range in pixels and the field of view (mm) for each output size.
SIZES = {
    "full": {"height_px": (1500, 2500), "fov_mm": (170.0, 235.0), "spacing_mm": (0.10, 0.194)},
    "small": {"height_px": (448, 576), "fov_mm": (170.0, 235.0), "spacing_mm": (0.3, 0.6)},
}
CONTOUR_POINTS = 96
_MARGIN = 0.04


@dataclass
class BonePart:
    """Bone drawn as the union of `polygons`: a cortical rim around trabecular bone.

    Args:
        polygons: (K, 2) closed outlines.
        cortex: cortical rim thickness, in the unit of the polygons.
        cortical: attenuation (line integral) of the rim.
        trabecular: attenuation of the inside.
    """

    polygons: list[np.ndarray]
    cortex: float
    cortical: float
    trabecular: float


@dataclass
class SoftTissue:
    """Smooth soft-tissue attenuation described along the spine (lengths in mm).

    The field is evaluated in spine coordinates: v = arc length along the centre curve, u =
    signed distance to it (positive towards the back). Profiles are (v knots, values); each
    of the two shoulders is a dome `v = top + curvature * (u - center)^2` with a soft edge
    (`ramp`); `heel_gradient` is the anode-heel change of attenuation across the image
    (per image width and height).
    """

    curve_mm: np.ndarray
    knots_v: np.ndarray
    skin_anterior: np.ndarray
    skin_posterior: np.ndarray
    thickness: np.ndarray
    airway_center: np.ndarray
    airway_width: np.ndarray
    airway_depth: float
    shoulder_top_v: np.ndarray
    shoulder_center_u: np.ndarray
    shoulder_curvature: np.ndarray
    shoulder_amplitude: np.ndarray
    shoulder_ramp: np.ndarray
    heel_gradient: np.ndarray


@dataclass
class Scene:
    """Everything the renderer needs, patient facing left, coordinates in pixels.

    Args:
        shape: (rows, cols).
        spacing_mm: square pixel spacing.
        bones: bone parts; overlapping parts add up.
        lines: open polylines (points px, thickness px, attenuation) such as sclerotic endplates.
        metal: closed polygons of the implant.
        soft: the soft-tissue description.
        bodies: annotated level -> exact body outline (px).
        spine: the placed spine (mm, image frame).
        extra: scene parameters worth recording.
    """

    shape: tuple[int, int]
    spacing_mm: float
    bones: list[BonePart]
    lines: list[tuple[np.ndarray, float, float]]
    metal: list[np.ndarray]
    soft: SoftTissue
    bodies: dict[str, np.ndarray]
    spine: Spine
    extra: dict = field(default_factory=dict)


def _ellipse(center, radii, angle_rad: float = 0.0, n: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    x, y = radii[0] * np.cos(t), radii[1] * np.sin(t)
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.stack([center[0] + c * x - s * y, center[1] + s * x + c * y], axis=1)


def _rounded_box(x0, y0, x1, y1, n: int = 40) -> np.ndarray:
    params = BodyParams(depth=x1 - x0, height=y1 - y0, corner_power=4.0, concavity_top=0.0,
                        concavity_bottom=0.0, lip=0.0, osteophyte_mm=0.0,
                        harmonics=np.zeros((0, 4)))
    return body_outline(params, n) + [(x0 + x1) / 2.0, (y0 + y1) / 2.0]


def _smooth(polygon: np.ndarray, iterations: int = 2, pieces: int = 4) -> np.ndarray:
    """Round the corners of a closed polygon: split each edge in `pieces`, then cut corners."""
    following = np.roll(polygon, -1, axis=0)
    steps = np.arange(pieces)[None, :, None] / pieces
    polygon = (polygon[:, None] + steps * (following - polygon)[:, None]).reshape(-1, 2)
    for _ in range(iterations):
        following = np.roll(polygon, -1, axis=0)
        polygon = np.stack([0.75 * polygon + 0.25 * following, 0.25 * polygon + 0.75 * following],
                           axis=1).reshape(-1, 2)
    return polygon


def _spinous_process(label: str, root: np.ndarray, half_height: float, rng: np.random.Generator,
                    length_factor: tuple[float, float], droop_deg: tuple[float, float]):
    """The lamina and spinous process of level `label` from its `root` on the pillar (mm, body
    frame): a tapering blade of the level's length times a factor drawn from `length_factor`,
    drooping by an angle from `droop_deg` that grows down the spine. Unsmoothed polygon."""
    length = {"C2": 24.0, "C3": 18.0, "C4": 19.0, "C5": 21.0, "C6": 25.0, "C7": 32.0,
              "T1": 34.0}[label] * rng.uniform(*length_factor)
    droop = np.deg2rad(rng.uniform(*droop_deg) + 4.0 * LEVELS.index(label))
    direction = np.array([np.cos(droop), np.sin(droop)])
    normal = np.array([-direction[1], direction[0]])
    half_root = 0.45 * half_height + (3.0 if label == "C2" else 0.0)
    half_tip = rng.uniform(1.8, 3.0) + (1.5 if label in ("C2", "C7", "T1") else 0.0)
    tip = root + length * direction
    return np.vstack([
        root - half_root * normal,
        root + 0.55 * length * direction - 0.7 * half_root * normal,
        tip - half_tip * normal,
        tip + 0.8 * half_tip * direction,
        tip + half_tip * normal,
        root + 0.5 * length * direction + 0.45 * half_root * normal,
        root + half_root * normal,
    ])


def _posterior_elements(level: Level, rng: np.random.Generator, density: float) -> list[BonePart]:
    """Pedicle, articular pillar and lamina with spinous process of one level (mm)."""
    a = level.params.depth / 2.0
    b = level.params.standing_height / 2.0
    disc = level.disc_below if level.disc_below > 0 else 4.5
    gap = 0.7
    pillar_depth = rng.uniform(10.0, 13.0)
    slope = rng.uniform(4.0, 7.0)
    overlap = rng.uniform(1.5, 4.0)
    top = -b - 2.2 + gap
    bottom = b + disc - 2.2 - gap
    if level.label == "C2":
        top = -b - 12.0
    pillar = np.array([
        [a - overlap, top],
        [a - overlap + pillar_depth, top + slope],
        [a - overlap + pillar_depth, bottom + slope],
        [a - overlap, bottom],
    ])
    pedicle = _rounded_box(a - 1.0, -0.7 * b, a + 4.0, 0.0, 24)
    root = np.array([a - overlap + pillar_depth - 1.0, 0.2 * b + slope / 2.0])
    spinous = _spinous_process(level.label, root, b, rng, (0.85, 1.15), (15.0, 35.0))
    return [
        BonePart([level.to_world(_smooth(pillar))], 0.9, 1.05 * density, 0.72 * density),
        BonePart([level.to_world(pedicle)], 0.8, 0.4 * density, 0.3 * density),
        BonePart([level.to_world(_smooth(spinous))], 0.9, 0.95 * density, 0.45 * density),
    ]


def _skull_and_atlas(c2: Level, rng: np.random.Generator, density: float) -> list[BonePart]:
    """The dens, C1 (anterior arch, lateral mass, posterior arch), the occiput and the clivus."""
    a2, b2 = c2.params.depth / 2.0, c2.params.height / 2.0
    dens = _rounded_box(-0.45 * a2, -b2 - 15.0, 0.55 * a2, -b2 + 3.0, 40)
    c1_front = _ellipse((-a2 - 5.5, -b2 - 9.5), (3.2, 5.0), 0.0, 32)
    c1_mass = _ellipse((a2 * 0.6, -b2 - 9.0), (9.0, 6.0), -0.15, 40)
    c1_back = np.array([[a2 + 6.0, -b2 - 13.0], [a2 + 30.0, -b2 - 14.0], [a2 + 38.0, -b2 - 11.0],
                        [a2 + 36.0, -b2 - 5.0], [a2 + 28.0, -b2 - 7.5], [a2 + 6.0, -b2 - 6.0]])
    occiput = _ellipse((a2 + 45.0 + rng.uniform(-6, 6), -b2 - 84.0 + rng.uniform(-6, 6)),
                       (85.0, 62.0), rng.uniform(-0.3, 0.1), 96)
    clivus = np.array([[-a2 - 2.0, -b2 - 26.0], [a2 * 0.5, -b2 - 24.0], [-a2 - 22.0, -b2 - 70.0],
                       [-a2 - 34.0, -b2 - 66.0]])
    return [
        BonePart([c2.to_world(dens)], 1.0, 1.15 * density, 0.65 * density),
        BonePart([c2.to_world(c1_front)], 1.0, 1.1 * density, 0.6 * density),
        BonePart([c2.to_world(c1_mass)], 1.2, 0.9 * density, 0.6 * density),
        BonePart([c2.to_world(_smooth(c1_back))], 1.0, 1.0 * density, 0.6 * density),
        BonePart([c2.to_world(occiput)], 4.0, 1.8 * density, 0.9 * density),
        BonePart([c2.to_world(_smooth(clivus))], 2.0, 1.4 * density, 0.9 * density),
    ]


# The mandible in its own frame (mm): the angle at the origin, the body towards -x (anterior),
# the ramus up (-y) to the condyle and the coronoid process.
MANDIBLE_SHAPE = np.array([
    [-85.0, 2.0], [-40.0, 4.0], [0.0, 0.0], [6.0, -20.0], [10.0, -52.0], [3.0, -58.0],
    [-4.0, -50.0], [-14.0, -46.0], [-22.0, -62.0], [-28.0, -56.0], [-30.0, -24.0],
    [-50.0, -20.0], [-85.0, -22.0],
])


def _head_bones(spine: Spine, rng: np.random.Generator, density: float) -> list[BonePart]:
    """C1, dens, skull base, mandible and hyoid (mm)."""
    c2 = spine.level("C2")
    a2, b2 = c2.params.depth / 2.0, c2.params.height / 2.0
    parts = _skull_and_atlas(c2, rng, density)
    angle = np.array([-a2 - rng.uniform(8.0, 28.0), b2 + rng.uniform(0.0, 18.0)])
    mandible_shape = MANDIBLE_SHAPE + rng.normal(0.0, 2.0, size=(13, 2))
    turn = np.deg2rad(rng.uniform(-12.0, 12.0))
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    mandible = angle + mandible_shape @ rotation.T * rng.uniform(0.75, 0.95)
    hyoid_level = spine.level("C3") if rng.uniform() < 0.5 else spine.level("C4")
    hyoid_a = hyoid_level.params.depth / 2.0
    hyoid = _ellipse((-hyoid_a - rng.uniform(22.0, 32.0), 3.0), (6.0, 2.2), rng.uniform(-0.5, 0.2))
    return parts + [
        BonePart([c2.to_world(_smooth(mandible))], 2.5, 1.2 * density, 0.45 * density),
        BonePart([hyoid_level.to_world(hyoid)], 0.8, 0.8 * density, 0.4 * density),
    ]


def _endplate_lines(level: Level) -> list[np.ndarray]:
    local = body_outline(level.params, CONTOUR_POINTS)
    a = level.params.depth / 2.0
    lines = []
    for upper in (True, False):
        keep = (np.abs(local[:, 0]) < 0.8 * a) & ((local[:, 1] < 0) == upper)
        segment = local[keep]
        lines.append(level.to_world(segment[np.argsort(segment[:, 0])]))
    return lines


def _implant(spine: Spine, levels: tuple[str, ...], rng: np.random.Generator):
    """Anterior plate, one screw per level and disc grafts (mm)."""
    first, last = spine.level(levels[0]), spine.level(levels[-1])
    a_first, a_last = first.params.depth / 2.0, last.params.depth / 2.0
    top = first.to_world(np.array([-a_first - 0.5, -0.45 * first.params.standing_height]))
    bottom = last.to_world(np.array([-a_last - 0.5, 0.45 * last.params.standing_height]))
    down = (bottom - top) / np.linalg.norm(bottom - top)
    anterior = np.array([down[1], -down[0]])
    if anterior @ (first.center - top) > 0:
        anterior = -anterior
    thickness = rng.uniform(1.8, 2.6)
    plate = np.array([top, bottom, bottom + thickness * anterior, top + thickness * anterior])
    metal = [plate]
    grafts = []
    for label in levels:
        level = spine.level(label)
        a, b = level.params.depth / 2.0, level.params.standing_height / 2.0
        y = rng.uniform(-0.15, 0.15) * b
        length = rng.uniform(0.65, 0.85) * 2.0 * a
        half = rng.uniform(1.5, 2.0)
        rise = rng.uniform(-0.12, 0.12) * length
        screw = np.array([[-a - 2.5, y - half - 1.2], [-a + length - 1.5, y - half + rise],
                          [-a + length, y + rise], [-a + length - 1.5, y + half + rise],
                          [-a - 2.5, y + half + 1.2]])
        metal.append(level.to_world(screw))
        if label != levels[-1]:
            graft = _rounded_box(-0.8 * a, b - 0.3, 0.7 * a, b + level.disc_below + 0.3, 24)
            grafts.append(level.to_world(graft))
    return metal, grafts


def _soft_tissue(spine: Spine, rng: np.random.Generator) -> SoftTissue:
    steps = np.hypot(*np.diff(spine.curve, axis=0).T)
    curve_arc = np.concatenate([[0.0], np.cumsum(steps)])

    def v_of(label: str) -> float:
        distances = np.hypot(*(spine.curve - spine.level(label).center).T)
        return float(curve_arc[np.argmin(distances)])

    v2, v3, v4, v6, v_t1 = (v_of(label) for label in ("C2", "C3", "C4", "C6", "T1"))
    half_depth = spine.level("C4").params.depth / 2.0
    front = rng.uniform(38.0, 55.0)
    back = rng.uniform(70.0, 95.0)
    knots = np.array([-120.0, -30.0, v2, v3 + 5.0, v6, v_t1 + 15.0, v_t1 + 120.0])
    skin_anterior = -np.array([170.0, 160.0, 100.0, half_depth + front, half_depth + front + 3.0,
                               half_depth + front + 20.0, half_depth + front + 60.0])
    skin_posterior = np.array([125.0, 112.0, back + 8.0, back, back + 4.0, back + 25.0, 150.0])
    thickness = np.array([3.0, 2.8, 2.2, 1.9, 2.0, 2.3, 2.6]) * rng.uniform(0.85, 1.15)
    prevertebral = np.interp(knots, [v2, v4, v6], [4.0, 5.0, 15.0]) * rng.uniform(0.8, 1.25)
    airway_width = np.interp(knots, [v2, v6, v_t1], [16.0, 13.0, 12.0]) * rng.uniform(0.8, 1.2)
    airway_center = -(half_depth + prevertebral + airway_width / 2.0)
    airway_width = np.where(knots < -30.0, 0.0, airway_width)
    # Two shoulders, superimposed with an offset, the higher one usually over C6-C7.
    shoulder_top = rng.uniform(v_of("C5"), v_t1) + np.array([0.0, rng.uniform(5.0, 25.0)])
    return SoftTissue(
        curve_mm=spine.curve.copy(),
        knots_v=knots,
        skin_anterior=skin_anterior,
        skin_posterior=skin_posterior,
        thickness=thickness,
        airway_center=airway_center,
        airway_width=airway_width,
        airway_depth=float(rng.uniform(0.35, 0.6)),
        shoulder_top_v=shoulder_top,
        shoulder_center_u=rng.uniform(-10.0, 50.0, size=2),
        shoulder_curvature=rng.uniform(0.002, 0.006, size=2),
        shoulder_amplitude=rng.uniform(0.6, 1.3, size=2),
        shoulder_ramp=rng.uniform(3.0, 10.0, size=2),
        heel_gradient=rng.uniform(-0.15, 0.15, size=2),
    )


def _image_geometry(rng: np.random.Generator, size: str) -> tuple[int, int, float]:
    config = SIZES[size]
    fov = rng.uniform(*config["fov_mm"])
    low, high = config["height_px"]
    s_low, s_high = config["spacing_mm"]
    rows = int(rng.integers(max(low, int(np.ceil(fov / s_high))), min(high, int(fov / s_low)) + 1))
    spacing = fov / rows
    cols = round(rows * rng.uniform(0.78, 0.95))
    return rows, cols, spacing


def _place_spine(spine: Spine, rng, width_mm: float, height_mm: float) -> dict[str, np.ndarray]:
    """Put C5 near the middle, then shift so C3-C7 keep a margin; returns their outlines (mm)."""
    target = np.array([width_mm * rng.uniform(0.5, 0.62), height_mm * rng.uniform(0.46, 0.58)])
    spine.translate(target - spine.level("C5").center)
    outlines = {label: spine.level(label).outline(CONTOUR_POINTS) for label in ANNOTATED_LEVELS}
    stacked = np.vstack(list(outlines.values()))
    margin = _MARGIN * np.array([width_mm, height_mm])
    low = margin - stacked.min(axis=0)
    high = np.array([width_mm, height_mm]) - margin - stacked.max(axis=0)
    spine.translate(np.clip(0.0, low, high))
    return {label: spine.level(label).outline(CONTOUR_POINTS) for label in ANNOTATED_LEVELS}


def build_scene(rng: np.random.Generator, plan: ConditionPlan, size: str) -> Scene:
    """Sample one patient and place it in an image, patient facing left.

    Args:
        rng: the image's random generator.
        plan: the image's conditions.
        size: "full" or "small" (see `SIZES`).

    Returns:
        The `Scene` in image pixels.
    """
    spine = sample_spine(rng, plan.fractures, plan.degenerative)
    rows, cols, spacing = _image_geometry(rng, size)
    outlines = _place_spine(spine, rng, cols * spacing, rows * spacing)

    density = rng.uniform(0.85, 1.15)
    cortex_mm = rng.uniform(0.8, 1.2)
    if plan.osteoporosis:
        density *= rng.uniform(0.5, 0.65)
        cortex_mm = rng.uniform(0.3, 0.5)

    bones_mm: list[BonePart] = []
    for level in spine.levels:
        body = level.outline(CONTOUR_POINTS)
        level_density = density * rng.uniform(0.92, 1.08)
        bones_mm.append(BonePart([body], cortex_mm, 1.25 * level_density, 0.62 * level_density))
        bones_mm.extend(_posterior_elements(level, rng, density))
    bones_mm.extend(_head_bones(spine, rng, density))

    lines_mm = []
    for label in sorted(plan.degenerative):
        for line in _endplate_lines(spine.level(label)):
            lines_mm.append((line, rng.uniform(1.0, 1.8), rng.uniform(0.5, 0.9) * density))

    metal_mm: list[np.ndarray] = []
    if plan.implant:
        metal_mm, grafts = _implant(spine, plan.implant, rng)
        bones_mm.extend(BonePart([graft], 0.6, 0.9, 0.75) for graft in grafts)

    def px(points: np.ndarray) -> np.ndarray:
        return points / spacing - 0.5

    bones = [BonePart([px(p) for p in part.polygons], part.cortex / spacing, part.cortical,
                      part.trabecular) for part in bones_mm]
    soft = _soft_tissue(spine, rng)
    return Scene(
        shape=(rows, cols),
        spacing_mm=float(spacing),
        bones=bones,
        lines=[(px(line), thickness / spacing, value) for line, thickness, value in lines_mm],
        metal=[px(polygon) for polygon in metal_mm],
        soft=soft,
        bodies={label: px(outline) for label, outline in outlines.items()},
        spine=spine,
        extra={**spine.extra, "density": float(density), "cortex_mm": float(cortex_mm)},
    )
