import itertools
import math

import numpy as np
import pytest

from vertseg_tf.errors import ConfigError
from vertseg_tf.evaluation.metrics import (
    contour_to_mask,
    dice,
    fit_failure_rate,
    pixel_accuracy,
    point_to_curve_error,
)


def square_mask(shape, x0, y0, side):
    mask = np.zeros(shape, np.uint8)
    mask[y0 : y0 + side, x0 : x0 + side] = 1
    return mask


def pixel_edge_square(x0, y0, side):
    """The outline of pixels x0..x0+side-1, y0..y0+side-1: it runs along pixel edges."""
    lo_x, lo_y, hi_x, hi_y = x0 - 0.5, y0 - 0.5, x0 + side - 0.5, y0 + side - 0.5
    return np.array([(lo_x, lo_y), (hi_x, lo_y), (hi_x, hi_y), (lo_x, hi_y)])


def reference_point_to_polygon(points, polygon):
    """Exact distance of each point to the closed polygon, one segment at a time."""
    closed = np.vstack([polygon, polygon[:1]])
    best = np.full(len(points), np.inf)
    for a, b in itertools.pairwise(closed):
        for i, p in enumerate(points):
            t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
            best[i] = min(best[i], float(np.hypot(*(a + t * (b - a) - p))))
    return best


def test_identical_masks_score_perfectly():
    mask = square_mask((8, 8), 2, 3, 4)
    assert pixel_accuracy(mask, mask) == 100.0
    assert dice(mask, mask) == 1.0


def test_pixel_accuracy_is_percent_and_batched():
    gt = np.zeros((2, 4, 4), np.uint8)
    pred = gt.copy()
    pred[1, 0, :3] = 1  # 3 of 16 pixels wrong in the second mask
    np.testing.assert_allclose(pixel_accuracy(gt, pred), [100.0, 100.0 * 13 / 16], atol=1e-12)


def test_dice_exact_fraction_and_both_empty():
    gt = np.array([[1, 1, 1, 0]])
    pred = np.array([[0, 1, 1, 1]])  # TP 2, FP 1, FN 1 -> 4 / 6
    assert dice(gt, pred) == pytest.approx(4 / 6, abs=1e-12)
    empty = np.zeros((3, 3))
    assert dice(empty, empty) == 1.0
    assert dice(square_mask((3, 3), 0, 0, 1), empty) == 0.0
    batched = dice(np.stack([empty, empty]), np.stack([empty, square_mask((3, 3), 0, 0, 1)]))
    np.testing.assert_array_equal(batched, [1.0, 0.0])


def test_mismatched_shapes_raise():
    with pytest.raises(ConfigError):
        dice(np.zeros((4, 4)), np.zeros((4, 5)))


def test_square_along_pixel_edges_has_zero_error_against_its_own_mask():
    # For a binary mask, marching squares at 0.5 puts every contour point halfway between two
    # neighbouring pixel centres of different value, i.e. at the midpoint of a pixel edge of
    # the mask outline. Corners are cut diagonally between two such midpoints, but the cut is
    # a segment, not a point: all points (the vertices) lie on the pixel-edge square, so the
    # mean distance is exactly 0.
    mask = square_mask((12, 12), 3, 2, 5)
    assert point_to_curve_error(mask, pixel_edge_square(3, 2, 5)) == 0.0


def test_ten_pixel_square_shifted_right_by_one():
    x0, y0, side = 4, 5, 10
    gt = square_mask((20, 20), x0, y0, side)
    pred = square_mask((20, 20), x0 + 1, y0, side)
    outline = pixel_edge_square(x0, y0, side)

    # Overlap 9 x 10 = 90 pixels, 100 in each mask: Dice = 180 / 200.
    assert dice(gt, pred) == pytest.approx(0.9, abs=1e-12)
    assert pixel_accuracy(gt, pred) == pytest.approx(100.0 * (400 - 20) / 400, abs=1e-12)

    # The predicted contour's points: one midpoint per boundary pixel edge of the shifted mask,
    # 10 on each side, 40 in all (columns x0+1..x0+10, rows y0..y0+9).
    cols = np.arange(x0 + 1, x0 + side + 1)
    rows = np.arange(y0, y0 + side)
    points = np.concatenate(
        [
            np.stack([np.full(side, x0 + 0.5), rows], 1),  # left side, inside the truth
            np.stack([np.full(side, x0 + side + 0.5), rows], 1),  # right side, 1 px outside
            np.stack([cols, np.full(side, y0 - 0.5)], 1),  # top, on the truth's top edge
            np.stack([cols, np.full(side, y0 + side - 0.5)], 1),  # bottom
        ]
    ).astype(float)
    # By hand: the left side is 1 px from the truth's left edge except its two end points,
    # 0.5 px from the top/bottom edge (8 x 1 + 2 x 0.5 = 9); the right side is 1 px outside
    # (10 x 1 = 10); top and bottom lie on the truth's edges except the last point, 0.5 px past
    # its corner (0.5 + 0.5). Mean = 20 / 40.
    assert reference_point_to_polygon(points, outline).mean() == pytest.approx(0.5, abs=1e-12)
    assert point_to_curve_error(pred, outline) == pytest.approx(0.5, abs=1e-6)


def test_all_components_count():
    # Two 1-pixel blobs, each traced by its 4 edge midpoints. The truth is the first pixel's
    # outline: the first blob's points lie on it (distance 0), the second blob's (4 columns to
    # the right) are measured by the numpy reference. The mean runs over all 8 points.
    pred = np.zeros((6, 10), np.uint8)
    pred[2, 2] = pred[2, 6] = 1
    truth = pixel_edge_square(2, 2, 1)
    second = np.array([(5.5, 2.0), (6.5, 2.0), (6.0, 1.5), (6.0, 2.5)])
    expected = (0.0 * 4 + reference_point_to_polygon(second, truth).sum()) / 8
    assert point_to_curve_error(pred, truth) == pytest.approx(expected, abs=1e-6)


def test_empty_prediction_has_infinite_error_and_fails():
    error = point_to_curve_error(np.zeros((8, 8)), pixel_edge_square(2, 2, 3))
    assert math.isinf(error)
    assert fit_failure_rate([error]) == 1.0


def test_fit_failure_rate_exact_fractions():
    assert fit_failure_rate([0.5, 2.5, math.inf, 1.0]) == 0.5
    assert fit_failure_rate([2.0, 1.0, 3.0]) == pytest.approx(1 / 3, abs=1e-12)  # 2.0 is not > 2
    assert fit_failure_rate([0.9, 1.1, 1.5], threshold=1.0) == pytest.approx(2 / 3, abs=1e-12)
    with pytest.raises(ConfigError):
        fit_failure_rate([])


def test_contour_to_mask_matches_ground_truth_rasterisation():
    expected = square_mask((9, 9), 2, 1, 4)
    np.testing.assert_array_equal(contour_to_mask(pixel_edge_square(2, 1, 4), (9, 9)), expected)
