import keras
import numpy as np
import pytest

from vertseg_tf import build_unet
from vertseg_tf.losses import ShapeAwareLoss
from vertseg_tf.metrics_keras import (
    DiceCoefficient,
    MeanShapeError,
    PixelAccuracy,
    dice_coefficient,
    pixel_accuracy_fraction,
)


def targets(mask, dist):
    return np.stack([mask, dist], axis=-1).astype(np.float32)[None]


def prediction(mask):
    mask = np.asarray(mask, np.float32)
    return np.stack([0.9 - 0.8 * mask, 0.1 + 0.8 * mask], axis=-1)[None]


# 4x4 ground truth: the top-left 2x2 block. Prediction: the top 2 rows (TP 4, FP 4, FN 0).
TRUE_MASK = np.zeros((4, 4))
TRUE_MASK[:2, :2] = 1
PRED_MASK = np.zeros((4, 4))
PRED_MASK[:2, :] = 1
DIST = np.arange(16, dtype=np.float32).reshape(4, 4)


def test_per_sample_functions_on_a_hand_made_case():
    y_true, y_pred = targets(TRUE_MASK, DIST), prediction(PRED_MASK)
    assert float(pixel_accuracy_fraction(y_true, y_pred)[0]) == pytest.approx(12 / 16)
    assert float(dice_coefficient(y_true, y_pred)[0]) == pytest.approx(2 * 4 / (2 * 4 + 4 + 0))


def test_dice_of_two_empty_masks_is_one_and_of_disjoint_masks_zero():
    empty = np.zeros((4, 4))
    assert float(dice_coefficient(targets(empty, DIST), prediction(empty))[0]) == 1.0
    assert float(dice_coefficient(targets(TRUE_MASK, DIST), prediction(1 - TRUE_MASK))[0]) == 0.0


def test_metrics_average_over_batches():
    accuracy, dice, error = PixelAccuracy(), DiceCoefficient(), MeanShapeError()
    batches = [
        (targets(TRUE_MASK, DIST), prediction(PRED_MASK)),
        (targets(TRUE_MASK, DIST), prediction(TRUE_MASK)),
    ]
    for y_true, y_pred in batches:
        for metric in (accuracy, dice, error):
            metric.update_state(y_true, y_pred)
    assert float(accuracy.result()) == pytest.approx((12 / 16 + 1.0) / 2)
    assert float(dice.result()) == pytest.approx((8 / 12 + 1.0) / 2)
    # Every pixel of a 4x4 patch's top two rows is on the border or next to row 2: all 8 count.
    # The 2x2 block: all 4 pixels are boundary pixels.
    first = DIST[:2].mean()
    second = DIST[:2, :2].mean()
    assert float(error.result()) == pytest.approx((first + second) / 2, abs=1e-6)


@pytest.mark.parametrize("metric_class", [PixelAccuracy, DiceCoefficient, MeanShapeError])
def test_metric_serialisation_round_trip(metric_class):
    metric = metric_class(name="renamed")
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(restored) is metric_class
    assert restored.name == "renamed"


def test_metrics_in_model_evaluate():
    model = build_unet("smoke")
    model.compile(
        loss=ShapeAwareLoss(), metrics=[PixelAccuracy(), DiceCoefficient(), MeanShapeError()]
    )
    rng = np.random.default_rng(0)
    patches = rng.random((2, 64, 64, 1), dtype=np.float32)
    y_true = np.zeros((2, 64, 64, 2), np.float32)
    y_true[:, 20:40, 20:40, 0] = 1
    y_true[..., 1] = 3.0  # a constant distance map: E is 3 for any non-empty prediction
    results = model.evaluate(patches, y_true, verbose=0, return_dict=True)
    y_pred = model.predict(patches, verbose=0)
    assert results["pixel_accuracy"] == pytest.approx(
        float(np.mean(pixel_accuracy_fraction(y_true, y_pred))), abs=1e-6
    )
    expected_dice = float(np.mean(dice_coefficient(y_true, y_pred)))
    assert results["dice"] == pytest.approx(expected_dice, abs=1e-6)
    assert results["shape_error"] == pytest.approx(3.0, abs=1e-6)
