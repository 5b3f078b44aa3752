"""The paper's per-vertebra metrics (docs/architecture.md, metric definitions), on 64x64 masks.

Conventions every table and figure of the report relies on:

- Masks are anything whose non-zero pixels are the vertebra (bool, {0, 1} integers, floats).
- `pixel_accuracy` is in percent, as in the paper's Tables 1 and 3 (Eq. 7).
- `dice` of two empty masks is 1.0: both agree that there is no vertebra (Eq. 6 is 0/0 there).
- `point_to_curve_error` is in patch pixels; an empty prediction has an infinite error.
- `fit_failure_rate` is a fraction in [0, 1]; an infinite error is a failure.

ASM baselines predict contours; `contour_to_mask` rasterises them exactly as the ground truth
is rasterised, so all methods are scored on the same footing.
"""

from __future__ import annotations

import numpy as np

from vertseg_tf.errors import ConfigError
from vertseg_tf.geometry import mask_to_contours, point_to_polyline_distance, polygon_to_mask

__all__ = [
    "FIT_FAILURE_THRESHOLD",
    "contour_to_mask",
    "dice",
    "fit_failure_rate",
    "pixel_accuracy",
    "point_to_curve_error",
]

FIT_FAILURE_THRESHOLD = 2.0
"""Point-to-curve error (patch pixels) above which a vertebra counts as a fit failure."""


def _paired_masks(gt, pred) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt) != 0
    pred = np.asarray(pred) != 0
    if gt.shape != pred.shape or gt.ndim not in (2, 3):
        raise ConfigError(
            f"masks must both be (H, W) or (N, H, W) of one shape, got {gt.shape} and {pred.shape}"
        )
    return gt, pred


def pixel_accuracy(gt, pred) -> float | np.ndarray:
    """Pixel-wise accuracy (Eq. 7): (TP + TN) / (TP + TN + FP + FN) x 100 %.

    Args:
        gt: ground-truth mask(s), (H, W) or (N, H, W); non-zero = vertebra.
        pred: predicted mask(s) of the same shape.

    Returns:
        The accuracy in percent: a float for (H, W) input, a float64 (N,) array for a batch.

    Example:
        >>> pixel_accuracy(np.ones((2, 2)), np.array([[1, 1], [1, 0]]))
        75.0
    """
    gt, pred = _paired_masks(gt, pred)
    accuracy = 100.0 * (gt == pred).mean(axis=(-2, -1))
    return float(accuracy) if accuracy.ndim == 0 else accuracy


def dice(gt, pred) -> float | np.ndarray:
    """Dice similarity coefficient (Eq. 6): 2 TP / (2 TP + FP + FN).

    Two empty masks agree perfectly and score 1.0 (the formula is 0/0 there).

    Args:
        gt: ground-truth mask(s), (H, W) or (N, H, W); non-zero = vertebra.
        pred: predicted mask(s) of the same shape.

    Returns:
        Dice in [0, 1]: a float for (H, W) input, a float64 (N,) array for a batch.

    Example:
        >>> dice(np.array([[1, 1], [0, 0]]), np.array([[1, 0], [0, 0]]))
        0.6666666666666666
    """
    gt, pred = _paired_masks(gt, pred)
    overlap = 2.0 * (gt & pred).sum(axis=(-2, -1))
    total = gt.sum(axis=(-2, -1)) + pred.sum(axis=(-2, -1))
    score = np.where(total == 0, 1.0, overlap / np.maximum(total, 1))
    return float(score) if score.ndim == 0 else score


def point_to_curve_error(pred_mask, gt_contour) -> float:
    """Mean exact distance from the predicted mask's sub-pixel contour to the true outline.

    The predicted contour is traced by marching squares at level 0.5 over every connected
    component (`vertseg_tf.geometry.mask_to_contours`: closed contours whose first point is not
    repeated, so each contour point counts once). A point's distance is the exact Euclidean
    distance to the closed ground-truth polyline.

    Args:
        pred_mask: (H, W) predicted mask; non-zero = vertebra.
        gt_contour: (K, 2) ground-truth closed polygon in patch pixels, (x, y) = (column, row).

    Returns:
        The mean distance in patch pixels; `inf` when the prediction is empty.

    Example:
        >>> mask = np.zeros((8, 8), np.uint8); mask[2:6, 2:6] = 1
        >>> square = [(1.5, 1.5), (5.5, 1.5), (5.5, 5.5), (1.5, 5.5)]
        >>> point_to_curve_error(mask, square)
        0.0
    """
    pred_mask = np.asarray(pred_mask)
    if pred_mask.ndim != 2:
        raise ConfigError(f"pred_mask must be (H, W), got shape {pred_mask.shape}")
    gt_contour = np.asarray(gt_contour, dtype=np.float64)
    if gt_contour.ndim != 2 or gt_contour.shape[1] != 2 or len(gt_contour) < 2:
        raise ConfigError(f"gt_contour must be (K, 2) with K >= 2, got shape {gt_contour.shape}")
    pieces = mask_to_contours(pred_mask != 0)
    if not pieces:
        return float("inf")
    points = np.concatenate(pieces)
    return float(np.mean(point_to_polyline_distance(points, gt_contour, closed=True)))


def fit_failure_rate(errors, threshold: float = FIT_FAILURE_THRESHOLD) -> float:
    """Share of vertebrae whose point-to-curve error exceeds `threshold` (inf is a failure).

    Args:
        errors: (N,) point-to-curve errors in pixels; `inf` for empty predictions.
        threshold: failure threshold in pixels (the paper: 2).

    Returns:
        The failure fraction in [0, 1] (multiply by 100 for the paper's percent).

    Example:
        >>> fit_failure_rate([0.5, 2.5, float("inf"), 1.0])
        0.5
    """
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0:
        raise ConfigError("fit_failure_rate needs at least one error")
    if np.isnan(errors).any():
        raise ConfigError("fit_failure_rate: errors contain NaN")
    return float(np.mean(errors > threshold))


def contour_to_mask(contour, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a predicted contour the way ground truth is rasterised (filled at pixel centres).

    Args:
        contour: (K, 2) closed polygon in patch pixels, (x, y) = (column, row).
        shape: (H, W) of the mask.

    Returns:
        The (H, W) uint8 mask, 1 inside the polygon.

    Example:
        >>> int(contour_to_mask([(0.5, 0.5), (2.5, 0.5), (2.5, 2.5), (0.5, 2.5)], (4, 4)).sum())
        4
    """
    return np.asarray(polygon_to_mask(np.asarray(contour, dtype=np.float64), shape), np.uint8)
