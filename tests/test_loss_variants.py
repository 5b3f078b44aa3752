"""The shape term's ablation options of `ShapeAwareLoss` against numpy references written here."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vertseg_tf.errors import ConfigError
from vertseg_tf.losses import (
    ShapeAwareLoss,
    ShapeWarmup,
    balanced_weight,
    shape_aware_loss,
    shape_term,
)

EPSILON = 1e-7
E_MODES = ["graph", "py_function"]


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def targets_and_logits(seed, batch=3, size=5):
    rng = np.random.default_rng(seed)
    y_true = np.stack(
        [rng.random((batch, size, size)) > 0.5, 3 * rng.random((batch, size, size))], axis=-1
    ).astype(np.float32)
    return y_true, rng.normal(size=(batch, size, size, 2)).astype(np.float32)


def softmax(logits):
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def pixel_losses_numpy(y_true, y_pred):
    onehot = np.stack([1 - y_true[..., 0], y_true[..., 0]], axis=-1)
    return -(onehot * np.log(np.clip(y_pred, EPSILON, 1.0))).sum(axis=-1)


def mismatch_numpy(y_true, y_pred):
    return (y_pred[..., 1] > y_pred[..., 0]) != (y_true[..., 0] > 0.5)


def image_error_numpy(y_pred, dist):
    """E of Eq. 4 by its definition: loops over the pixels and their 4-neighbours."""
    errors = []
    for probabilities, distances in zip(y_pred, dist, strict=True):
        mask = probabilities[..., 1] > probabilities[..., 0]
        height, width = mask.shape
        values = [
            distances[r, c]
            for r in range(height)
            for c in range(width)
            if mask[r, c]
            and any(
                not (0 <= rr < height and 0 <= cc < width) or not mask[rr, cc]
                for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
            )
        ]
        errors.append(np.mean(values) if values else distances.max())
    return np.array(errors)


def terms_numpy(y_true, y_pred, e_per):
    """(log loss, unweighted shape term) per sample."""
    pixel_losses = pixel_losses_numpy(y_true, y_pred)
    if e_per == "pixel":
        weights = y_true[..., 1]
    else:
        weights = image_error_numpy(y_pred, y_true[..., 1])[:, None, None]
    shape = (mismatch_numpy(y_true, y_pred) * weights * pixel_losses).mean(axis=(1, 2))
    return pixel_losses.mean(axis=(1, 2)), shape


@pytest.mark.parametrize("e_mode", E_MODES)
def test_per_pixel_e_weights_each_mismatched_pixel_by_its_own_distance(e_mode):
    y_true, logits = targets_and_logits(0)
    y_pred = softmax(logits).astype(np.float32)
    log_loss, shape = terms_numpy(y_true, y_pred, "pixel")
    got = shape_aware_loss(y_true, y_pred, weight=0.7, e_mode=e_mode, e_per="pixel")
    np.testing.assert_allclose(to_numpy(got), log_loss + 0.7 * shape, rtol=1e-5)
    # The per-image reading gives another number on the same batch.
    _, image_shape = terms_numpy(y_true, y_pred, "image")
    assert not np.allclose(shape, image_shape, rtol=1e-2)


def test_per_pixel_e_of_one_wrong_pixel_by_hand():
    # 1 x 2 patch, background truth; pixel 1 is predicted vertebra with certainty, 3 px away.
    y_true = np.zeros((1, 1, 2, 2), np.float32)
    y_true[..., 1] = [[1.0, 3.0]]
    y_pred = np.full((1, 1, 2, 2), 0.5, np.float32)
    y_pred[0, 0, 1] = [0.0, 1.0]
    expected = 3.0 * -np.log(np.float32(EPSILON)) / 2
    np.testing.assert_allclose(to_numpy(shape_term(y_true, y_pred, e_per="pixel")), [expected],
                               rtol=1e-6)


@pytest.mark.parametrize("e_per", ["image", "pixel"])
@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_balanced_weight_makes_the_two_terms_equal(e_per, weight):
    y_true, logits = targets_and_logits(1)
    y_pred = softmax(logits).astype(np.float32)
    log_loss, shape = terms_numpy(y_true, y_pred, e_per)
    ratio = min(log_loss.sum() / shape.sum(), 10.0)
    assert ratio < 10.0  # the cap is not what is tested here
    results = [
        to_numpy(shape_aware_loss(y_true, y_pred, weight=weight, e_mode=mode, e_per=e_per,
                                  weighting="balanced"))
        for mode in E_MODES
    ]
    for got in results:
        np.testing.assert_allclose(got, log_loss + weight * ratio * shape, rtol=1e-5)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)
    # With weight 1 the batch's shape term is exactly as large as its log loss.
    if weight == 1.0:
        assert results[0].sum() == pytest.approx(2 * log_loss.sum(), rel=1e-5)


def test_balanced_weight_is_capped_and_survives_a_perfect_batch():
    np.testing.assert_allclose(to_numpy(balanced_weight([1.0, 3.0], [0.1, 0.1], 5.0)), 5.0)
    np.testing.assert_allclose(to_numpy(balanced_weight([1.0, 3.0], [0.0, 0.0], 5.0)), 5.0)
    np.testing.assert_allclose(to_numpy(balanced_weight([1.0, 3.0], [1.0, 1.0], 5.0)), 2.0)
    # A prediction equal to the truth has no shape term: the loss is the log loss.
    y_true, _ = targets_and_logits(2)
    perfect = np.stack([1 - y_true[..., 0], y_true[..., 0]], axis=-1) * 0.8 + 0.1
    log_loss, _ = terms_numpy(y_true, perfect, "image")
    got = shape_aware_loss(y_true, perfect, weighting="balanced")
    np.testing.assert_allclose(to_numpy(got), log_loss, rtol=1e-6)


@pytest.mark.parametrize("e_mode", E_MODES)
def test_the_loss_applies_its_max_balanced_weight_when_the_ratio_exceeds_it(e_mode):
    y_true, logits = targets_and_logits(8)
    y_pred = softmax(logits).astype(np.float32)
    log_loss, shape = terms_numpy(y_true, y_pred, "image")
    cap = 0.5 * log_loss.sum() / shape.sum()  # half the batch's ratio: the cap binds
    loss = ShapeAwareLoss(weight=2.0, e_mode=e_mode, weighting="balanced",
                          max_balanced_weight=cap)
    np.testing.assert_allclose(float(loss(y_true, y_pred)), (log_loss + 2.0 * cap * shape).mean(),
                               rtol=1e-5)


@pytest.mark.parametrize("e_mode", E_MODES)
def test_balanced_per_pixel_warm_up_combined_matches_numpy(e_mode):
    y_true, logits = targets_and_logits(9)
    y_pred = softmax(logits).astype(np.float32)
    log_loss, shape = terms_numpy(y_true, y_pred, "pixel")
    ratio = log_loss.sum() / shape.sum()
    assert ratio < 10.0  # below the default cap
    for epoch, expected in ((0, log_loss), (3, log_loss + 0.4 * ratio * shape)):
        got = shape_aware_loss(y_true, y_pred, weight=0.4, e_mode=e_mode, e_per="pixel",
                               weighting="balanced", warmup_epochs=3, epoch=epoch)
        np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5)


@pytest.mark.parametrize("e_mode", E_MODES)
def test_balanced_gradient_holds_the_ratio_constant(e_mode):
    y_true, logits = targets_and_logits(3, batch=2)
    probabilities = softmax(logits.astype(np.float64))
    log_loss, shape = terms_numpy(y_true, probabilities, "image")
    ratio = log_loss.sum() / shape.sum()
    error = image_error_numpy(probabilities, y_true[..., 1])
    onehot = np.stack([1 - y_true[..., 0], y_true[..., 0]], axis=-1)
    pixel_weight = 1.0 + ratio * error[:, None, None] * mismatch_numpy(y_true, probabilities)
    batch, height, width = y_true.shape[:3]
    expected = (probabilities - onehot) * pixel_weight[..., None] / (height * width * batch)
    logits_variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss = ShapeAwareLoss(weighting="balanced", e_mode=e_mode)(
            y_true, keras.ops.softmax(logits_variable, axis=-1)
        )
    np.testing.assert_allclose(tape.gradient(loss, logits_variable).numpy(), expected,
                               atol=1e-7, rtol=1e-4)


@pytest.mark.parametrize("e_mode", E_MODES)
def test_warm_up_switches_the_shape_term_on_at_epoch_k(e_mode):
    y_true, logits = targets_and_logits(4)
    y_pred = softmax(logits).astype(np.float32)
    log_loss, shape = terms_numpy(y_true, y_pred, "image")
    for epoch, expected in ((0, log_loss), (1, log_loss), (2, log_loss + shape),
                            (5, log_loss + shape)):
        got = shape_aware_loss(y_true, y_pred, e_mode=e_mode, warmup_epochs=2, epoch=epoch)
        np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5)
    with pytest.raises(ConfigError, match="epoch"):
        shape_aware_loss(y_true, y_pred, warmup_epochs=2)


def test_warm_up_variable_is_read_when_the_compiled_step_runs():
    y_true, logits = targets_and_logits(5)
    y_pred = softmax(logits).astype(np.float32)
    log_loss, shape = terms_numpy(y_true, y_pred, "image")
    loss = ShapeAwareLoss(warmup_epochs=1)
    step = tf.function(lambda: loss(y_true, y_pred))
    assert loss.set_epoch(0) is False
    np.testing.assert_allclose(float(step()), log_loss.mean(), rtol=1e-5)
    assert loss.set_epoch(1) is True
    np.testing.assert_allclose(float(step()), (log_loss + shape).mean(), rtol=1e-5)
    assert loss.set_epoch(2) is False


def test_shape_warmup_callback_drives_model_fit():
    # A 1x1 convolution that does not learn (learning rate 0): each epoch's logged loss is the
    # loss of the same predictions, off for epoch 1 and on from epoch 2.
    keras.utils.set_random_seed(0)
    y_true, _ = targets_and_logits(6, batch=4)
    x = np.random.default_rng(6).normal(size=(4, 5, 5, 1)).astype(np.float32)
    model = keras.Sequential(
        [keras.Input((5, 5, 1)), keras.layers.Conv2D(2, 1, activation="softmax")]
    )
    loss = ShapeAwareLoss(warmup_epochs=1)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    y_pred = to_numpy(model(x))
    log_loss, shape = terms_numpy(y_true, y_pred, "image")
    history = model.fit(x, y_true, batch_size=4, epochs=3, callbacks=[ShapeWarmup()], verbose=0)
    np.testing.assert_allclose(
        history.history["loss"],
        [log_loss.mean(), (log_loss + shape).mean(), (log_loss + shape).mean()],
        rtol=1e-5,
    )
    assert shape.mean() > 0.1 * log_loss.mean()


def test_every_option_survives_the_config_round_trip():
    loss = ShapeAwareLoss(weight=0.3, e_mode="py_function", e_per="pixel",
                          weighting="balanced", warmup_epochs=4, max_balanced_weight=7.0)
    config = loss.get_config()
    assert {key: config[key] for key in
            ("weight", "e_mode", "e_per", "weighting", "warmup_epochs", "max_balanced_weight")} == {
        "weight": 0.3, "e_mode": "py_function", "e_per": "pixel", "weighting": "balanced",
        "warmup_epochs": 4, "max_balanced_weight": 7.0,
    }
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, ShapeAwareLoss)
    assert restored.get_config() == config
    y_true, logits = targets_and_logits(7)
    y_pred = softmax(logits).astype(np.float32)
    for epoch in (0, 4):
        loss.set_epoch(epoch)
        restored.set_epoch(epoch)
        np.testing.assert_allclose(float(restored(y_true, y_pred)), float(loss(y_true, y_pred)),
                                   rtol=1e-6)


@pytest.mark.parametrize(
    "options, field",
    [({"e_per": "vertebra"}, "e_per"), ({"weighting": "auto"}, "weighting"),
     ({"warmup_epochs": -1}, "warmup_epochs"), ({"warmup_epochs": 1.5}, "warmup_epochs"),
     ({"max_balanced_weight": -2.0}, "max_balanced_weight")],
)
def test_bad_variant_options_raise_config_error(options, field):
    with pytest.raises(ConfigError, match=field):
        ShapeAwareLoss(**options)
