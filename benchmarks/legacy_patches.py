"""The patch cutter as it was before vectorisation: the reference for its tests and benchmark.

A frozen copy of the previous one-patch-at-a-time path (vertseg-tf 0.1.0): each distance map
measured against every segment of the outline (`point_to_polyline_distance`'s running
minimum over the segments), each mask filled by scikit-image's `polygon2mask`, each image
patch normalised alone. `vertseg_tf.data.patches.extract_patches` must give the same
patches (the test suite checks it to 1e-5 px); `benchmarks/patch_pipeline.py` times both
side by side. Nothing in the package imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from skimage.draw import polygon2mask

from vertseg_tf.data.patches import PATCH_SIZE, TEST_ALPHA, patch_affine, vertebra_poses
from vertseg_tf.geometry import apply_affine

__all__ = ["legacy_distance_map", "legacy_extract", "legacy_mask"]


def legacy_distance_map(polyline: np.ndarray, shape: tuple[int, int], closed: bool = True):
    """(H, W) float32 distance from each pixel centre to the polyline, every segment measured."""
    polyline = np.asarray(polyline, dtype=np.float64)
    if len(polyline) == 1:
        starts = ends = polyline
    else:
        ends = np.roll(polyline, -1, axis=0) if closed else polyline[1:]
        starts = polyline if closed else polyline[:-1]
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width]
    xs, ys = xs.ravel().astype(np.float64), ys.ravel().astype(np.float64)
    directions = ends - starts
    lengths_sq = np.einsum("kd,kd->k", directions, directions)
    best = np.full(len(xs), np.inf)
    for (start_x, start_y), (dx, dy), length_sq in zip(starts, directions, lengths_sq):
        offset_x = xs - start_x
        offset_y = ys - start_y
        if length_sq > 0:
            t = (offset_x * dx + offset_y * dy) / length_sq
            np.clip(t, 0.0, 1.0, out=t)
            offset_x -= t * dx
            offset_y -= t * dy
        np.minimum(best, offset_x * offset_x + offset_y * offset_y, out=best)
    return np.sqrt(best).reshape(height, width).astype(np.float32)


def legacy_mask(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 mask of the pixel centres inside or on the polygon (scikit-image)."""
    polygon = np.asarray(polygon, dtype=np.float64)
    return polygon2mask(tuple(shape), polygon[:, ::-1]).astype(np.uint8)


def _normalise(patch: np.ndarray) -> np.ndarray:
    patch = patch.astype(np.float64)
    mean, std = patch.mean(), patch.std()
    if std <= 1e-6 * abs(mean):
        return np.zeros(patch.shape, np.float32)
    return ((patch - mean) / std).astype(np.float32)


def legacy_extract(
    image: np.ndarray,
    centers: np.ndarray,
    contours: Sequence[np.ndarray],
    alphas: Sequence[float] = (TEST_ALPHA,),
    angles: Sequence[float] = (0.0,),
    size: int = PATCH_SIZE,
) -> dict[str, np.ndarray]:
    """The previous `extract_patches` loop: images, masks, dist_maps and affines, one by one."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    axes, scales = vertebra_poses(centers, None)
    grid = [(float(a), float(t)) for a in alphas for t in angles]
    out = {"images": [], "masks": [], "dist_maps": [], "affines": []}
    for k, contour in enumerate(contours):
        for alpha, angle in grid:
            affine = patch_affine(centers[k], axes[k], scales[k], alpha, angle, size)
            cut = cv2.warpAffine(
                image, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            outline = apply_affine(affine, np.asarray(contour, dtype=np.float64))
            out["images"].append(_normalise(cut))
            out["masks"].append(legacy_mask(outline, (size, size)))
            out["dist_maps"].append(legacy_distance_map(outline, (size, size)))
            out["affines"].append(affine)
    return {name: np.stack(values) for name, values in out.items()}
