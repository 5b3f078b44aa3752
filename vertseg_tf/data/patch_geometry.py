"""Patch geometry: vertebra poses from clicked centres, the image -> patch maps, the way back.

Geometry (docs/architecture.md, patch geometry). For vertebra k with centre c_k (centres in
spine order, top to bottom) the spine axis is c_{k+1} - c_{k-1} (c_1 - c_0 and c_{N-1} - c_{N-2}
at the ends) and the scale s_k is the mean distance to the neighbouring centres. The patch is
the square of side alpha * s_k centred on c_k, turned so that the axis points down the patch
(+y), then turned by the augmentation angle, and resampled to `size` x `size` pixels. In patch
pixel-centre coordinates the centre c_k lands on ((size - 1) / 2, (size - 1) / 2). The map is a
rotation and a uniform scaling, never a reflection (determinant > 0): a patient facing right
gives patches that are the mirror image of a left-facing one. Training can add such patches with
`vertseg_tf.data.patches.mirror_patches` (the `augment_mirror` option); their affines then
include the reflection x -> size - 1 - x (determinant < 0), so `patch_to_image` still maps their
results back.

A positive `angle_deg` = a turns the patch content by a degrees about the patch centre: the
spine axis points along (-sin a, cos a) in the patch, i.e. the content turns clockwise on screen
(y down) for a positive angle.

`vertseg_tf.data.patches` re-exports every public name.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.geometry import apply_affine, invert_affine

__all__ = [
    "PATCH_SIZE",
    "TEST_ALPHA",
    "TRAIN_ALPHAS",
    "TRAIN_ANGLES",
    "mask_to_image",
    "patch_affine",
    "patch_affines",
    "patch_to_image",
    "vertebra_poses",
]

PATCH_SIZE = 64
TRAIN_ALPHAS = (1.3, 1.4, 1.5, 1.6, 1.7)
TRAIN_ANGLES = (-20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0)
TEST_ALPHA = 1.5
# Centres closer than this (image pixels) are the same click twice.
_COINCIDENT_PX = 1e-6


def vertebra_poses(
    centers: np.ndarray, scale: float | Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Spine axis and scale of each vertebra from its clicked centre and its neighbours.

    Args:
        centers: (N, 2) xy centres in spine order (top to bottom).
        scale: None to take each scale from the neighbours; a number or (N,) numbers to use
            instead (required for a lone centre, whose axis is then straight down, (0, 1)).

    Returns:
        `(axes, scales)`: (N, 2) unit axis vectors and (N,) scales in image pixels.

    Raises:
        DataError: a centre is not finite, or two centres coincide (file "centers").
        ConfigError: a lone centre without `scale`, or a scale that is not a positive number.

    Example:
        >>> axes, scales = vertebra_poses(np.array([[10.0, 10.0], [10.0, 30.0], [10.0, 60.0]]))
        >>> axes[1].tolist(), scales.tolist()
        ([0.0, 1.0], [20.0, 25.0, 30.0])
    """
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != 2 or len(centers) == 0:
        raise DataError("centers", f"must be (N, 2) with N >= 1, got shape {centers.shape}")
    bad = np.flatnonzero(~np.isfinite(centers).all(axis=1))
    if len(bad):
        raise DataError("centers", "is not a finite point", field=f"centers[{bad[0]}]")
    gaps = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
    first, second = np.nonzero(np.triu(gaps < _COINCIDENT_PX, k=1))
    if len(first):
        i, j = int(first[0]), int(second[0])
        raise DataError(
            "centers",
            f"coincides with centre {i} at {centers[i].tolist()} (duplicate click?)",
            field=f"centers[{j}]",
        )
    count = len(centers)
    if count == 1:
        if scale is None:
            raise ConfigError(
                "a lone vertebra centre has no neighbour to set the patch scale: pass scale="
            )
        axes = np.array([[0.0, 1.0]])
    else:
        ahead = np.vstack([centers[1:], centers[-1:]])
        behind = np.vstack([centers[:1], centers[:-1]])
        axes = ahead - behind
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    if scale is None:
        steps = np.linalg.norm(np.diff(centers, axis=0), axis=1)
        before = np.concatenate([[np.nan], steps])
        after = np.concatenate([steps, [np.nan]])
        scales = np.nanmean(np.stack([before, after]), axis=0)
    else:
        scales = np.broadcast_to(np.asarray(scale, dtype=np.float64), (count,)).copy()
        if not (np.isfinite(scales).all() and (scales > 0).all()):
            raise ConfigError(f"scale must be positive numbers, got {scale!r}")
    return axes, scales


def patch_affine(
    center: Sequence[float],
    axis: Sequence[float],
    scale: float,
    alpha: float,
    angle_deg: float,
    size: int = PATCH_SIZE,
) -> np.ndarray:
    """The (2, 3) image -> patch map of one vertebra patch.

    Args:
        center: (x, y) vertebra centre in the image.
        axis: spine direction at the centre (any length > 0); it points down the patch.
        scale: vertebra scale s in image pixels.
        alpha: patch side in units of s.
        angle_deg: augmentation rotation (see the module docstring for the sense).
        size: patch side in pixels.

    Returns:
        (2, 3) float64 affine A with A @ (x, y, 1) = patch coordinates; det > 0.

    Example:
        >>> a = patch_affine((100.0, 50.0), (0.0, 1.0), 32.0, 2.0, 0.0, size=64)
        >>> a.tolist()
        [[1.0, 0.0, -68.5], [0.0, 1.0, -18.5]]
    """
    return patch_affines(center, axis, scale, alpha, angle_deg, size)[0]


def patch_affines(centers, axes, scales, alphas, angles_deg, size: int = PATCH_SIZE) -> np.ndarray:
    """`patch_affine` of many patches at once: (N, 2, 3) from (N, 2) centres and axes and (N,)
    scales, alphas and angles (each broadcast to N).

    Example:
        >>> patch_affines([[0.0, 0.0]], [[0.0, 1.0]], 32.0, [1.0, 2.0], 0.0)[:, 0, 0].tolist()
        [2.0, 1.0]
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    axes = np.asarray(axes, dtype=np.float64).reshape(-1, 2)
    count = max(len(centers), len(axes), *(np.size(v) for v in (scales, alphas, angles_deg)))
    centers, axes = (np.broadcast_to(v, (count, 2)) for v in (centers, axes))
    axis_x, axis_y = (axes / np.sqrt((axes * axes).sum(axis=1, keepdims=True))).T
    angle = np.deg2rad(np.broadcast_to(np.asarray(angles_deg, dtype=np.float64), (count,)))
    cos, sin = np.cos(angle), np.sin(angle)
    factor = size / (np.asarray(alphas, dtype=np.float64) * np.asarray(scales, dtype=np.float64))
    # turn(angle) @ upright(axis), upright = [[a_y, -a_x], [a_x, a_y]] (axis -> +y); adding 0.0
    # turns a -0.0 into 0.0.
    linear = np.empty((count, 2, 2))
    linear[:, 0, 0] = cos * axis_y - sin * axis_x
    linear[:, 0, 1] = -(cos * axis_x + sin * axis_y)
    linear[:, 1, 0] = sin * axis_y + cos * axis_x
    linear[:, 1, 1] = cos * axis_y - sin * axis_x
    linear *= np.broadcast_to(factor, (count,))[:, None, None]
    linear += 0.0
    middle = (size - 1) / 2.0
    offset = middle - (linear[:, :, 0] * centers[:, :1] + linear[:, :, 1] * centers[:, 1:])
    return np.concatenate([linear, offset[:, :, None]], axis=2)


def patch_to_image(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map patch xy points (e.g. a predicted contour) back to image coordinates.

    Example:
        >>> a = patch_affine((100.0, 50.0), (1.0, 1.0), 30.0, 1.5, 10.0)
        >>> patch_to_image(np.array([[31.5, 31.5]]), a).round(9).tolist()
        [[100.0, 50.0]]
    """
    return apply_affine(invert_affine(affine), points)


def mask_to_image(mask: np.ndarray, affine: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """Paint a patch mask back onto the image grid (nearest neighbour, 0 outside the patch).

    An image pixel exactly halfway between two patch pixels may take either: OpenCV builds
    round such ties differently.

    Args:
        mask: (size, size) patch mask.
        affine: the patch's (2, 3) image -> patch map.
        image_shape: (H, W) of the image.

    Returns:
        (H, W) uint8 mask: image pixel p takes the patch pixel nearest to affine(p).

    Example:
        >>> a = patch_affine((10.25, 10.25), (0.0, 1.0), 8.0, 1.0, 0.0, size=8)
        >>> int(mask_to_image(np.ones((8, 8), np.uint8), a, (20, 20)).sum())
        64
    """
    height, width = image_shape
    return cv2.warpAffine(
        np.ascontiguousarray(mask, dtype=np.uint8),
        np.asarray(affine, dtype=np.float64),
        (int(width), int(height)),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
