"""Render a v2 `FilmScene`: v1's physics with wide, per-film exposure and processing.

Attenuation (soft tissue with the anode-heel gradient, bone fills, cortical strokes, metal) ->
Beer-Lambert -> scatter haze -> a light detector blur -> quantum noise -> optical density
through a wide random window and gamma -> optionally the edge enhancement of computed
radiography (an unsharp mask, whose halos ring around bone and metal). The difficulty comes
from the anatomy and the processing, not from extra blur: the detector blur is at most 0.25 mm.
"""

from __future__ import annotations

import cv2
import numpy as np

from vertseg_tf.data.synthetic.render import (
    _SHIFT,
    MAX_VALUE,
    Rendered,
    _add_bone,
    _soft_tissue,
    add_collimator,
    add_metal,
    add_quantum_noise,
    gamma_mapped,
    motion_blurred,
    window_sample,
)
from vertseg_tf.data.synthetic.scene_v2 import FilmScene, Stroke

__all__ = ["COLLIMATION_PROBABILITY", "UNSHARP_PROBABILITY", "render_film"]

COLLIMATION_PROBABILITY = 0.3
UNSHARP_PROBABILITY = 0.5


def _add_stroke(bone: np.ndarray, stroke: Stroke) -> None:
    """Add an open polyline whose segments carry their own attenuation (0 = a break)."""
    peak = float(np.max(stroke.values)) if len(stroke.values) else 0.0
    if peak <= 0.0:
        return
    rows, cols = bone.shape
    pad = stroke.thickness + 2.0
    x0, y0 = np.maximum(np.floor(stroke.points.min(axis=0) - pad).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(stroke.points.max(axis=0) + pad).astype(int) + 1, [cols, rows])
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    points = np.round((stroke.points - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
    levels = np.round(255.0 * np.asarray(stroke.values) / peak).astype(int)
    width = max(1, round(stroke.thickness))
    for k in np.flatnonzero(levels):
        cv2.line(mask, tuple(points[k]), tuple(points[k + 1]), int(levels[k]), width, cv2.LINE_AA,
                 _SHIFT)
    bone[y0:y1, x0:x1] += (peak / 255.0) * mask.astype(np.float32)


def _oriented_texture(shape, spacing: float, angle: float, rng) -> tuple[np.ndarray, dict]:
    """Coarse trabecular texture: grains of 0.4-1.0 mm, elongated along `angle`, unit variance."""
    rows, cols = shape
    grain_mm = rng.uniform(0.4, 1.0)
    cell_mm = grain_mm / 1.5
    size = int(np.ceil(np.hypot(rows, cols) * spacing / cell_mm)) + 4
    low = rng.standard_normal((size, size), dtype=np.float32)
    elongation = rng.uniform(1.5, 3.0)
    low = cv2.GaussianBlur(low, (0, 0), sigmaX=0.6, sigmaY=0.6 * elongation)
    low = np.tanh(low / max(float(low.std()), 1e-6))
    # Full-size pixel (x, y) -> texture cell: scale to cells, rotate so the grain (the cells'
    # y axis) runs along `angle`, centre on the texture.
    scale = spacing / cell_mm
    turn = angle - np.pi / 2.0
    c, s = np.cos(turn) * scale, np.sin(turn) * scale
    centre = np.array([cols / 2.0, rows / 2.0])
    matrix = np.array([[c, s, 0.0], [-s, c, 0.0]], np.float64)
    matrix[:, 2] = size / 2.0 - matrix[:, :2] @ centre
    texture = cv2.warpAffine(low, matrix, (cols, rows),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
    texture *= 1.0 / max(float(texture.std()), 1e-6)
    return texture, {
        "trabecular_grain_mm": float(grain_mm), "trabecular_elongation": float(elongation)
    }


def _attenuation(scene: FilmScene, rng) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Soft tissue + bone (rounded parts softened, bodies sharp, strokes, texture) + metal."""
    rows, cols = scene.shape
    attenuation = _soft_tissue(scene, rng)
    bone = np.zeros((rows, cols), np.float32)
    for part in scene.rounded:
        _add_bone(bone, part)
    bone = cv2.GaussianBlur(bone, (0, 0), max(0.3, scene.rounded_blur_px))
    for part in scene.bones:
        _add_bone(bone, part)
    for stroke in scene.strokes:
        _add_stroke(bone, stroke)
    texture, extra = _oriented_texture(scene.shape, scene.spacing_mm, scene.texture_angle, rng)
    amplitude = rng.uniform(0.1, 0.3)
    bone *= 1.0 + amplitude * texture
    attenuation += bone
    extra["texture_amplitude"] = float(amplitude)
    metal = add_metal(attenuation, scene.metal)
    if rng.uniform() < COLLIMATION_PROBABILITY:
        extra["collimation_angle_deg"] = add_collimator(attenuation, scene, rng)
    return attenuation, metal, extra


def _blurred(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """A Gaussian blur of a wide sigma, computed at a reduced size (halos need no detail)."""
    rows, cols = image.shape
    factor = max(1, int(sigma_px // 3))
    small = cv2.resize(image, (max(1, cols // factor), max(1, rows // factor)),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), max(0.5, sigma_px / factor))
    return cv2.resize(small, (cols, rows), interpolation=cv2.INTER_LINEAR)


def _expose(attenuation: np.ndarray, spacing: float, artefacts, rng) -> tuple[np.ndarray, dict]:
    """Transmitted intensity with scatter haze, detector blur, motion and quantum noise.

    The anode-heel gradient is in the soft-tissue attenuation (`SoftTissue.heel_gradient`).
    """
    transmitted = cv2.exp(-attenuation)
    scatter = rng.uniform(0.05, 0.45)
    transmitted = cv2.scaleAdd(_blurred(transmitted, 30.0 / spacing), scatter, transmitted)
    blur_mm = rng.uniform(0.08, 0.25)
    transmitted = cv2.GaussianBlur(transmitted, (0, 0), max(0.3, blur_mm / spacing))
    extra = {"scatter_fraction": float(scatter), "blur_mm": float(blur_mm)}
    if "motion" in artefacts:
        transmitted, extra["motion_blur_mm"] = motion_blurred(transmitted, spacing, rng)
    photons = rng.uniform(1500.0, 25000.0) * (spacing / 0.14) ** 2
    add_quantum_noise(transmitted, photons, rng)
    extra["photons_per_pixel"] = float(photons)
    return transmitted, extra


def render_film(scene: FilmScene, artefacts: tuple[str, ...], rng: np.random.Generator) -> Rendered:
    """Render a v2 scene (patient facing left) to a bone-bright uint16 radiograph.

    Args:
        scene: the scene to render.
        artefacts: whole-image artefact kinds ("motion").
        rng: the image's random generator.

    Returns:
        The `Rendered` image (metal at `MAX_VALUE`) and its imaging parameters.
    """
    attenuation, metal, extra = _attenuation(scene, rng)
    transmitted, exposure = _expose(attenuation, scene.spacing_mm, artefacts, rng)
    extra.update(exposure)
    log_transmitted = cv2.log(transmitted)  # the optical density, negated
    sample = window_sample(log_transmitted, metal)
    low, high = np.percentile(sample, [rng.uniform(0.2, 12.0), rng.uniform(95.0, 99.95)])
    scale = 1.0 / max(high - low, 1e-6)
    display = cv2.addWeighted(log_transmitted, -scale, log_transmitted, 0.0, -low * scale)
    if rng.uniform() < UNSHARP_PROBABILITY:
        sigma_mm, amount = rng.uniform(1.0, 6.0), rng.uniform(0.3, 1.5)
        blurred = _blurred(display, sigma_mm / scene.spacing_mm)
        display = cv2.addWeighted(display, 1.0 + amount, blurred, -amount, 0.0)
        extra.update({"unsharp_sigma_mm": float(sigma_mm), "unsharp_amount": float(amount)})
    display *= MAX_VALUE
    display += 0.5
    np.clip(display, 0.0, MAX_VALUE, out=display)
    image = display.astype(np.uint16)
    gamma = rng.uniform(0.55, 1.9)
    image = gamma_mapped(image, gamma)
    if metal is not None:
        image[metal >= 128] = MAX_VALUE
    extra.update({"window_low": float(low), "window_high": float(high), "gamma": float(gamma)})
    return Rendered(image, extra)
