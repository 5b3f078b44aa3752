"""Generator v2 scene: a lateral neck drawn from wide, per-film random parameters (facing left).

Domain randomisation, as SynthSeg did for brain MRI: every film gets its own anatomy and
projection, drawn more widely than real films vary. Against v1 the scene adds what makes real
films hard: a thin, broken cortical outline brighter at the endplates (strokes, not a filled
rim); a double contour of the endplates and the posterior wall when the head is rotated or
tilted; left and right articular pillars overlapping the posterior third of the bodies, their
facet joint lines crossing it; the mandible and the teeth over C2-C3 in some films; the hyoid
with its greater horn and calcified laryngeal cartilage; shoulders covering C6-C7 in a share of
films; degenerative listhesis. The annotated contour is still exactly the filled body outline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vertseg_tf.data.synthetic.anatomy import (
    ANNOTATED_LEVELS,
    LEVELS,
    SPINE_RANGES_V2,
    Level,
    Spine,
    body_outline,
    sample_spine,
    six_points,
)
from vertseg_tf.data.synthetic.conditions import ConditionPlan
from vertseg_tf.data.synthetic.render import inset_polygon
from vertseg_tf.data.synthetic.scene import (
    CONTOUR_POINTS,
    MANDIBLE_SHAPE,
    BonePart,
    SoftTissue,
    _ellipse,
    _endplate_lines,
    _image_geometry,
    _implant,
    _place_spine,
    _rounded_box,
    _skull_and_atlas,
    _smooth,
    _soft_tissue,
    _spinous_process,
)
from vertseg_tf.geometry import polygon_centroid

__all__ = ["FilmScene", "Stroke", "build_film_scene"]

_STROKE_POINTS = 160
SHOULDERS_COVER_PROBABILITY = 0.4
MANDIBLE_PLACEMENTS = (("clear", 0.6), ("angle_over_c2_c3", 0.27), ("teeth_over_c2_c3", 0.13))
TEETH_PROBABILITY = 0.75
UNCINATE_PROBABILITY = 0.7


@dataclass
class Stroke:
    """An open polyline of bone drawn with a value per segment (a cortex, an endplate line).

    Args:
        points: (K, 2) vertices.
        thickness: line width, in the unit of the points.
        values: (K - 1,) attenuation of each segment (0 = not drawn: a break).
    """

    points: np.ndarray
    thickness: float
    values: np.ndarray


@dataclass
class FilmScene:
    """Everything the v2 renderer needs, patient facing left, coordinates in pixels.

    Args:
        shape: (rows, cols).
        spacing_mm: square pixel spacing.
        bones: filled bone parts drawn sharp (the bodies and grafts; they add up).
        rounded: filled bone parts whose rounded surfaces make soft edges (posterior elements,
            head, jaw, hyoid, larynx): drawn, then blurred by `rounded_blur_px`.
        rounded_blur_px: Gaussian sigma of that blur.
        strokes: cortices, double contours and sclerotic endplates.
        metal: closed polygons of the implant.
        soft: the soft-tissue description.
        bodies: annotated level -> exact body outline (px).
        six_points: annotated level -> six-point name -> (x, y) px (see `anatomy.six_points`).
        spine: the placed spine (mm, image frame).
        texture_angle: direction of the trabecular grain (radians from the image's x axis).
        extra: scene parameters worth recording.
        located_only: C2 and T1 -> body area centroid (px), drawn but not outlined: the
            locator's extra levels.
    """

    shape: tuple[int, int]
    spacing_mm: float
    bones: list[BonePart]
    rounded: list[BonePart]
    rounded_blur_px: float
    strokes: list[Stroke]
    metal: list[np.ndarray]
    soft: SoftTissue
    bodies: dict[str, np.ndarray]
    six_points: dict[str, dict[str, np.ndarray]]
    spine: Spine
    texture_angle: float
    extra: dict = field(default_factory=dict)
    located_only: dict[str, np.ndarray] = field(default_factory=dict)


def _apply_listhesis(spine: Spine, listhesis: dict[str, float]) -> None:
    """Slip each listed level, and everything above it, along the anterior of the level below."""
    for label, slip_mm in listhesis.items():
        index = LEVELS.index(label)
        below = spine.levels[index + 1]
        for level in spine.levels[: index + 1]:
            level.center = level.center - slip_mm * below.posterior


def _cortex(level: Level, local: np.ndarray, rng, value: float, thickness: float,
            boost: float) -> Stroke:
    """The body's cortex: a thin stroke inside `local` (its outline, body frame), brighter at
    the endplates, broken."""
    inside = inset_polygon(local, thickness / 2.0)
    a, b = level.params.depth / 2.0, level.params.standing_height / 2.0
    middle = (local + np.roll(local, -1, axis=0)) / 2.0
    endplate = np.clip((np.abs(middle[:, 1]) / b - 0.55) / 0.3, 0.0, 1.0)
    endplate *= np.clip((0.95 * a - np.abs(middle[:, 0])) / (0.25 * a), 0.0, 1.0)
    # Breaks: a smooth random process along the outline, the cortex nearly gone below a level.
    phase = rng.uniform(0.0, 2.0 * np.pi, size=3)
    arc = np.linspace(0.0, 2.0 * np.pi, _STROKE_POINTS, endpoint=False)
    process = sum(np.sin((k + 3) * arc + p) for k, p in enumerate(phase)) / 1.7
    grain = rng.normal(0.0, 0.8, size=_STROKE_POINTS)
    # Circular smoothing over ~7 points (about 1 mm): gaps, not dots.
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.5) ** 2)
    grain = np.convolve(np.concatenate([grain[-6:], grain, grain[:6]]), kernel / kernel.sum(),
                        mode="valid")
    kept = np.clip((process + grain + rng.uniform(0.2, 1.0)) / 0.4, 0.15, 1.0)
    values = value * (1.0 + boost * endplate) * kept
    closed = np.vstack([inside, inside[:1]])
    return Stroke(level.to_world(closed), thickness, values)


def _double_contour(level: Level, local: np.ndarray, offset: np.ndarray, value: float,
                    thickness: float) -> Stroke:
    """The far side's endplates and posterior wall: `local` shifted by `offset` (body frame)."""
    a, b = level.params.depth / 2.0, level.params.standing_height / 2.0
    middle = (local + np.roll(local, -1, axis=0)) / 2.0
    wall = middle[:, 0] > 0.75 * a
    plates = (np.abs(middle[:, 1]) > 0.6 * b) & (np.abs(middle[:, 0]) < 0.85 * a)
    closed = np.vstack([local, local[:1]]) + offset
    return Stroke(level.to_world(closed), thickness, value * (wall | plates))


def _pillars(level: Level, rng, density: float, offset: np.ndarray) -> list[BonePart]:
    """Left and right articular pillars, the pedicle, lamina and spinous process (mm).

    The pillars start inside the body (over its posterior 5-40 %), so the facet joints between
    them cross the back of the body; the two sides are shifted by `offset` (head rotation).
    """
    a = level.params.depth / 2.0
    b = level.params.standing_height / 2.0
    disc = level.disc_below if level.disc_below > 0 else 4.5
    gap = rng.uniform(0.4, 1.0)
    pillar_depth = rng.uniform(9.0, 13.0)
    slope = rng.uniform(3.0, 8.0)
    overlap = rng.uniform(0.05, 0.4) * 2.0 * a
    top = -b - 2.2 + gap
    bottom = b + disc - 2.2 - gap
    if level.label == "C2":
        top = -b - 12.0
    pillar = _smooth(np.array([
        [a - overlap, top], [a - overlap + pillar_depth, top + slope],
        [a - overlap + pillar_depth, bottom + slope], [a - overlap, bottom],
    ]))
    pedicle = _rounded_box(a - 1.5, -0.7 * b, a + 4.5, 0.1 * b, 24)
    root = np.array([a - overlap + pillar_depth - 1.0, 0.2 * b + slope / 2.0])
    spinous = _smooth(_spinous_process(level.label, root, b, rng, (0.8, 1.2), (10.0, 40.0)))
    cortex = rng.uniform(0.5, 1.0)
    pillar_value = rng.uniform(0.45, 0.75) * density  # per side: the two sides overlap
    return [
        BonePart([level.to_world(pillar + offset / 2.0)], cortex, 1.1 * pillar_value,
                 0.75 * pillar_value),
        BonePart([level.to_world(pillar - offset / 2.0)], cortex, 1.1 * pillar_value,
                 0.75 * pillar_value),
        BonePart([level.to_world(pedicle)], 0.8, 0.35 * density, 0.25 * density),
        BonePart([level.to_world(spinous)], 0.9, 0.95 * density, 0.45 * density),
    ]


def _uncinate(level: Level, rng, density: float, offset: np.ndarray) -> BonePart:
    """The uncinate processes: a low hump over the back of the superior endplate (mm).

    They rise from the lateral rims of the endplate, so on a lateral film they overlap the
    posterior half of the superior endplate and the disc above it.
    """
    a = level.params.depth / 2.0
    b = level.params.standing_height / 2.0
    center = (rng.uniform(0.2, 0.55) * a + offset[0] / 2.0, -b + offset[1] / 2.0)
    hump = _ellipse(center, (rng.uniform(0.3, 0.5) * a, rng.uniform(1.2, 2.5)), 0.0, 32)
    value = rng.uniform(0.25, 0.5) * density
    return BonePart([level.to_world(hump)], 0.4, 1.3 * value, value)


def _mandible_and_teeth(spine: Spine, rng, density: float) -> tuple[list[BonePart], str]:
    """The mandible (with lower and upper teeth) clear of, or over, C2-C3 (mm)."""
    c2 = spine.level("C2")
    a2, b2 = c2.params.depth / 2.0, c2.params.height / 2.0
    names, weights = zip(*MANDIBLE_PLACEMENTS)
    placement = str(rng.choice(names, p=weights))
    if placement == "clear":
        angle = np.array([-a2 - rng.uniform(6.0, 30.0), b2 + rng.uniform(-5.0, 18.0)])
    elif placement == "angle_over_c2_c3":
        angle = np.array([rng.uniform(-a2, a2), b2 + rng.uniform(2.0, 20.0)])
    else:
        angle = np.array([a2 + rng.uniform(15.0, 35.0), b2 + rng.uniform(5.0, 25.0)])
    turn = np.deg2rad(rng.uniform(-20.0, 20.0))
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    size = rng.uniform(0.75, 1.0)

    def place(points: np.ndarray) -> np.ndarray:
        return c2.to_world(angle + points @ rotation.T * size)

    shape = MANDIBLE_SHAPE + rng.normal(0.0, 2.0, size=MANDIBLE_SHAPE.shape)
    parts = [BonePart([place(_smooth(shape))], 2.0, 1.3 * density, 0.5 * density)]
    if rng.uniform() >= TEETH_PROBABILITY:
        return parts, placement
    crown_value = rng.uniform(0.9, 1.6) * density
    for base, sign in ((-21.0, -1.0), (-31.0, 1.0)):
        x = -33.0 - rng.uniform(0.0, 3.0)
        while x > -80.0:
            width = rng.uniform(7.0, 10.0) if x > -55.0 else rng.uniform(5.0, 7.0)
            crown = rng.uniform(5.0, 7.5)
            root = rng.uniform(3.0, 6.0)
            y0, y1 = sorted((base + sign * crown, base - sign * root))
            tooth = _rounded_box(x - width, y0, x, y1, 28)
            parts.append(BonePart([place(tooth)], 1.2, crown_value, 0.6 * crown_value))
            x -= width + rng.uniform(0.3, 1.5)
    return parts, placement


def _hyoid_and_larynx(spine: Spine, rng, density: float) -> tuple[list[BonePart], bool]:
    """The hyoid body and greater horn in front of C3-C4; calcified laryngeal cartilage (mm)."""
    level = spine.level("C3") if rng.uniform() < 0.5 else spine.level("C4")
    a = level.params.depth / 2.0
    front = -a - rng.uniform(20.0, 34.0)
    tilt = rng.uniform(-0.6, 0.3)
    body = _ellipse((front, rng.uniform(-2.0, 6.0)), (rng.uniform(4.0, 7.0), 2.2), tilt)
    horn_length = rng.uniform(18.0, 28.0)
    horn = np.array([[front + 2.0, -1.0], [front + horn_length, -6.0 - rng.uniform(0, 6)],
                     [front + horn_length + 1.5, -4.0], [front + 2.0, 1.5]])
    parts = [BonePart([level.to_world(body)], 0.8, 0.9 * density, 0.4 * density),
             BonePart([level.to_world(_smooth(horn))], 0.6, 0.7 * density, 0.35 * density)]
    calcified = bool(rng.uniform() < 0.5)
    if calcified:
        c5 = spine.level("C5")
        a5 = c5.params.depth / 2.0
        value = rng.uniform(0.25, 0.7) * density
        for _ in range(int(rng.integers(2, 6))):
            center = (-a5 - rng.uniform(14.0, 34.0), rng.uniform(-14.0, 22.0))
            radii = (rng.uniform(1.0, 6.0), rng.uniform(0.6, 2.5))
            plate = _ellipse(center, radii, rng.uniform(-1.2, 1.2), 24)
            parts.append(BonePart([c5.to_world(plate)], 0.5, value, 0.5 * value))
    return parts, calcified


def _soft_tissue_v2(spine: Spine, rng) -> tuple[SoftTissue, bool]:
    """v1's soft tissue redrawn wider: airway, thickness, heel; shoulders over C6-C7 or not."""
    soft = _soft_tissue(spine, rng)
    steps = np.hypot(*np.diff(spine.curve, axis=0).T)
    curve_arc = np.concatenate([[0.0], np.cumsum(steps)])

    def v_of(label: str) -> float:
        return float(curve_arc[np.argmin(np.hypot(*(spine.curve - spine.level(label).center).T))])

    soft.thickness = soft.thickness * rng.uniform(0.7, 1.4)
    soft.airway_width = soft.airway_width * rng.uniform(0.6, 1.5)
    soft.airway_depth = float(rng.uniform(0.3, 0.9))
    covers = bool(rng.uniform() < SHOULDERS_COVER_PROBABILITY)
    if covers:
        top = rng.uniform(v_of("C5") + 4.0, v_of("C6") + 4.0)
        soft.shoulder_amplitude = rng.uniform(1.6, 3.0, size=2)
        soft.shoulder_ramp = rng.uniform(1.5, 5.0, size=2)
        soft.shoulder_curvature = rng.uniform(0.0005, 0.003, size=2)
    else:
        top = rng.uniform(v_of("C7") + 8.0, v_of("T1") + 30.0)
        soft.shoulder_amplitude = rng.uniform(0.6, 2.2, size=2)
    soft.shoulder_top_v = top + np.array([0.0, rng.uniform(3.0, 25.0)])
    soft.heel_gradient = rng.uniform(-0.4, 0.4, size=2)
    return soft, covers


def _projection(rng) -> tuple[np.ndarray, dict]:
    """The far-side shift (body frame, mm) from head rotation (x) and tilt (y)."""
    offset = np.zeros(2)
    if rng.uniform() < 0.6:
        offset[0] = rng.uniform(0.3, 2.5) * rng.choice([-1.0, 1.0])
    if rng.uniform() < 0.6:
        offset[1] = rng.uniform(0.3, 2.0) * rng.choice([-1.0, 1.0])
    return offset, {"double_contour_mm": offset.tolist()}


def _vertebrae(spine: Spine, plan: ConditionPlan, rng, offset: np.ndarray):
    """Bodies (fill, broken cortex, double contour) and posterior elements of every level (mm)."""
    density = rng.uniform(0.75, 1.25)
    cortex_mm = rng.uniform(0.25, 0.7)
    if plan.osteoporosis:
        density *= rng.uniform(0.45, 0.65)
        cortex_mm = rng.uniform(0.15, 0.3)
    trabecular = rng.uniform(0.45, 0.75)
    cortical = rng.uniform(0.6, 1.4) * (0.7 if plan.osteoporosis else 1.0)
    boost = rng.uniform(0.3, 1.0)
    ghost = rng.uniform(0.3, 0.65)
    pillar_shift = offset * rng.uniform(2.0, 4.0)
    uncinate = bool(rng.uniform() < UNCINATE_PROBABILITY)
    bones, elements, strokes = [], [], []
    for level in spine.levels:
        level_density = density * rng.uniform(0.9, 1.1)
        fill = trabecular * level_density
        bones.append(BonePart([level.outline(CONTOUR_POINTS)], 0.0, fill, fill))
        local = body_outline(level.params, _STROKE_POINTS)
        strokes.append(_cortex(level, local, rng, cortical * level_density, cortex_mm, boost))
        if np.any(offset):
            strokes.append(_double_contour(level, local, offset,
                                           ghost * cortical * level_density, cortex_mm))
        elements.extend(_pillars(level, rng, density, pillar_shift))
        if uncinate and level.label not in ("C2", "T1"):
            elements.append(_uncinate(level, rng, density, pillar_shift))
    for label in sorted(plan.degenerative):
        for line in _endplate_lines(spine.level(label)):
            value = rng.uniform(0.5, 0.9) * density
            strokes.append(Stroke(line, rng.uniform(0.8, 1.6), np.full(len(line) - 1, value)))
    extra = {"density": float(density), "cortex_mm": float(cortex_mm),
             "endplate_boost": float(boost), "uncinate_processes": uncinate}
    return bones, elements, strokes, density, extra


def _in_pixels(part: BonePart, spacing: float) -> BonePart:
    return BonePart([p / spacing - 0.5 for p in part.polygons], part.cortex / spacing,
                    part.cortical, part.trabecular)


def build_film_scene(rng: np.random.Generator, plan: ConditionPlan, size: str) -> FilmScene:
    """Sample one v2 patient and film, patient facing left.

    Args:
        rng: the image's random generator.
        plan: the image's conditions (`sample_conditions_v2`).
        size: "full" or "small" (see `scene.SIZES`).

    Returns:
        The `FilmScene` in image pixels.
    """
    spine = sample_spine(rng, plan.fractures, plan.degenerative, SPINE_RANGES_V2)
    _apply_listhesis(spine, plan.listhesis)
    rows, cols, spacing = _image_geometry(rng, size)
    outlines = _place_spine(spine, rng, cols * spacing, rows * spacing)
    offset, extra = _projection(rng)
    bones, rounded, strokes, density, vertebra_extra = _vertebrae(spine, plan, rng, offset)
    rounded.extend(_skull_and_atlas(spine.level("C2"), rng, density))
    jaw, placement = _mandible_and_teeth(spine, rng, density)
    neck, calcified = _hyoid_and_larynx(spine, rng, density)
    rounded.extend(jaw + neck)
    rounded_blur_mm = rng.uniform(0.2, 0.7)
    metal_mm: list[np.ndarray] = []
    if plan.implant:
        metal_mm, grafts = _implant(spine, plan.implant, rng)
        bones.extend(BonePart([graft], 0.6, 0.9, 0.75) for graft in grafts)
    soft, shoulders_cover = _soft_tissue_v2(spine, rng)

    def px(points: np.ndarray) -> np.ndarray:
        return np.asarray(points) / spacing - 0.5

    truth = {}
    for label in ANNOTATED_LEVELS:
        level = spine.level(label)
        truth[label] = {name: px(level.to_world(point))
                        for name, point in six_points(level.params).items()}
    located_only = {label: polygon_centroid(px(spine.level(label).outline(CONTOUR_POINTS)))
                    for label in ("C2", "T1")}
    c5 = spine.level("C5").tangent
    return FilmScene(
        shape=(rows, cols),
        spacing_mm=float(spacing),
        bones=[_in_pixels(part, spacing) for part in bones],
        rounded=[_in_pixels(part, spacing) for part in rounded],
        rounded_blur_px=float(rounded_blur_mm / spacing),
        strokes=[Stroke(px(stroke.points), stroke.thickness / spacing, stroke.values)
                 for stroke in strokes],
        metal=[px(polygon) for polygon in metal_mm],
        soft=soft,
        bodies={label: px(outline) for label, outline in outlines.items()},
        six_points=truth,
        spine=spine,
        texture_angle=float(np.arctan2(c5[1], c5[0])),
        extra={**spine.extra, **extra, **vertebra_extra, "mandible": placement,
               "rounded_blur_mm": float(rounded_blur_mm),
               "laryngeal_calcification": calcified, "shoulders_cover_c6_c7": shoulders_cover},
        located_only=located_only,
    )
