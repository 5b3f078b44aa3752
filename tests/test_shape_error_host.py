import numpy as np
import pytest
import tensorflow as tf

from vertseg_tf.losses import shape_error
from vertseg_tf.shape_error_host import (
    boundary_pixels_numpy,
    shape_error_numpy,
    shape_error_py_function,
)

SIZE = 64


def boundary_by_definition(mask):
    """Mask pixels with a 4-neighbour outside the mask or outside the patch, by explicit loops."""
    height, width = mask.shape
    boundary = np.zeros_like(mask)
    for row in range(height):
        for col in range(width):
            if mask[row, col]:
                neighbours = [(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)]
                boundary[row, col] = any(
                    not (0 <= r < height and 0 <= c < width) or not mask[r, c]
                    for r, c in neighbours
                )
    return boundary


def test_boundary_of_hand_made_masks():
    block = np.zeros((5, 5), bool)
    block[1:4, 1:4] = True
    expected = block.copy()
    expected[2, 2] = False  # the only pixel with all four neighbours inside
    np.testing.assert_array_equal(boundary_pixels_numpy(block), expected)

    full = np.ones((4, 5), bool)
    ring = np.ones((4, 5), bool)
    ring[1:3, 1:4] = False  # a full mask's boundary is the patch border
    np.testing.assert_array_equal(boundary_pixels_numpy(full), ring)

    diagonal = np.eye(4, dtype=bool)  # 8-connected only: every pixel is a boundary pixel
    np.testing.assert_array_equal(boundary_pixels_numpy(diagonal), diagonal)


def random_masks(rng, count):
    """Seeded masks of every kind: empty, full, fragmented noise, border-touching, blobs."""
    kinds = ["empty", "full", "noise", "border", "blob", "rectangles"]
    masks = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        if kind == "empty":
            mask = np.zeros((SIZE, SIZE), bool)
        elif kind == "full":
            mask = np.ones((SIZE, SIZE), bool)
        elif kind == "noise":
            mask = rng.random((SIZE, SIZE)) < rng.uniform(0.05, 0.95)
        elif kind == "border":
            mask = np.zeros((SIZE, SIZE), bool)
            side = rng.integers(4)
            depth = rng.integers(1, 20)
            if side == 0:
                mask[:depth] = True
            elif side == 1:
                mask[-depth:] = True
            elif side == 2:
                mask[:, :depth] = True
            else:
                mask[:, -depth:] = True
            mask[rng.integers(SIZE), :] ^= rng.random(SIZE) < 0.3
        elif kind == "blob":
            rows, cols = np.mgrid[0:SIZE, 0:SIZE]
            centre = rng.uniform(0, SIZE, size=2)
            radius = rng.uniform(2, 40)
            mask = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2
        else:
            mask = np.zeros((SIZE, SIZE), bool)
            for _ in range(rng.integers(1, 5)):
                top, left = rng.integers(0, SIZE, size=2)
                mask[top : top + rng.integers(1, 30), left : left + rng.integers(1, 30)] = True
        masks.append(mask)
    return np.stack(masks)


def probabilities_from(masks, rng):
    """Softmax-like outputs whose argmax is `masks`, with varied confidence."""
    margin = rng.uniform(0.001, 0.5, size=masks.shape)
    vertebra = np.where(masks, 0.5 + margin, 0.5 - margin)
    return np.stack([1.0 - vertebra, vertebra], axis=-1).astype(np.float32)


def test_graph_and_py_function_agree_on_200_seeded_masks():
    rng = np.random.default_rng(2017)
    masks = random_masks(rng, 200)
    y_pred = probabilities_from(masks, rng)
    dist = (rng.random(masks.shape) * rng.uniform(1, 45, size=(200, 1, 1))).astype(np.float32)

    assert (masks.sum(axis=(1, 2)) == 0).sum() >= 30
    assert (masks.sum(axis=(1, 2)) == SIZE * SIZE).sum() >= 30
    touches_border = masks[:, 0].any(1) | masks[:, -1].any(1) | masks[:, :, 0].any(1)
    assert touches_border.sum() >= 100

    graph = shape_error(y_pred, dist).numpy()
    reference = shape_error_py_function(y_pred, dist).numpy()
    np.testing.assert_allclose(graph, reference, atol=1e-5, rtol=1e-5)

    for index in range(0, 200, 7):  # the host reference against the definition itself
        boundary = boundary_by_definition(masks[index])
        expected = dist[index][boundary].mean() if boundary.any() else dist[index].max()
        assert reference[index] == pytest.approx(expected, abs=1e-5)


def test_numpy_reference_uses_argmax_of_the_probabilities():
    y_pred = np.zeros((1, 3, 3, 2), np.float32)
    y_pred[..., 1] = 1.0
    dist = np.arange(9, dtype=np.float32).reshape(1, 3, 3)
    # Full 3x3 prediction: every pixel but the centre (value 4) is a boundary pixel.
    np.testing.assert_allclose(shape_error_numpy(y_pred, dist), [(36 - 4) / 8])
    np.testing.assert_allclose(shape_error_numpy(1.0 - y_pred, dist), [8.0])  # empty: the max


def test_py_function_in_a_graph_keeps_the_batch_shape_and_has_no_gradient():
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 8, 8, 2], tf.float32),
            tf.TensorSpec([None, 8, 8], tf.float32),
        ]
    )
    def errors_and_gradient(y_pred, dist):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            errors = shape_error_py_function(y_pred, dist)
        assert errors.shape.as_list() == [None]
        return errors, tape.gradient(tf.reduce_sum(errors), y_pred)

    rng = np.random.default_rng(11)
    y_pred = probabilities_from(rng.random((3, 8, 8)) < 0.5, rng)
    dist = rng.random((3, 8, 8)).astype(np.float32)
    errors, gradient = errors_and_gradient(y_pred, dist)
    assert gradient is None
    np.testing.assert_allclose(errors.numpy(), shape_error_numpy(y_pred, dist), atol=1e-6)


def test_graph_shape_error_compiles_with_xla():
    rng = np.random.default_rng(12)
    masks = random_masks(rng, 12)
    y_pred = probabilities_from(masks, rng)
    dist = rng.random(masks.shape).astype(np.float32)
    compiled = tf.function(shape_error, jit_compile=True)
    np.testing.assert_allclose(
        compiled(y_pred, dist).numpy(), shape_error_numpy(y_pred, dist), atol=1e-5
    )
