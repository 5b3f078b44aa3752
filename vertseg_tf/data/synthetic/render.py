"""Turn a `Scene` into a radiograph: attenuation, Beer-Lambert, scatter, blur, noise, display.

The attenuation map (line integrals, unitless) is soft tissue, evaluated on a coarse grid
because it is smooth, plus bone and metal filled at full resolution with anti-aliased OpenCV
polygons. Transmission is `exp(-attenuation)`; scatter adds a heavily blurred copy of the
transmitted field, the detector blurs, quantum noise has variance proportional to the signal.
The displayed image is the optical density `-log(transmission)` (bone bright) through a random
window and gamma, quantised to 16 bits. Metal sets the top of the window and saturates.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vertseg_tf.data.synthetic.scene import BonePart, Scene
from vertseg_tf.geometry import polygon_area

__all__ = [
    "MAX_VALUE",
    "Rendered",
    "add_collimator",
    "add_metal",
    "add_quantum_noise",
    "burn_marker",
    "gamma_mapped",
    "inset_polygon",
    "motion_blurred",
    "render_scene",
    "window_sample",
]

MAX_VALUE = 65535
_SHIFT = 4
_METAL_ATTENUATION = 9.0
_COLLIMATOR_ATTENUATION = 3.0


@dataclass
class Rendered:
    """A rendered image, patient facing left.

    Args:
        image: (rows, cols) uint16, bone bright, metal at `MAX_VALUE`.
        extra: imaging parameters worth recording.
    """

    image: np.ndarray
    extra: dict


def _fill_mask(shape, polygons: list[np.ndarray], origin: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:
        # One call per polygon: a single fillPoly call would leave overlaps empty (even-odd).
        points = np.round((polygon - origin) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(mask, [points], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    return mask


def inset_polygon(polygon: np.ndarray, distance: float) -> np.ndarray:
    """Move every vertex `distance` along its inward normal."""
    tangent = np.roll(polygon, -1, axis=0) - np.roll(polygon, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.maximum(np.hypot(normal[:, 0], normal[:, 1]), 1e-9)[:, None]
    # (t_y, -t_x) points outwards on a polygon of positive signed area.
    return polygon - np.sign(polygon_area(polygon)) * distance * normal


def _add_bone(attenuation: np.ndarray, part: BonePart) -> None:
    points = np.vstack(part.polygons)
    rows, cols = attenuation.shape
    x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(points.max(axis=0)).astype(int) + 3, [cols, rows])
    if x1 <= x0 or y1 <= y0:
        return
    origin = np.array([x0, y0], np.float64)
    shape = (y1 - y0, x1 - x0)
    outer = _fill_mask(shape, part.polygons, origin).astype(np.float32)
    inner = _fill_mask(shape, [inset_polygon(p, part.cortex) for p in part.polygons], origin)
    # An inset of a sharp spur can fold outside the outline; bone stays inside it.
    inner = np.minimum(inner.astype(np.float32), outer)
    roi = attenuation[y0:y1, x0:x1]
    roi += (part.cortical / 255.0) * outer
    roi += ((part.trabecular - part.cortical) / 255.0) * inner


def _soft_tissue(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """The smooth soft-tissue attenuation at full size, computed on a ~1 mm grid."""
    rows, cols = scene.shape
    soft = scene.soft
    factor = max(1, round(1.0 / scene.spacing_mm))
    low_rows, low_cols = -(-rows // factor), -(-cols // factor)
    # Millimetres of the coarse cells' centres (pixel i spans [i, i + 1] * spacing).
    ys = (np.arange(low_rows) + 0.5) * factor * scene.spacing_mm
    xs = (np.arange(low_cols) + 0.5) * factor * scene.spacing_mm
    curve = soft.curve_mm
    direction = curve[-1] - curve[0]
    direction /= np.linalg.norm(direction)
    posterior = np.array([direction[1], -direction[0]])
    along_curve = (curve - curve[0]) @ direction
    across_curve = (curve - curve[0]) @ posterior
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(curve, axis=0).T))])
    grid_x, grid_y = np.meshgrid(xs - curve[0, 0], ys - curve[0, 1])
    along = grid_x * direction[0] + grid_y * direction[1]
    across = grid_x * posterior[0] + grid_y * posterior[1]
    u = across - np.interp(along, along_curve, across_curve)
    v = np.interp(along, along_curve, arc) + np.minimum(along, 0.0)
    v += np.maximum(along - along_curve[-1], 0.0)

    def profile(values: np.ndarray) -> np.ndarray:
        return np.interp(v, soft.knots_v, values)

    front, back = profile(soft.skin_anterior), profile(soft.skin_posterior)
    middle, half = (front + back) / 2.0, (back - front) / 2.0
    chord = np.sqrt(np.clip(1.0 - ((u - middle) / half) ** 2, 0.0, 1.0))
    field = profile(soft.thickness) * chord
    airway_half = np.maximum(profile(soft.airway_width) / 2.0, 1e-3)
    airway = np.clip(1.0 - ((u - profile(soft.airway_center)) / airway_half) ** 2, 0.0, 1.0)
    field -= soft.airway_depth * np.sqrt(airway) * (profile(soft.airway_width) > 0)
    for top, center, curvature, amplitude, ramp in zip(
        soft.shoulder_top_v, soft.shoulder_center_u, soft.shoulder_curvature,
        soft.shoulder_amplitude, soft.shoulder_ramp,
    ):
        edge = top + curvature * (u - center) ** 2
        field += amplitude / (1.0 + np.exp(-np.clip((v - edge) / ramp, -50.0, 50.0)))
    field += soft.heel_gradient[0] * (xs[None, :] / xs[-1] - 0.5)
    field += soft.heel_gradient[1] * (ys[:, None] / ys[-1] - 0.5)
    # Fat and muscle are not uniform: a smooth random variation of a few percent (~1 cm blobs).
    lumps = cv2.GaussianBlur(rng.standard_normal(field.shape).astype(np.float32), (0, 0), 6.0)
    lumps *= rng.uniform(0.02, 0.06) / max(float(lumps.std()), 1e-6)
    field = cv2.GaussianBlur(field.astype(np.float32), (0, 0), 1.5) + lumps * (chord > 0)
    return cv2.resize(field, (cols, rows), interpolation=cv2.INTER_LINEAR)


def _texture(shape: tuple[int, int], spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance trabecular texture with ~0.5 mm, mostly vertical, grains."""
    rows, cols = shape
    factor = max(1, round(0.25 / spacing))
    low = rng.standard_normal((-(-rows // factor), -(-cols // factor)), dtype=np.float32)
    low = cv2.GaussianBlur(low, (0, 0), sigmaX=0.8, sigmaY=1.6)
    low *= 1.0 / max(float(low.std()), 1e-6)
    if factor == 1:
        return low
    return cv2.resize(low, (cols, rows), interpolation=cv2.INTER_LINEAR)


def _collimation(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """A collimator half-plane (normal, point) that stays clear of the annotated bodies."""
    rows, cols = scene.shape
    bodies = np.vstack(list(scene.bodies.values()))
    side = str(rng.choice(["anterior", "posterior", "top", "bottom"]))
    angle = np.deg2rad(rng.uniform(-8.0, 8.0))
    cover = rng.uniform(0.05, 0.15)
    clear = 0.03 * max(rows, cols)
    if side == "anterior":
        normal = np.array([-np.cos(angle), np.sin(angle)])
        point = np.array([min(cover * cols, bodies[:, 0].min() - clear), rows / 2.0])
    elif side == "posterior":
        normal = np.array([np.cos(angle), np.sin(angle)])
        point = np.array([max((1.0 - cover) * cols, bodies[:, 0].max() + clear), rows / 2.0])
    elif side == "top":
        normal = np.array([np.sin(angle), -np.cos(angle)])
        point = np.array([cols / 2.0, min(cover * rows, bodies[:, 1].min() - clear)])
    else:
        normal = np.array([np.sin(angle), np.cos(angle)])
        point = np.array([cols / 2.0, max((1.0 - cover) * rows, bodies[:, 1].max() + clear)])
    # The edge must clear every body point, whatever its tilt.
    offset = max(0.0, float(np.max((bodies - point) @ normal)) + clear)
    return normal, point + offset * normal, float(angle)


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    dx, dy = np.cos(angle) * length / 2.0, np.sin(angle) * length / 2.0
    cv2.line(kernel, (round((centre - dx) * 16), round((centre - dy) * 16)),
             (round((centre + dx) * 16), round((centre + dy) * 16)), 1.0, 1, cv2.LINE_AA, 4)
    return kernel / kernel.sum()


def _add_lines(bone: np.ndarray, lines) -> None:
    """Add anti-aliased open polylines `(points, thickness, value)` to the bone map."""
    rows, cols = bone.shape
    for line, thickness, value in lines:
        x0, y0 = np.maximum(np.floor(line.min(axis=0) - thickness).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(line.max(axis=0) + thickness).astype(int) + 3, [cols, rows])
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        points = np.round((line - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
        cv2.polylines(mask, [points], False, 255, max(1, round(thickness)), cv2.LINE_AA,
                      _SHIFT)
        bone[y0:y1, x0:x1] += (value / 255.0) * mask.astype(np.float32)


def add_metal(attenuation: np.ndarray, metal_polygons: list[np.ndarray]) -> np.ndarray | None:
    """Add the metal polygons' attenuation; their anti-aliased uint8 mask, or None if none."""
    if not metal_polygons:
        return None
    metal = _fill_mask(attenuation.shape, metal_polygons, np.zeros(2))
    attenuation += (_METAL_ATTENUATION / 255.0) * metal.astype(np.float32)
    return metal


def add_collimator(attenuation: np.ndarray, scene: Scene, rng: np.random.Generator) -> float:
    """Add a collimator blade's edge across one corner; its angle in degrees."""
    rows, cols = attenuation.shape
    normal, point, angle = _collimation(scene, rng)
    grid_x = (np.arange(cols, dtype=np.float32) - point[0]) * normal[0]
    grid_y = (np.arange(rows, dtype=np.float32) - point[1]) * normal[1]
    beyond = np.clip(grid_y[:, None] + grid_x[None, :] + 0.5, 0.0, 1.0)
    attenuation += _COLLIMATOR_ATTENUATION * beyond
    return float(np.rad2deg(angle))


def motion_blurred(
    transmitted: np.ndarray, spacing: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """The transmitted field smeared by patient motion of 1-2.5 mm; and that length in mm."""
    length_mm = rng.uniform(1.0, 2.5)
    kernel = _motion_kernel(max(3.0, length_mm / spacing), rng.uniform(0.0, np.pi))
    return cv2.filter2D(transmitted, -1, kernel, borderType=cv2.BORDER_REFLECT), float(length_mm)


def add_quantum_noise(transmitted: np.ndarray, photons: float, rng: np.random.Generator) -> None:
    """Add noise of variance `signal / photons`, in place, and keep the field above 1e-5."""
    noise = rng.standard_normal(transmitted.shape, dtype=np.float32)
    noise *= cv2.sqrt(transmitted * np.float32(1.0 / photons))
    transmitted += noise
    np.maximum(transmitted, 1e-5, out=transmitted)


def window_sample(log_transmitted: np.ndarray, metal: np.ndarray | None) -> np.ndarray:
    """Optical densities on a grid of about 256 x 256, metal left out, to place the window."""
    rows, cols = log_transmitted.shape
    step = (max(1, rows // 256), max(1, cols // 256))
    sample = -log_transmitted[:: step[0], :: step[1]]
    if metal is not None:
        sample = sample[metal[:: step[0], :: step[1]] == 0]
    return sample


def gamma_mapped(image: np.ndarray, gamma: float) -> np.ndarray:
    """A uint16 image through the display curve `value ** gamma` (a lookup table)."""
    curve = np.linspace(0.0, 1.0, MAX_VALUE + 1) ** gamma
    return np.round(curve * MAX_VALUE).astype(np.uint16)[image]


def _attenuation(scene: Scene, artefacts: tuple[str, ...], rng: np.random.Generator,
                 extra: dict) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Soft tissue + textured bone and lines + metal + the collimator (its angle into `extra`);
    (attenuation, metal mask or None, texture amplitude)."""
    attenuation = _soft_tissue(scene, rng)
    bone = np.zeros(scene.shape, np.float32)
    for part in scene.bones:
        _add_bone(bone, part)
    _add_lines(bone, scene.lines)
    texture_amplitude = rng.uniform(0.18, 0.32)
    bone *= 1.0 + texture_amplitude * _texture(scene.shape, scene.spacing_mm, rng)
    attenuation += bone
    metal = add_metal(attenuation, scene.metal)
    if "collimation" in artefacts:
        extra["collimation_angle_deg"] = add_collimator(attenuation, scene, rng)
    return attenuation, metal, float(texture_amplitude)


def _expose(attenuation: np.ndarray, spacing: float, artefacts: tuple[str, ...],
            rng: np.random.Generator, extra: dict) -> tuple[np.ndarray, dict]:
    """Transmitted intensity with scatter, detector blur, motion (its length into `extra`) and
    quantum noise; and the exposure's parameters."""
    rows, cols = attenuation.shape
    transmitted = cv2.exp(-attenuation)
    scatter_fraction = rng.uniform(0.03, 0.12)
    small = cv2.resize(transmitted, (max(1, cols // 16), max(1, rows // 16)),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3.0)
    transmitted += scatter_fraction * cv2.resize(small, (cols, rows),
                                                 interpolation=cv2.INTER_LINEAR)
    blur_mm = rng.uniform(0.08, 0.22)
    transmitted = cv2.GaussianBlur(transmitted, (0, 0), max(0.3, blur_mm / spacing))
    if "motion" in artefacts:
        transmitted, extra["motion_blur_mm"] = motion_blurred(transmitted, spacing, rng)
    photons = rng.uniform(3000.0, 20000.0) * (spacing / 0.14) ** 2
    add_quantum_noise(transmitted, photons, rng)
    return transmitted, {"scatter_fraction": float(scatter_fraction), "blur_mm": float(blur_mm),
                         "photons_per_pixel": float(photons)}


def _display(log_transmitted: np.ndarray, metal: np.ndarray | None,
             rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Optical density through a random window and gamma, in 16 bits; (image, gamma)."""
    sample = window_sample(log_transmitted, metal)
    low, high = np.percentile(sample, [rng.uniform(0.5, 4.0), rng.uniform(99.0, 99.9)])
    if metal is not None:
        core = cv2.erode(metal, np.ones((3, 3), np.uint8)) == 255
        if core.any():
            high = min(high, -float(log_transmitted[core].max()))
    gamma = rng.uniform(0.75, 1.35)
    # (density - low) / (high - low), in 16-bit steps, rounded: one pass, then clip.
    scale = MAX_VALUE / max(high - low, 1e-6)
    linear = cv2.addWeighted(log_transmitted, -scale, log_transmitted, 0.0, 0.5 - low * scale)
    np.clip(linear, 0.0, MAX_VALUE, out=linear)
    image = linear.astype(np.uint16)
    if abs(gamma - 1.0) > 1e-3:
        image = gamma_mapped(image, gamma)
    if metal is not None:
        # Metal stops the beam: whatever blur and scatter did, the detector saturates there.
        image[metal >= 128] = MAX_VALUE
    return image, float(gamma)


def render_scene(scene: Scene, artefacts: tuple[str, ...], rng: np.random.Generator) -> Rendered:
    """Render a scene (patient facing left) to a bone-bright uint16 radiograph.

    Args:
        scene: the scene to render.
        artefacts: artefact kinds rendered here ("collimation", "motion"); the burned-in
            marker is added later by `burn_marker`, after any mirroring.
        rng: the image's random generator.

    Returns:
        The `Rendered` image and its imaging parameters.
    """
    # The artefacts' keys first, then the rest: the order version-1 datasets record.
    extra: dict = {}
    attenuation, metal, texture_amplitude = _attenuation(scene, artefacts, rng, extra)
    transmitted, exposure = _expose(attenuation, scene.spacing_mm, artefacts, rng, extra)
    image, gamma = _display(cv2.log(transmitted), metal, rng)  # log: optical density, negated
    extra.update({**exposure, "gamma": gamma, "texture_amplitude": texture_amplitude})
    return Rendered(image, extra)


def burn_marker(image: np.ndarray, avoid: np.ndarray, rng: np.random.Generator) -> str:
    """Burn a radiographer's marker (text at full brightness) into the corner farthest from `avoid`.

    Args:
        image: uint16 image, changed in place.
        avoid: (K, 2) points (px) the text keeps away from (the annotated bodies).
        rng: the image's random generator.

    Returns:
        The burned-in text.
    """
    rows, cols = image.shape
    text = str(rng.choice(["L", "R", "SUPINE", "ERECT", "LAT", "C-SPINE"]))
    scale = rows / 500.0 * rng.uniform(0.8, 1.4)
    thickness = max(1, round(scale * 2))
    (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = int(0.04 * cols)
    corners = [(pad, pad + height), (cols - pad - width, pad + height),
               (pad, rows - pad), (cols - pad - width, rows - pad)]
    centre = avoid.mean(axis=0)
    corner = max(corners, key=lambda c: np.hypot(c[0] + width / 2 - centre[0],
                                                  c[1] - height / 2 - centre[1]))
    mask = np.zeros(image.shape, np.uint8)
    cv2.putText(mask, text, corner, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    np.maximum(image, (mask.astype(np.uint32) * MAX_VALUE // 255).astype(np.uint16), out=image)
    return text
