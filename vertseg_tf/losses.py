"""The paper's losses (Al Arif et al., Eq. 2-5) with `keras.ops` only: any backend, under XLA.

`y_true` has shape (B, H, W, 2): channel 0 is the ground-truth mask {0, 1}, channel 1 the
distance in patch pixels from each pixel centre to the ground-truth curve. `y_pred` is the
model's softmax, (B, H, W, 2), channel 1 = vertebra. Every function returns one value per sample.

- Pixel log loss (Eq. 2-3): the mean over pixels of -sum_j y_j log p_j.
- E (Eq. 4): the mean ground-truth distance over the boundary pixels of the predicted mask.
- Shape-aware loss (Eq. 5): log loss + weight * mean over pixels of
  [prediction != ground truth] * E * pixel log loss.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from vertseg_tf.channels import (
    BACKGROUND,
    DISTANCE_CHANNEL,
    E_MODES,
    MASK_CHANNEL,
    VERTEBRA,
    predicted_mask,
    true_mask,
)
from vertseg_tf.errors import ConfigError

__all__ = [
    "E_MODES",
    "PixelLogLoss",
    "ShapeAwareLoss",
    "boundary_mask",
    "pixel_log_loss",
    "shape_aware_loss",
    "shape_error",
]

def _pixel_log_losses(y_true, y_pred):
    """Per-pixel -sum_j y_j log p_j, shape (B, H, W); the one-hot target is the mask channel."""
    y_pred = ops.cast(y_pred, "float32")
    target = ops.cast(y_true[..., MASK_CHANNEL], "float32")
    probabilities = ops.clip(y_pred, keras.config.epsilon(), 1.0)
    return -(
        (1.0 - target) * ops.log(probabilities[..., BACKGROUND])
        + target * ops.log(probabilities[..., VERTEBRA])
    )


def pixel_log_loss(y_true, y_pred):
    """Pixel-wise log loss (Eq. 2-3), averaged over the pixels of each sample.

    Args:
        y_true: (B, H, W, 2) targets; channel 0 is the mask {0, 1} (channel 1 is unused here).
        y_pred: (B, H, W, 2) softmax probabilities; clipped to [epsilon, 1] before the log.

    Returns:
        (B,) float32 losses.

    Example:
        >>> import numpy as np
        >>> y_true = np.zeros((1, 2, 2, 2), "float32")
        >>> y_pred = np.full((1, 2, 2, 2), 0.5, "float32")
        >>> round(float(pixel_log_loss(y_true, y_pred)[0]), 4)  # log 2
        0.6931
    """
    return ops.mean(_pixel_log_losses(y_true, y_pred), axis=(1, 2))


def boundary_mask(mask):
    """Boundary pixels of binary masks: mask pixels with a 4-neighbour outside the mask.

    Pixels outside the patch count as outside the mask, so mask pixels on the patch border are
    boundary pixels.

    Args:
        mask: (B, H, W) masks with values {0, 1}.

    Returns:
        (B, H, W) float32 {0, 1}.
    """
    mask = ops.cast(mask, "float32")
    padded = ops.pad(mask, [[0, 0], [1, 1], [1, 1]])
    interior = (
        mask
        * padded[:, :-2, 1:-1]
        * padded[:, 2:, 1:-1]
        * padded[:, 1:-1, :-2]
        * padded[:, 1:-1, 2:]
    )
    return mask - interior


def shape_error(y_pred, dist_map):
    """E of Eq. 4 per sample: mean ground-truth distance over the predicted mask's boundary.

    The predicted mask is the argmax of `y_pred`; its boundary pixels are given by
    `boundary_mask`. An empty prediction has E = the largest value of its distance map. E
    carries no gradient.

    Args:
        y_pred: (B, H, W, 2) softmax probabilities.
        dist_map: (B, H, W) distance from each pixel centre to the ground-truth curve
            (channel 1 of `y_true`).

    Returns:
        (B,) float32.

    Example:
        >>> import numpy as np
        >>> y_pred = np.zeros((1, 3, 3, 2), "float32"); y_pred[..., 0] = 1  # empty prediction
        >>> float(shape_error(y_pred, np.arange(9, dtype="float32").reshape(1, 3, 3))[0])
        8.0
    """
    dist_map = ops.cast(dist_map, "float32")
    boundary = boundary_mask(predicted_mask(ops.cast(y_pred, "float32")))
    count = ops.sum(boundary, axis=(1, 2))
    total = ops.sum(boundary * dist_map, axis=(1, 2))
    mean_on_boundary = total / ops.maximum(count, 1.0)
    error = ops.where(count > 0, mean_on_boundary, ops.max(dist_map, axis=(1, 2)))
    return ops.stop_gradient(error)


def _check_loss_options(weight: float, e_mode: str) -> float:
    if e_mode not in E_MODES:
        raise ConfigError(f"e_mode: expected one of {', '.join(E_MODES)}, got {e_mode!r}")
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise ConfigError(f"weight: expected a number, got {weight!r}") from None
    if not weight >= 0.0 or weight == float("inf"):
        raise ConfigError(f"weight: expected a finite number >= 0, got {weight!r}")
    return weight


def _shape_error_function(e_mode: str):
    if e_mode == "graph":
        return shape_error
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"e_mode 'py_function' needs the TensorFlow backend (running "
            f"{keras.backend.backend()!r}); use e_mode 'graph'"
        )
    from vertseg_tf.shape_error_host import shape_error_py_function

    return shape_error_py_function


def shape_aware_loss(y_true, y_pred, weight: float = 1.0, e_mode: str = "graph"):
    """The paper's total loss (Eq. 5) per sample: log loss + weight * shape term.

    The shape term is the mean over pixels of [argmax prediction != ground truth] * E * pixel
    log loss, with E from `shape_error` held constant. `weight=1` is the paper's UNet-S.

    Args:
        y_true: (B, H, W, 2); channel 0 the mask, channel 1 the distance map.
        y_pred: (B, H, W, 2) softmax probabilities.
        weight: weight of the shape term, >= 0; 0 gives exactly `pixel_log_loss`.
        e_mode: `"graph"` (keras.ops, any backend, XLA) or `"py_function"` (the TensorFlow
            host reference of `vertseg_tf.shape_error_host`; not usable under XLA).

    Returns:
        (B,) float32 losses.

    Raises:
        ConfigError: a negative weight or an unknown `e_mode`.

    Example:
        >>> import numpy as np
        >>> y_true = np.zeros((1, 2, 2, 2), "float32")
        >>> y_pred = np.full((1, 2, 2, 2), 0.5, "float32")
        >>> bool(shape_aware_loss(y_true, y_pred)[0] == pixel_log_loss(y_true, y_pred)[0])
        True
    """
    weight = _check_loss_options(weight, e_mode)
    pixel_losses = _pixel_log_losses(y_true, y_pred)
    error = _shape_error_function(e_mode)(y_pred, y_true[..., DISTANCE_CHANNEL])
    mismatch = ops.cast(ops.not_equal(predicted_mask(y_pred), true_mask(y_true)), "float32")
    shape_term = ops.mean(mismatch * error[:, None, None] * pixel_losses, axis=(1, 2))
    return ops.mean(pixel_losses, axis=(1, 2)) + weight * shape_term


@keras.saving.register_keras_serializable(package="vertseg_tf")
class PixelLogLoss(keras.losses.Loss):
    """Pixel-wise log loss (Eq. 2-3) as a Keras loss; see `pixel_log_loss`.

    Args:
        name: the loss's name.
        reduction: Keras reduction over the per-sample values.
        dtype: the loss's dtype policy (default float32).

    Example:
        >>> model.compile(optimizer="adam", loss=PixelLogLoss())  # doctest: +SKIP

    Reference:
        Al Arif, Knapp, Slabaugh, "Shape-aware Deep Convolutional Neural Network for Vertebrae
        Segmentation", Eq. 2-3.
    """

    def __init__(self, name: str = "pixel_log_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return pixel_log_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="vertseg_tf")
class ShapeAwareLoss(keras.losses.Loss):
    """Log loss plus the paper's shape-aware term (Eq. 5); see `shape_aware_loss`.

    Args:
        weight: weight of the shape term, >= 0 (1 = the paper; 0 = the plain log loss).
        e_mode: how E is computed: `"graph"` (keras.ops; any backend, XLA, tf.distribute,
            SavedModel) or `"py_function"` (the `tf.py_function` reference; TensorFlow only,
            compile the model with `jit_compile=False`).
        name: the loss's name.
        reduction: Keras reduction over the per-sample values.
        dtype: the loss's dtype policy (default float32).

    Example:
        >>> model = vertseg_tf.build_unet("demo")  # doctest: +SKIP
        >>> model.compile(optimizer="adam", loss=ShapeAwareLoss(weight=1.0))  # doctest: +SKIP
        >>> model.fit(patches, y_true, batch_size=25, epochs=30)  # doctest: +SKIP

    Reference:
        Al Arif, Knapp, Slabaugh, "Shape-aware Deep Convolutional Neural Network for Vertebrae
        Segmentation", Eq. 4-5.
    """

    def __init__(
        self,
        weight: float = 1.0,
        e_mode: str = "graph",
        name: str = "shape_aware_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.weight = _check_loss_options(weight, e_mode)
        self.e_mode = e_mode

    def call(self, y_true, y_pred):
        return shape_aware_loss(y_true, y_pred, weight=self.weight, e_mode=self.e_mode)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight": self.weight, "e_mode": self.e_mode}
