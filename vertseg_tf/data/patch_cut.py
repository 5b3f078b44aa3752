"""Cutting the patches of one image: resampled pixels, masks and distance maps, as arrays.

Content of each patch (the geometry is `vertseg_tf.data.patch_geometry`'s):
    - image: linear resampling (OpenCV `warpAffine`, pixel centres at integer coordinates as in
      the rest of vertseg-tf, interpolation weights in 1/32 pixel steps), border reflected
      (`BORDER_REFLECT`) so a vertebra near the image border is padded, never cropped; then
      normalised per patch to zero mean and unit variance. A patch whose standard deviation
      is at most 1e-6 of its mean magnitude (constant, up to interpolation rounding) becomes
      all zeros.
    - mask: the contour mapped through the same affine and filled at pixel centres
      (`vertseg_tf.geometry.polygons_to_masks`, boundary included).
    - dist_map: exact distance, in patch pixels, from each pixel centre to the mapped contour
      polyline (closed), not to the mask edge (`vertseg_tf.distance`, and
      `vertseg_tf.similar_distance` for the many patches of one vertebra).

`cut_patch_fields` returns the fields of a `vertseg_tf.data.patches.PatchSet`; this module
does not know that class (`patches` imports this module, never the reverse).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vertseg_tf.data.patch_geometry import PATCH_SIZE, TEST_ALPHA, patch_affines, vertebra_poses
from vertseg_tf.errors import DataError
from vertseg_tf.geometry import apply_affine, polygons_to_masks, polyline_distance_maps
from vertseg_tf.similar_distance import similar_distance_maps

__all__ = ["FLAT_RELATIVE_STD", "SHARED_DISTANCE_PATCHES", "cut_patch_fields"]

FLAT_RELATIVE_STD = 1e-6
# From this many patches per vertebra on, the distance maps of a vertebra share one pruning
# structure (`similar_distance_maps`); with fewer, building it costs more than it saves.
SHARED_DISTANCE_PATCHES = 8


def cut_patch_fields(
    image: np.ndarray,
    centers: np.ndarray,
    contours: Sequence[np.ndarray] | None = None,
    *,
    alphas: Sequence[float] = (TEST_ALPHA,),
    angles: Sequence[float] = (0.0,),
    size: int = PATCH_SIZE,
    scale: float | Sequence[float] | None = None,
    image_id: str = "",
    labels: Sequence[str] | None = None,
    conditions: Sequence[Sequence[str]] | None = None,
) -> dict:
    """The `PatchSet` fields of one image's patches, as `vertseg_tf.data.patches.extract_patches`
    documents them (arguments, order, errors)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise DataError("image", f"must be a 2-D greyscale array, got shape {image.shape}")
    axes, scales = vertebra_poses(centers, scale)
    centers = np.asarray(centers, dtype=np.float64)
    count = len(centers)
    contours = _checked_contours(contours, count)
    labels = [str(k) for k in range(count)] if labels is None else list(labels)
    conditions = [[] for _ in range(count)] if conditions is None else conditions
    grid = [(float(a), float(t)) for a in alphas for t in angles]
    vertebra = np.repeat(np.arange(count), len(grid))
    patch_alphas = np.tile([a for a, _ in grid], count).astype(np.float64)
    patch_angles = np.tile([t for _, t in grid], count).astype(np.float64)
    affines = patch_affines(
        centers[vertebra], axes[vertebra], scales[vertebra], patch_alphas, patch_angles, size
    )
    outlines, masks, dist_maps = [], None, None
    if contours is not None:
        outlines = [apply_affine(a, contours[k]) for a, k in zip(affines, vertebra.tolist())]
        masks = polygons_to_masks(outlines, (size, size))
        dist_maps = _distance_maps(contours, outlines, affines, len(grid), size)
    return {
        "images": _cut_patches(image, affines, size),
        "masks": masks,
        "dist_maps": dist_maps,
        "contours": outlines,
        "affines": affines,
        "vertebra_index": vertebra,
        "alphas": patch_alphas,
        "angles": patch_angles,
        "image_ids": [image_id] * len(affines),
        "labels": [labels[k] for k in vertebra.tolist()],
        "conditions": [list(conditions[k]) for k in vertebra.tolist()],
    }


def _checked_contours(contours, count: int) -> list[np.ndarray] | None:
    if contours is None:
        return None
    if len(contours) != count:
        raise DataError("contours", f"{len(contours)} contours for {count} centres")
    contours = [np.asarray(contour, dtype=np.float64) for contour in contours]
    for k, contour in enumerate(contours):
        if contour.ndim != 2 or contour.shape[1] != 2 or len(contour) < 3:
            problem = f"must be (K, 2) with K >= 3, got shape {contour.shape}"
            raise DataError("contours", problem, field=f"contours[{k}]")
        if not np.isfinite(contour).all():
            raise DataError("contours", "has a point that is not finite", field=f"contours[{k}]")
    return contours


def _distance_maps(contours, outlines, affines, per_vertebra: int, size: int) -> np.ndarray:
    """(N, size, size) exact distance maps, vertebra by vertebra when each has many patches."""
    if per_vertebra < SHARED_DISTANCE_PATCHES:
        return polyline_distance_maps(outlines, (size, size), closed=True)
    maps = np.empty((len(affines), size, size), np.float32)
    for k, contour in enumerate(contours):
        patches = slice(k * per_vertebra, (k + 1) * per_vertebra)
        maps[patches] = similar_distance_maps(contour, affines[patches], (size, size))
    return maps


def _cut_patches(image: np.ndarray, affines: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size) float32 patches through `affines`, each normalised (module docstring)."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    cuts = np.empty((len(affines), size, size), np.float32)
    for cut, affine in zip(cuts, affines):
        cv2.warpAffine(
            image, affine, (size, size), dst=cut,
            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT,
        )
    return _normalise(cuts)


def _normalise(patches: np.ndarray) -> np.ndarray:
    """Each (size, size) patch to zero mean and unit variance; a flat patch to zeros.

    In float64 (the mean accumulated in float64 from the float32 pixels, then the population
    standard deviation of the centred pixels, as `np.std` computes it).
    """
    flat = patches.reshape(len(patches), -1)
    mean = flat.mean(axis=1, keepdims=True, dtype=np.float64)
    centred = flat - mean
    std = np.sqrt(np.mean(centred * centred, axis=1, keepdims=True))
    flat_patch = std <= FLAT_RELATIVE_STD * np.abs(mean)
    centred /= np.where(flat_patch, 1.0, std)
    centred[flat_patch[:, 0]] = 0.0
    return centred.astype(np.float32).reshape(patches.shape)
