"""Keras metrics for training logs (keras.ops only): pixel accuracy, Dice and mean E.

They read `y_true` of shape (B, H, W, 2) (channel 0 the mask, channel 1 the distance map) and
the model's softmax `y_pred`, take the argmax mask (vertebra where p1 > p0) and average a
per-sample value over every sample seen. The evaluation tables use
`vertseg_tf.evaluation.metrics` on the final masks; these are the running training numbers.
"""

from __future__ import annotations

import keras
from keras import ops

from vertseg_tf.channels import DISTANCE_CHANNEL, predicted_mask, true_mask
from vertseg_tf.losses import shape_error

__all__ = [
    "DiceCoefficient",
    "MeanShapeError",
    "PixelAccuracy",
    "dice_coefficient",
    "pixel_accuracy_fraction",
]


def _masks(y_true, y_pred):
    predicted = ops.cast(predicted_mask(y_pred), "float32")
    true = ops.cast(true_mask(y_true), "float32")
    return true, predicted


def pixel_accuracy_fraction(y_true, y_pred):
    """Share of pixels whose argmax class equals the ground truth (Eq. 7 as a fraction), (B,).

    Example:
        >>> import numpy as np
        >>> y_true = np.zeros((1, 1, 4, 2), "float32"); y_true[0, 0, :1, 0] = 1
        >>> y_pred = np.zeros((1, 1, 4, 2), "float32"); y_pred[..., 0] = 1  # all background
        >>> float(pixel_accuracy_fraction(y_true, y_pred)[0])
        0.75
    """
    true, predicted = _masks(y_true, y_pred)
    return ops.mean(ops.cast(ops.equal(true, predicted), "float32"), axis=(1, 2))


def dice_coefficient(y_true, y_pred):
    """Dice of the vertebra class (Eq. 6): 2TP / (2TP + FP + FN) per sample, (B,).

    Both masks empty gives 1 (perfect agreement).

    Example:
        >>> import numpy as np
        >>> y_true = np.zeros((1, 1, 4, 2), "float32"); y_true[0, 0, :2, 0] = 1
        >>> y_pred = np.zeros((1, 1, 4, 2), "float32"); y_pred[..., 1] = 1  # all vertebra
        >>> round(float(dice_coefficient(y_true, y_pred)[0]), 4)  # 4 / (4 + 2)
        0.6667
    """
    true, predicted = _masks(y_true, y_pred)
    overlap = 2.0 * ops.sum(true * predicted, axis=(1, 2))
    total = ops.sum(true, axis=(1, 2)) + ops.sum(predicted, axis=(1, 2))
    return ops.where(total > 0, overlap / ops.maximum(total, 1.0), 1.0)


class _PerSampleMean(keras.metrics.Mean):
    """Mean of a per-sample value `self._per_sample(y_true, y_pred)` over all samples seen."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        return super().update_state(self._per_sample(y_true, y_pred), sample_weight)


@keras.saving.register_keras_serializable(package="vertseg_tf")
class PixelAccuracy(_PerSampleMean):
    """Mean pixel accuracy (fraction of correct argmax pixels); see `pixel_accuracy_fraction`.

    Args:
        name: the metric's name.
        dtype: the metric's dtype.

    Example:
        >>> model.compile(loss=ShapeAwareLoss(), metrics=[PixelAccuracy()])  # doctest: +SKIP
    """

    def __init__(self, name: str = "pixel_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    @staticmethod
    def _per_sample(y_true, y_pred):
        return pixel_accuracy_fraction(y_true, y_pred)


@keras.saving.register_keras_serializable(package="vertseg_tf")
class DiceCoefficient(_PerSampleMean):
    """Mean per-sample Dice of the vertebra class; see `dice_coefficient`.

    Args:
        name: the metric's name.
        dtype: the metric's dtype.

    Example:
        >>> model.compile(loss=ShapeAwareLoss(), metrics=[DiceCoefficient()])  # doctest: +SKIP
    """

    def __init__(self, name: str = "dice", dtype=None):
        super().__init__(name=name, dtype=dtype)

    @staticmethod
    def _per_sample(y_true, y_pred):
        return dice_coefficient(y_true, y_pred)


@keras.saving.register_keras_serializable(package="vertseg_tf")
class MeanShapeError(_PerSampleMean):
    """Mean E (Eq. 4, in patch pixels) of the predictions; see `vertseg_tf.losses.shape_error`.

    Args:
        name: the metric's name.
        dtype: the metric's dtype.

    Example:
        >>> model.compile(loss=ShapeAwareLoss(), metrics=[MeanShapeError()])  # doctest: +SKIP
    """

    def __init__(self, name: str = "shape_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    @staticmethod
    def _per_sample(y_true, y_pred):
        return shape_error(y_pred, y_true[..., DISTANCE_CHANNEL])
