import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.child_process import BLOCK_TENSORFLOW, REPOSITORY, child_environment
from vertseg_tf import build_unet
from vertseg_tf.errors import ConfigError
from vertseg_tf.losses import (
    PixelLogLoss,
    ShapeAwareLoss,
    pixel_log_loss,
    shape_aware_loss,
    shape_error,
)

SIZE = 64
EPSILON = 1e-7


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def point_to_closed_polyline_distance(vertices):
    """Distance from every pixel centre (x = column, y = row) to a closed polyline, numpy."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    points = np.stack([cols, rows], axis=-1)
    best = np.full((SIZE, SIZE), np.inf)
    for start, end in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        start, end = np.asarray(start, float), np.asarray(end, float)
        segment = end - start
        t = np.clip(((points - start) @ segment) / (segment @ segment), 0.0, 1.0)
        nearest = start + t[..., None] * segment
        best = np.minimum(best, np.linalg.norm(points - nearest, axis=-1))
    return best.astype(np.float32)


# Ground-truth curve: the square outline through pixel centres x, y in {20, 40}.
SQUARE = [(20, 20), (40, 20), (40, 40), (20, 40)]


def square_mask(first_row, last_row, first_col, last_col):
    mask = np.zeros((SIZE, SIZE), bool)
    mask[first_row : last_row + 1, first_col : last_col + 1] = True
    return mask


def probabilities_of(mask):
    mask = np.asarray(mask, np.float32)
    return np.stack([1.0 - mask, mask], axis=-1)


def shape_error_of(mask, dist):
    return float(to_numpy(shape_error(probabilities_of(mask)[None], dist[None]))[0])


def test_ground_truth_square_has_zero_error():
    dist = point_to_closed_polyline_distance(SQUARE)
    # The square's boundary pixels are its outline pixels, which lie on the curve.
    assert shape_error_of(square_mask(20, 40, 20, 40), dist) == 0.0


def test_square_shrunk_by_two_pixels_has_error_two():
    dist = point_to_closed_polyline_distance(SQUARE)
    # Every boundary pixel of the 22..38 square is 2 px from the nearest side, 2+ from others.
    assert shape_error_of(square_mask(22, 38, 22, 38), dist) == pytest.approx(2.0, abs=1e-6)


def test_square_shifted_by_two_pixels():
    dist = point_to_closed_polyline_distance(SQUARE)
    # Columns 22..42, rows 20..40: 80 boundary pixels.
    #   top and bottom rows (2 x 21 px): x = 22..40 lie on the curve (0); x = 41, 42 are 1 and
    #   2 px from the corner: 2 x (1 + 2) = 6.
    #   left column x = 22, y = 21..39 (19 px): min(2, y - 20, 40 - y) = 1, 1 and 17 x 2: 36.
    #   right column x = 42, y = 21..39 (19 px): 2 px right of the side x = 40: 38.
    expected = (6 + 36 + 38) / 80
    assert shape_error_of(square_mask(20, 40, 22, 42), dist) == pytest.approx(expected, abs=1e-6)
    assert expected == 1.0


def test_empty_prediction_has_the_largest_distance():
    dist = point_to_closed_polyline_distance(SQUARE)
    # The farthest pixel centre from the square is the corner (63, 63): 23 * sqrt(2).
    expected = 23 * np.sqrt(2)
    assert dist.max() == pytest.approx(expected, abs=1e-5)
    assert shape_error_of(np.zeros((SIZE, SIZE), bool), dist) == pytest.approx(expected, abs=1e-5)


def test_mask_touching_the_patch_border_counts_border_pixels():
    dist = np.random.default_rng(3).random((SIZE, SIZE)).astype(np.float32)
    # The 3x3 corner block: its centre (1, 1) has all four neighbours inside; the other 8,
    # including the 5 on the patch border, are boundary pixels.
    expected = (dist[0:3, 0:3].sum() - dist[1, 1]) / 8
    assert shape_error_of(square_mask(0, 2, 0, 2), dist) == pytest.approx(expected, abs=1e-6)
    # A two-row stripe along the top edge: row 0 is on the border, row 1 touches row 2.
    assert shape_error_of(square_mask(0, 1, 0, SIZE - 1), dist) == pytest.approx(
        dist[0:2].mean(), abs=1e-6
    )


def test_full_mask_boundary_is_the_patch_border():
    dist = np.random.default_rng(4).random((SIZE, SIZE)).astype(np.float32)
    ring = np.concatenate([dist[0, :], dist[-1, :], dist[1:-1, 0], dist[1:-1, -1]])
    assert ring.size == 4 * SIZE - 4
    assert shape_error_of(np.ones((SIZE, SIZE), bool), dist) == pytest.approx(ring.mean(), abs=1e-6)


def test_two_fragments():
    dist = np.ones((SIZE, SIZE), np.float32)
    dist[40, 40] = 18.0
    mask = square_mask(10, 14, 10, 14)  # 5x5: 25 - 9 interior = 16 boundary pixels at 1
    mask[40, 40] = True  # an isolated pixel is its own boundary, at 18
    assert shape_error_of(mask, dist) == pytest.approx((16 * 1 + 18) / 17, abs=1e-6)
    assert (16 + 18) / 17 == 2.0


def test_shape_error_is_per_sample_and_ties_are_background():
    dist = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0)]).astype(np.float32)
    tie = np.full((4, 4, 2), 0.5, np.float32)  # argmax with a tie: background, empty mask
    full = probabilities_of(np.ones((4, 4)))
    np.testing.assert_allclose(to_numpy(shape_error(np.stack([full, tie]), dist)), [1.0, 3.0])


def random_targets_and_predictions(seed, batch=3, size=6):
    rng = np.random.default_rng(seed)
    y_true = np.stack(
        [rng.random((batch, size, size)) > 0.5, 3 * rng.random((batch, size, size))], axis=-1
    ).astype(np.float32)
    logits = rng.normal(size=(batch, size, size, 2)).astype(np.float32)
    return y_true, logits


def softmax_numpy(logits):
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def numpy_pixel_losses(y_true, y_pred):
    onehot = np.stack([1 - y_true[..., 0], y_true[..., 0]], axis=-1)
    return -(onehot * np.log(np.clip(y_pred, EPSILON, 1.0))).sum(axis=-1)


def numpy_shape_error(y_pred, dist):
    """E by the definition, with explicit loops over pixels and 4-neighbours."""
    errors = []
    for probabilities, distances in zip(y_pred, dist, strict=True):
        mask = probabilities[..., 1] > probabilities[..., 0]
        height, width = mask.shape
        values = []
        for row in range(height):
            for col in range(width):
                if not mask[row, col]:
                    continue
                neighbours = [(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)]
                if any(
                    not (0 <= r < height and 0 <= c < width) or not mask[r, c]
                    for r, c in neighbours
                ):
                    values.append(distances[row, col])
        errors.append(np.mean(values) if values else distances.max())
    return np.array(errors)


def test_pixel_log_loss_matches_numpy_reference():
    y_true, logits = random_targets_and_predictions(0)
    y_pred = softmax_numpy(logits)
    expected = numpy_pixel_losses(y_true, y_pred).mean(axis=(1, 2))
    np.testing.assert_allclose(to_numpy(pixel_log_loss(y_true, y_pred)), expected, rtol=1e-5)


def test_pixel_log_loss_of_a_half_prediction_is_log_two_and_clips_zero():
    y_true = np.zeros((1, 2, 2, 2), np.float32)
    np.testing.assert_allclose(
        to_numpy(pixel_log_loss(y_true, np.full((1, 2, 2, 2), 0.5, np.float32))), [np.log(2)],
        rtol=1e-6,
    )
    certain_wrong = probabilities_of(np.ones((2, 2)))[None]  # p(background) = 0
    np.testing.assert_allclose(
        to_numpy(pixel_log_loss(y_true, certain_wrong)), [-np.log(np.float32(EPSILON))], rtol=1e-5
    )


@pytest.mark.parametrize("weight", [0.5, 1.0, 3.0])
def test_shape_aware_loss_matches_numpy_reference(weight):
    y_true, logits = random_targets_and_predictions(1)
    y_pred = softmax_numpy(logits).astype(np.float32)
    pixel_losses = numpy_pixel_losses(y_true, y_pred)
    mismatch = (y_pred[..., 1] > y_pred[..., 0]) != (y_true[..., 0] > 0.5)
    error = numpy_shape_error(y_pred, y_true[..., 1])
    expected = pixel_losses.mean(axis=(1, 2)) + weight * (
        mismatch * error[:, None, None] * pixel_losses
    ).mean(axis=(1, 2))
    np.testing.assert_allclose(
        to_numpy(shape_aware_loss(y_true, y_pred, weight=weight)), expected, rtol=1e-5
    )
    assert mismatch.any() and not mismatch.all()


@pytest.mark.parametrize("e_mode", ["graph", "py_function"])
def test_weight_zero_equals_pixel_log_loss_exactly(e_mode):
    y_true, logits = random_targets_and_predictions(2)
    y_pred = softmax_numpy(logits).astype(np.float32)
    expected = to_numpy(pixel_log_loss(y_true, y_pred))
    np.testing.assert_array_equal(
        to_numpy(shape_aware_loss(y_true, y_pred, weight=0.0, e_mode=e_mode)), expected
    )
    np.testing.assert_array_equal(
        to_numpy(ShapeAwareLoss(weight=0.0, e_mode=e_mode)(y_true, y_pred)),
        to_numpy(PixelLogLoss()(y_true, y_pred)),
    )


@pytest.mark.parametrize("e_mode", ["graph", "py_function"])
@pytest.mark.parametrize("weight", [0.0, 1.0, 2.5])
def test_gradient_is_log_loss_gradient_weighted_by_shape_term(e_mode, weight):
    y_true, logits = random_targets_and_predictions(5, batch=2, size=5)
    batch, height, width = y_true.shape[:3]
    probabilities = softmax_numpy(logits.astype(np.float64))
    onehot = np.stack([1 - y_true[..., 0], y_true[..., 0]], axis=-1)
    mismatch = (probabilities[..., 1] > probabilities[..., 0]) != (y_true[..., 0] > 0.5)
    error = numpy_shape_error(probabilities, y_true[..., 1])
    pixel_weight = 1.0 + weight * error[:, None, None] * mismatch
    # d(-log softmax_c)/d logits = p - onehot; mean over pixels and over the batch.
    expected = (probabilities - onehot) * pixel_weight[..., None] / (height * width * batch)

    logits_variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss = ShapeAwareLoss(weight=weight, e_mode=e_mode)(
            y_true, keras.ops.softmax(logits_variable, axis=-1)
        )
    gradient = tape.gradient(loss, logits_variable).numpy()
    np.testing.assert_allclose(gradient, expected, atol=1e-7, rtol=1e-5)
    assert mismatch.any()


def test_shape_error_has_no_gradient():
    y_true, logits = random_targets_and_predictions(6)
    logits_variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        error = keras.ops.sum(shape_error(keras.ops.softmax(logits_variable), y_true[..., 1]))
    assert tape.gradient(error, logits_variable) is None


def test_loss_config_round_trip():
    loss = ShapeAwareLoss(weight=0.25, e_mode="py_function", name="unet_s", reduction="sum")
    config = loss.get_config()
    assert config == {
        "name": "unet_s", "reduction": "sum", "weight": 0.25, "e_mode": "py_function",
        "e_per": "image", "weighting": "fixed", "warmup_epochs": 0, "max_balanced_weight": 10.0,
    }
    serialized = keras.losses.serialize(loss)
    assert serialized["registered_name"] == "vertseg_tf>ShapeAwareLoss"
    restored = keras.losses.deserialize(serialized)
    assert isinstance(restored, ShapeAwareLoss)
    assert restored.get_config() == config
    restored_log_loss = keras.losses.deserialize(keras.losses.serialize(PixelLogLoss()))
    assert isinstance(restored_log_loss, PixelLogLoss)


@pytest.mark.parametrize(
    "options, field",
    [({"weight": -1.0}, "weight"), ({"weight": float("nan")}, "weight"),
     ({"weight": "heavy"}, "weight"), ({"e_mode": "numpy"}, "e_mode")],
)
def test_bad_loss_options_raise_config_error(options, field):
    with pytest.raises(ConfigError, match=field):
        ShapeAwareLoss(**options)


def smoke_batch(seed, batch=2):
    rng = np.random.default_rng(seed)
    patches = rng.random((batch, SIZE, SIZE, 1), dtype=np.float32)
    dist = point_to_closed_polyline_distance(SQUARE)
    mask = square_mask(20, 40, 20, 40).astype(np.float32)
    y_true = np.broadcast_to(np.stack([mask, dist], axis=-1), (batch, SIZE, SIZE, 2)).copy()
    return patches, y_true


@pytest.mark.slow
@pytest.mark.parametrize("e_mode", ["graph", "py_function"])
def test_model_fit_two_steps_in_both_modes(e_mode):
    keras.utils.set_random_seed(0)
    model = build_unet("smoke")
    model.compile(
        optimizer="adam", loss=ShapeAwareLoss(weight=1.0, e_mode=e_mode), jit_compile=False
    )
    patches, y_true = smoke_batch(7, batch=4)
    history = model.fit(patches, y_true, batch_size=2, epochs=1, steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert len(history.history["loss"]) == 1


@pytest.mark.slow
def test_model_fit_with_xla_in_graph_mode():
    keras.utils.set_random_seed(0)
    model = build_unet("smoke")
    model.compile(optimizer="adam", loss=ShapeAwareLoss(), jit_compile=True)
    patches, y_true = smoke_batch(8, batch=4)
    history = model.fit(patches, y_true, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_compiled_model_save_load_keeps_the_loss(tmp_path):
    model = build_unet("smoke")
    model.compile(optimizer="adam", loss=ShapeAwareLoss(weight=0.5, e_mode="graph"))
    patches, y_true = smoke_batch(9)
    model.save(tmp_path / "unet_s.keras")
    loaded = keras.models.load_model(tmp_path / "unet_s.keras")
    assert isinstance(loaded.loss, ShapeAwareLoss)
    assert loaded.loss.get_config() == model.loss.get_config()
    expected = model(patches, training=False)
    reloaded = loaded(patches, training=False)
    np.testing.assert_allclose(to_numpy(reloaded), to_numpy(expected), atol=1e-6)
    np.testing.assert_allclose(
        to_numpy(loaded.loss(y_true, reloaded)), to_numpy(model.loss(y_true, expected)), atol=1e-6
    )


NUMPY_BACKEND_SCRIPT = BLOCK_TENSORFLOW + textwrap.dedent(
    """

    import keras
    import numpy as np

    from vertseg_tf.errors import ConfigError
    from vertseg_tf.losses import ShapeAwareLoss, pixel_log_loss, shape_error
    from vertseg_tf.model import build_unet

    assert keras.backend.backend() == "numpy"
    model = build_unet("smoke")
    y_pred = keras.ops.convert_to_numpy(model(np.zeros((2, 64, 64, 1), "float32")))
    assert y_pred.shape == (2, 64, 64, 2)
    y_true = np.zeros((2, 64, 64, 2), "float32")
    y_true[:, 20:40, 20:40, 0] = 1
    y_true[..., 1] = 2.0
    loss = float(ShapeAwareLoss()(y_true, y_pred))
    log_loss = float(np.mean(pixel_log_loss(y_true, y_pred)))
    error = np.asarray(shape_error(y_pred, y_true[..., 1]))
    assert np.isfinite(loss) and loss >= log_loss
    assert error.shape == (2,)
    try:
        ShapeAwareLoss(e_mode="py_function")(y_true, y_pred)
    except ConfigError as refused:
        assert "needs the TensorFlow backend" in str(refused)
    else:
        raise AssertionError("py_function E ran without TensorFlow")
    assert "tensorflow" not in sys.modules
    print("ok", loss)
    """
)


JAX_FIT_SCRIPT = BLOCK_TENSORFLOW + textwrap.dedent(
    """
    import keras
    import numpy as np

    from vertseg_tf.losses import ShapeAwareLoss
    from vertseg_tf.model import build_unet

    assert keras.backend.backend() == "jax"
    model = build_unet("smoke")
    model.compile(optimizer="adam", loss=ShapeAwareLoss(), jit_compile=True)
    y_true = np.zeros((4, 64, 64, 2), "float32")
    y_true[:, 20:40, 20:40, 0] = 1
    y_true[..., 1] = 2.0
    history = model.fit(np.ones((4, 64, 64, 1), "float32"), y_true, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert "tensorflow" not in sys.modules
    print("ok")
    """
)


def run_without_tensorflow(script, backend):
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False, capture_output=True, text=True, cwd=REPOSITORY, timeout=600,
        env=child_environment(KERAS_BACKEND=backend),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")


def test_model_and_graph_loss_run_without_tensorflow_on_the_numpy_backend():
    run_without_tensorflow(NUMPY_BACKEND_SCRIPT, "numpy")


@pytest.mark.slow
def test_model_fit_with_the_graph_loss_on_the_jax_backend_without_tensorflow():
    run_without_tensorflow(JAX_FIT_SCRIPT, "jax")
