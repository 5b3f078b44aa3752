"""Parametric anatomy of a lateral cervical spine, in millimetres, patient facing left.

The spine is a smooth curve (lordotic, straight or kyphotic) carrying the vertebral bodies C2 to
T1. Each body is a parametric outline in its own frame (x towards posterior, y down the spine,
origin at the body's middle): a superellipse with rounded corners, concave endplates, the
anterior-inferior lip, optional osteophytes, a fracture deformation and a random smooth
perturbation. The same outline is filled by the renderer and written as the annotation, so
the contour is exactly the rendered body edge.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from vertseg_tf.geometry import resample_closed

__all__ = [
    "ANNOTATED_LEVELS",
    "FRACTURE_STATION",
    "LEVELS",
    "SIX_POINTS",
    "SPINE_RANGES_V1",
    "SPINE_RANGES_V2",
    "BodyParams",
    "Fracture",
    "Level",
    "Spine",
    "SpineRanges",
    "body_outline",
    "sample_spine",
    "six_points",
]

LEVELS = ("C2", "C3", "C4", "C5", "C6", "C7", "T1")
ANNOTATED_LEVELS = ("C3", "C4", "C5", "C6", "C7")

# Typical adult body depth (antero-posterior) and height in mm, and the disc below each level.
_DEPTH_MM = {"C2": 15.0, "C3": 15.2, "C4": 15.7, "C5": 16.2, "C6": 16.8, "C7": 17.4, "T1": 18.5}
_HEIGHT_MM = {"C2": 15.0, "C3": 12.6, "C4": 12.6, "C5": 12.8, "C6": 13.2, "C7": 13.8, "T1": 15.0}
_DISC_MM = {"C2": 4.2, "C3": 4.5, "C4": 4.8, "C5": 5.0, "C6": 5.0, "C7": 4.6}
_OUTLINE_SAMPLES = 1024

# Fracture heights are defined at these stations of the body depth (fraction from the
# anterior and the posterior ends): the anterior height there is (1 - loss) times the posterior.
FRACTURE_STATION = 0.1
SIX_POINTS = ("superior_anterior", "superior_middle", "superior_posterior",
              "inferior_anterior", "inferior_middle", "inferior_posterior")


@dataclass(frozen=True)
class Fracture:
    """A vertebral body fracture.

    Heights are chords at `FRACTURE_STATION` of the nominal depth in from the anterior and the
    posterior ends (the anterior and posterior stations) and at the body's middle.

    Args:
        kind: "wedge" (anterior collapse), "compression" (generator v1: whole body, more
            anteriorly), "biconcave" (v2: both endplates sink in the middle) or "crush" (v2:
            the whole body collapses, the posterior wall at least as much as the anterior).
        anterior_height_loss: wedge and compression: 1 - anterior height / posterior height.
        posterior_height_loss: compression and crush: uniform collapse of the whole body (0 for
            a wedge or a biconcave fracture); the posterior height is (1 - it) x the intact one.
        irregularity: amplitude of the broken superior endplate, as a fraction of the height.
        phases: random phases of the endplate irregularity.
        middle_height_loss: biconcave: 1 - middle height / intact middle height.
        anterior_sparing: crush: the anterior height loses (1 - it) x the posterior loss.
    """

    kind: str
    anterior_height_loss: float
    posterior_height_loss: float
    irregularity: float
    phases: tuple[float, ...]
    middle_height_loss: float = 0.0
    anterior_sparing: float = 0.0

    @property
    def height_loss(self) -> float:
        """The largest height loss the fracture applies (what grades it, after Genant)."""
        if self.kind == "biconcave":
            return self.middle_height_loss
        if self.kind == "crush":
            return self.posterior_height_loss
        return self.anterior_height_loss


@dataclass(frozen=True)
class BodyParams:
    """Shape parameters of one vertebral body outline (lengths in mm).

    Args:
        depth: antero-posterior size.
        height: superior-inferior size before any fracture.
        corner_power: superellipse exponent (higher = squarer corners).
        concavity_top, concavity_bottom: endplate concavity as a fraction of the half height.
        lip: anterior-inferior lip as a fraction of the half height.
        osteophyte_mm: length of the anterior corner spurs (0 without degenerative change).
        harmonics: (K, 4) smooth radial perturbation: row k-2 holds the cosine and sine
            amplitudes of harmonic k, the amplitude and phase of harmonic k+3.
        fracture: the fracture, or None.
        osteophyte_width: angular width of the spurs on the outline's parameter (radians).
    """

    depth: float
    height: float
    corner_power: float
    concavity_top: float
    concavity_bottom: float
    lip: float
    osteophyte_mm: float
    harmonics: np.ndarray
    fracture: Fracture | None = None
    osteophyte_width: float = 0.09

    @property
    def standing_height(self) -> float:
        """The posterior height after a fracture: what the column stacks on."""
        loss = self.fracture.posterior_height_loss if self.fracture else 0.0
        return self.height * (1.0 - loss)


def _smooth_bump(value: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-((value / width) ** 2))


def body_outline(params: BodyParams, n_points: int = 96) -> np.ndarray:
    """The closed outline of a body in its own frame, `n_points` equally spaced by arc length.

    x runs to posterior (anterior at x = -depth/2), y runs down the spine.

    Args:
        params: the body's shape parameters.
        n_points: number of outline points; the first point is not repeated at the end.

    Returns:
        (n_points, 2) float64 array, clockwise on screen (y down), starting at the middle
        of the posterior wall.

    Example:
        >>> outline = body_outline(BodyParams(16, 13, 5, 0.05, 0.05, 0.1, 0, np.zeros((0, 4))))
    """
    return resample_closed(np.stack(_dense_outline(params), axis=1), n_points)


def _dense_outline(params: BodyParams) -> tuple[np.ndarray, np.ndarray]:
    """The outline at `_OUTLINE_SAMPLES` parameter steps (x posterior, y down), not resampled."""
    a, b = params.depth / 2.0, params.height / 2.0
    t = np.linspace(0.0, 2.0 * np.pi, _OUTLINE_SAMPLES, endpoint=False)
    cos_t, sin_t = np.cos(t), np.sin(t)
    exponent = 2.0 / params.corner_power
    x = a * np.sign(cos_t) * np.abs(cos_t) ** exponent
    y = b * np.sign(sin_t) * np.abs(sin_t) ** exponent

    across = np.clip(1.0 - (x / a) ** 2, 0.0, 1.0)
    top = np.clip(-y / b, 0.0, 1.0) ** 4
    bottom = np.clip(y / b, 0.0, 1.0) ** 4
    y = y + params.concavity_top * b * across * top - params.concavity_bottom * b * across * bottom

    lip = params.lip * b * _smooth_bump(x + a, 0.22 * a) * np.clip(y / b, 0.0, 1.0) ** 2
    y = y + lip
    x = x - 0.35 * lip

    if params.osteophyte_mm > 0:
        corners = ((1.25 * np.pi, (-0.55, -0.85)), (0.75 * np.pi, (-0.55, 0.85)))
        for corner_angle, direction in corners:
            offset = np.angle(np.exp(1j * (t - corner_angle)))
            spur = params.osteophyte_mm * _smooth_bump(offset, params.osteophyte_width)
            x = x + spur * direction[0]
            y = y + spur * direction[1]

    radial = np.ones_like(t)
    for k, (cosine, sine, high, phase) in enumerate(params.harmonics, start=2):
        radial += cosine * np.cos(k * t) + sine * np.sin(k * t)
        radial += high * np.cos((k + 3) * t + phase)
    x, y = x * radial, y * radial

    if params.fracture is not None:
        x, y = _fracture(x, y, a, b, params.fracture)
    return x, y


def six_points(params: BodyParams) -> dict[str, np.ndarray]:
    """The six morphometry points of a body, from its own construction, in its own frame.

    The anterior, middle and posterior points of each endplate are where the outline crosses
    the lines x = -s, 0 and +s across the body's own antero-posterior axis, with
    s = (1 - 2 * FRACTURE_STATION) * depth / 2 (10 % of the nominal depth in from each end):
    the superior point is the crossing nearest the top, the inferior one nearest the bottom.

    Args:
        params: the body's shape parameters.

    Returns:
        `SIX_POINTS` name -> (x, y) in the body frame (mm, x towards posterior, y down).
    """
    x, y = _dense_outline(params)
    station = (1.0 - 2.0 * FRACTURE_STATION) * params.depth / 2.0
    following_x, following_y = np.roll(x, -1), np.roll(y, -1)
    points = {}
    for name, position in (("anterior", -station), ("middle", 0.0), ("posterior", station)):
        crossing = (x - position) * (following_x - position) <= 0
        crossing &= x != following_x
        t = (position - x[crossing]) / (following_x[crossing] - x[crossing])
        ys = y[crossing] + t * (following_y[crossing] - y[crossing])
        points[f"superior_{name}"] = np.array([position, ys.min()])
        points[f"inferior_{name}"] = np.array([position, ys.max()])
    return {name: points[name] for name in SIX_POINTS}


def _fracture(x: np.ndarray, y: np.ndarray, a: float, b: float, fracture: Fracture):
    """Collapse the body: anterior height = (1 - loss) x posterior height at the stations."""
    x_anterior = -a * (1.0 - 2.0 * FRACTURE_STATION)
    x_posterior = -x_anterior
    towards_anterior = np.clip((x_posterior - x) / (x_posterior - x_anterior), 0.0, 1.0)
    top = np.clip(-y / b, 0.0, 1.0) ** 4
    central = np.clip(1.0 - (x / (0.6 * a)) ** 2, 0.0, 1.0)
    if fracture.kind == "compression":
        y = y + 0.12 * b * central * top
    wobble = sum(np.sin((4.0 + 2.0 * i) * np.pi * x / a + p) for i, p in enumerate(fracture.phases))
    if fracture.kind in ("biconcave", "crush"):
        # Zero at the middle station too, so the applied middle loss is the measured one.
        central = central * np.sin(np.pi * x / (0.6 * a)) ** 2
    y = y + fracture.irregularity * b * central * top * wobble / max(len(fracture.phases), 1)
    if fracture.kind == "biconcave":
        inside = np.clip(np.abs(x) / x_posterior, 0.0, 1.0)
        return x, y * (1.0 - fracture.middle_height_loss * np.cos(0.5 * np.pi * inside) ** 2)
    if fracture.kind == "crush":
        spared = fracture.anterior_sparing * towards_anterior
        return x, y * (1.0 - fracture.posterior_height_loss * (1.0 - spared))
    y = y * (1.0 - fracture.anterior_height_loss * towards_anterior)
    return x, y * (1.0 - fracture.posterior_height_loss)


@dataclass
class Level:
    """One vertebra placed on the spine (mm, patient facing left).

    Args:
        label: "C2" ... "T1".
        center: body middle (x, y).
        tangent: unit vector down the spine at the body.
        params: body shape.
        disc_below: disc height under this body in mm.
    """

    label: str
    center: np.ndarray
    tangent: np.ndarray
    params: BodyParams
    disc_below: float

    @property
    def posterior(self) -> np.ndarray:
        """Unit vector towards the patient's back (+x when the spine is upright)."""
        return np.array([self.tangent[1], -self.tangent[0]])

    def to_world(self, local: np.ndarray) -> np.ndarray:
        """Map (x posterior, y down) body-frame points to image-frame millimetres."""
        local = np.asarray(local, dtype=np.float64)
        return self.center + local[..., :1] * self.posterior + local[..., 1:2] * self.tangent

    def outline(self, n_points: int = 96) -> np.ndarray:
        return self.to_world(body_outline(self.params, n_points))


@dataclass
class Spine:
    """The placed spine: levels C2..T1 and the sampled centre curve (mm)."""

    levels: list[Level]
    curve: np.ndarray
    curve_tangents: np.ndarray
    extra: dict = field(default_factory=dict)

    def level(self, label: str) -> Level:
        return next(level for level in self.levels if level.label == label)

    def translate(self, offset: np.ndarray) -> None:
        for level in self.levels:
            level.center = level.center + offset
        self.curve = self.curve + offset


def _harmonics(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Harmonics 2-5 (and 5-8) with amplitudes falling as 1/k: smooth, never jagged."""
    coefficients = rng.normal(0.0, amplitude, size=(4, 4))
    coefficients[:, 2] *= 0.5
    coefficients[:, :3] /= np.arange(1, 5)[:, None]
    coefficients[:, 3] = rng.uniform(0.0, 2.0 * np.pi, size=4)
    return coefficients


@dataclass(frozen=True)
class SpineRanges:
    """The ranges `sample_spine` draws from (uniform unless said otherwise; angles in degrees).

    Args:
        lordotic, straight, kyphotic: bend of the curve from top to bottom for each kind
            (chosen with probabilities 0.6, 0.25, 0.15).
        tilt: global tilt of the column.
        scale: patient scale of every length.
        jitter_sd: relative standard deviation of each body's depth and height.
        corner_power, concavity_top, concavity_bottom, lip: `BodyParams` ranges.
        osteophyte_mm: osteophyte length at degenerative levels (times the scale).
        harmonic_amplitude: standard deviation of the outline's smooth perturbation.
        disc: disc height factor; narrowed: its extra factor between degenerative levels.
        osteophyte_width: range of the spurs' angular width, drawn per degenerative level;
            None keeps 0.09 radians without a draw (generator v1).
    """

    lordotic: tuple[float, float]
    straight: tuple[float, float]
    kyphotic: tuple[float, float]
    tilt: tuple[float, float]
    scale: tuple[float, float]
    jitter_sd: float
    corner_power: tuple[float, float]
    concavity_top: tuple[float, float]
    concavity_bottom: tuple[float, float]
    lip: tuple[float, float]
    osteophyte_mm: tuple[float, float]
    harmonic_amplitude: float
    disc: tuple[float, float]
    narrowed: tuple[float, float]
    osteophyte_width: tuple[float, float] | None = None


SPINE_RANGES_V1 = SpineRanges(
    lordotic=(15.0, 40.0), straight=(-5.0, 5.0), kyphotic=(-25.0, -8.0), tilt=(-20.0, 20.0),
    scale=(0.88, 1.12), jitter_sd=0.035, corner_power=(3.5, 6.5), concavity_top=(0.02, 0.08),
    concavity_bottom=(0.03, 0.10), lip=(0.04, 0.16), osteophyte_mm=(1.5, 3.2),
    harmonic_amplitude=0.012, disc=(0.85, 1.15), narrowed=(0.3, 0.5),
)
# Generator v2 draws wider than real films vary (domain randomisation).
SPINE_RANGES_V2 = SpineRanges(
    lordotic=(5.0, 50.0), straight=(-8.0, 8.0), kyphotic=(-30.0, -5.0), tilt=(-30.0, 30.0),
    scale=(0.8, 1.2), jitter_sd=0.06, corner_power=(3.0, 8.0), concavity_top=(0.0, 0.12),
    concavity_bottom=(0.0, 0.14), lip=(0.0, 0.22), osteophyte_mm=(1.0, 5.0),
    harmonic_amplitude=0.016, disc=(0.7, 1.3), narrowed=(0.25, 0.6),
    osteophyte_width=(0.12, 0.22),
)


def sample_spine(
    rng: np.random.Generator,
    fractures: dict[str, Fracture],
    degenerative: frozenset[str],
    ranges: SpineRanges = SPINE_RANGES_V1,
) -> Spine:
    """Sample the spine curve and the body shapes, with the curve's top at the origin.

    Args:
        rng: the image's random generator.
        fractures: fractured level -> its fracture.
        degenerative: levels with osteophytes and narrowed discs below them.
        ranges: what to draw from (generator v1's by default).

    Returns:
        The `Spine`, levels C2..T1, in millimetres relative to the curve's start.
    """
    curve_kind = rng.choice(["lordotic", "straight", "kyphotic"], p=[0.6, 0.25, 0.15])
    bend = {
        "lordotic": rng.uniform(*ranges.lordotic),
        "straight": rng.uniform(*ranges.straight),
        "kyphotic": rng.uniform(*ranges.kyphotic),
    }[curve_kind]
    tilt = rng.uniform(*ranges.tilt)
    scale = rng.uniform(*ranges.scale)

    params = {}
    for label in LEVELS:
        jitter = rng.normal(1.0, ranges.jitter_sd, size=2)
        params[label] = BodyParams(
            depth=_DEPTH_MM[label] * scale * jitter[0],
            height=_HEIGHT_MM[label] * scale * jitter[1],
            corner_power=rng.uniform(*ranges.corner_power),
            concavity_top=rng.uniform(*ranges.concavity_top),
            concavity_bottom=rng.uniform(*ranges.concavity_bottom),
            lip=rng.uniform(*ranges.lip) if label != "T1" and label not in fractures else 0.0,
            osteophyte_mm=(rng.uniform(*ranges.osteophyte_mm) * scale
                           if label in degenerative else 0.0),
            harmonics=_harmonics(rng, ranges.harmonic_amplitude),
            fracture=fractures.get(label),
        )
        if label in degenerative and ranges.osteophyte_width is not None:
            params[label] = dataclasses.replace(
                params[label], osteophyte_width=float(rng.uniform(*ranges.osteophyte_width)))
    discs = {}
    for label in LEVELS[:-1]:
        narrowed = label in degenerative and LEVELS[LEVELS.index(label) + 1] in degenerative
        base = _DISC_MM[label] * scale * rng.uniform(*ranges.disc)
        discs[label] = base * rng.uniform(*ranges.narrowed) if narrowed else base

    arc_centres = []
    position = 0.0
    for i, label in enumerate(LEVELS):
        half = params[label].standing_height / 2.0
        position += half if i == 0 else half + discs[LEVELS[i - 1]]
        arc_centres.append(position)
        position += half
    length = position

    step = 0.25
    arc = np.arange(0.0, length + step, step)
    angle = np.deg2rad(tilt + bend * (arc / length - 0.5))
    tangents = np.stack([np.sin(angle), np.cos(angle)], axis=1)
    curve = np.vstack([[0.0, 0.0], np.cumsum(tangents[:-1] * step, axis=0)])

    levels = []
    for label, s in zip(LEVELS, arc_centres):
        index = round(s / step)
        levels.append(Level(label, curve[index].copy(), tangents[index].copy(), params[label],
                            discs.get(label, 0.0)))
    return Spine(levels, curve, tangents, {"curve": str(curve_kind), "tilt_deg": float(tilt),
                                           "bend_deg": float(bend), "scale": float(scale)})
