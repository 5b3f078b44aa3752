"""Image sampling shared by the ASMs: Gaussian pyramid, landmark normals, normal profiles.

Pyramid level l has 2**l times fewer pixels per side: each coarse pixel is the mean of a
2x2 block of the Gaussian-smoothed finer level, so with pixel-centre coordinates a point
maps as ``x_level = (x - (2**l - 1) / 2) / 2**l`` (`to_level` / `from_level`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "from_level",
    "gaussian_pyramid",
    "landmark_normals",
    "normalised_derivative",
    "sample",
    "sample_normal_profiles",
    "to_level",
]


def gaussian_pyramid(image: np.ndarray, n_levels: int, sigma: float = 1.0) -> list[np.ndarray]:
    """Levels 0..n_levels-1 of `image` (level 0 is the image itself, as float64).

    Example:
        >>> [level.shape for level in gaussian_pyramid(np.zeros((64, 64)), 3)]
        [(64, 64), (32, 32), (16, 16)]
    """
    levels = [np.asarray(image, dtype=np.float64)]
    for _ in range(1, n_levels):
        smooth = ndimage.gaussian_filter(levels[-1], sigma, mode="nearest")
        rows, cols = (smooth.shape[0] // 2) * 2, (smooth.shape[1] // 2) * 2
        smooth = smooth[:rows, :cols]
        levels.append(smooth.reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3)))
    return levels


def to_level(points: np.ndarray, level: int) -> np.ndarray:
    """Patch-pixel points to pyramid-level pixels."""
    factor = 2.0**level
    return (np.asarray(points) - (factor - 1.0) / 2.0) / factor


def from_level(points: np.ndarray, level: int) -> np.ndarray:
    """Pyramid-level pixels back to patch pixels (inverse of `to_level`)."""
    factor = 2.0**level
    return np.asarray(points) * factor + (factor - 1.0) / 2.0


def landmark_normals(points: np.ndarray) -> np.ndarray:
    """Unit outward normals (n, 2) of a closed landmark polygon with positive shoelace area.

    The tangent at a landmark is the chord between its two neighbours; for the orientation
    `resample_contour` produces, (t_y, -t_x) points out of the shape.
    """
    tangent = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    return normal / np.maximum(length, 1e-12)


def sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of `image` at (..., 2) points (x, y); edges extend the border pixels."""
    flat = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    values = ndimage.map_coordinates(image, [flat[:, 1], flat[:, 0]], order=1, mode="nearest")
    return values.reshape(np.shape(points)[:-1])


def sample_normal_profiles(
    image: np.ndarray, points: np.ndarray, normals: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Samples (n_points, n_offsets) of `image` at ``points + offset * normals``."""
    positions = points[:, None, :] + np.asarray(offsets)[None, :, None] * normals[:, None, :]
    return sample(image, positions)


def normalised_derivative(profiles: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Derivative along the last axis, divided by its sum of absolute values (Cootes 1995).

    Returns one value fewer than the input along the last axis; the normalisation removes
    the profile's local contrast so only its shape is modelled.
    """
    derivative = np.diff(profiles, axis=-1)
    return derivative / (np.abs(derivative).sum(axis=-1, keepdims=True) + eps)
