"""The paper's losses (Al Arif et al., Eq. 2-5) with `keras.ops` only: any backend, under XLA.

`y_true` has shape (B, H, W, 2): channel 0 is the ground-truth mask {0, 1}, channel 1 the
distance in patch pixels from each pixel centre to the ground-truth curve. `y_pred` is the
model's softmax, (B, H, W, 2), channel 1 = vertebra. Every function returns one value per sample.

- Pixel log loss (Eq. 2-3): the mean over pixels of -sum_j y_j log p_j.
- E (Eq. 4): the mean ground-truth distance over the boundary pixels of the predicted mask.
- Shape-aware loss (Eq. 5): log loss + weight * mean over pixels of
  [prediction != ground truth] * E * pixel log loss.

`ShapeAwareLoss` also holds the readings the paper leaves open (the loss ablation): a w that
balances the two terms, E per pixel instead of per image, and a warm-up of k epochs.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from vertseg_tf.channels import (
    BACKGROUND,
    DISTANCE_CHANNEL,
    E_MODES,
    E_PER,
    MASK_CHANNEL,
    VERTEBRA,
    WEIGHTINGS,
    predicted_mask,
    true_mask,
)
from vertseg_tf.errors import ConfigError

__all__ = [
    "E_MODES",
    "E_PER",
    "WEIGHTINGS",
    "PixelLogLoss",
    "ShapeAwareLoss",
    "ShapeWarmup",
    "balanced_weight",
    "boundary_mask",
    "pixel_log_loss",
    "shape_aware_loss",
    "shape_error",
    "shape_term",
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


def _check_loss_options(
    weight, e_mode: str, e_per: str, weighting: str, warmup_epochs, max_balanced_weight
) -> tuple[float, int, float]:
    """Validate the shape term's options; returns (weight, warmup_epochs, max_balanced_weight)."""
    for field, value, choices in (
        ("e_mode", e_mode, E_MODES), ("e_per", e_per, E_PER), ("weighting", weighting, WEIGHTINGS)
    ):
        if value not in choices:
            raise ConfigError(f"{field}: expected one of {', '.join(choices)}, got {value!r}")
    numbers = []
    for field, value in (("weight", weight), ("max_balanced_weight", max_balanced_weight)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{field}: expected a number, got {value!r}") from None
        if not value >= 0.0 or value == float("inf"):
            raise ConfigError(f"{field}: expected a finite number >= 0, got {value!r}")
        numbers.append(value)
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
        raise ConfigError(f"warmup_epochs: expected an integer >= 0, got {warmup_epochs!r}")
    return numbers[0], warmup_epochs, numbers[1]


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


def shape_term(y_true, y_pred, e_mode: str = "graph", e_per: str = "image"):
    """The shape term L_s per sample, without its weight: mean over pixels of
    [argmax prediction != ground truth] * E * pixel log loss.

    Args:
        y_true: (B, H, W, 2); channel 0 the mask, channel 1 the distance map.
        y_pred: (B, H, W, 2) softmax probabilities.
        e_mode: how the per-image E is found, `"graph"` or `"py_function"` (see
            `ShapeAwareLoss`); unused with `e_per="pixel"`, which needs no boundary search.
        e_per: `"image"`: E is the image's scalar of Eq. 4 (`shape_error`), the same for
            every mismatched pixel; `"pixel"`: each mismatched pixel is weighted by its own
            ground-truth distance (channel 1 of `y_true`), a reading of the paper's `E_i`.

    Returns:
        (B,) float32; no gradient flows through E.

    Example:
        >>> import numpy as np
        >>> y_true = np.zeros((1, 1, 2, 2), "float32"); y_true[..., 1] = [[1.0, 3.0]]
        >>> y_pred = np.full((1, 1, 2, 2), 0.5, "float32"); y_pred[0, 0, 1] = [0.0, 1.0]
        >>> round(float(shape_term(y_true, y_pred, e_per="pixel")[0]), 3)  # 3 * 16.118 / 2
        24.177
    """
    pixel_losses = _pixel_log_losses(y_true, y_pred)
    mismatch = ops.cast(ops.not_equal(predicted_mask(y_pred), true_mask(y_true)), "float32")
    distances = y_true[..., DISTANCE_CHANNEL]
    if e_per == "pixel":
        error = ops.stop_gradient(ops.cast(distances, "float32"))
    else:
        error = _shape_error_function(e_mode)(y_pred, distances)[:, None, None]
    return ops.mean(mismatch * error * pixel_losses, axis=(1, 2))


def balanced_weight(log_losses, shape_terms, max_weight: float = 10.0):
    """The batch's weight that makes the shape term as large as the log loss.

    `sum(log losses) / sum(shape terms)` over the batch, held constant (no gradient), capped
    at `max_weight` (when the prediction is almost right the shape term tends to 0 and the
    ratio to infinity).

    Args:
        log_losses: (B,) pixel log losses.
        shape_terms: (B,) unweighted shape terms (`shape_term`).
        max_weight: the cap, >= 0.

    Returns:
        A float32 scalar in [0, max_weight].

    Example:
        >>> float(balanced_weight([1.0, 2.0], [0.5, 1.0]))
        2.0
    """
    log_sum = ops.sum(ops.cast(log_losses, "float32"))
    shape_sum = ops.sum(ops.cast(shape_terms, "float32"))
    ratio = log_sum / ops.maximum(shape_sum, keras.config.epsilon())
    return ops.stop_gradient(ops.minimum(ratio, max_weight))


def shape_aware_loss(
    y_true,
    y_pred,
    weight: float = 1.0,
    e_mode: str = "graph",
    *,
    e_per: str = "image",
    weighting: str = "fixed",
    warmup_epochs: int = 0,
    epoch=None,
    max_balanced_weight: float = 10.0,
):
    """The paper's total loss (Eq. 5) per sample: log loss + w * shape term.

    With the defaults this is the paper's UNet-S as the design card reads it: w = `weight`
    = 1 and E the per-image scalar of Eq. 4. The options are the study's ablation variants;
    `ShapeAwareLoss` documents each.

    Args:
        y_true: (B, H, W, 2); channel 0 the mask, channel 1 the distance map.
        y_pred: (B, H, W, 2) softmax probabilities.
        weight: w for `weighting="fixed"`; the multiplier of the balancing ratio for
            `"balanced"`. >= 0; 0 gives exactly `pixel_log_loss`.
        e_mode: `"graph"` (keras.ops, any backend, XLA) or `"py_function"` (the TensorFlow
            host reference of `vertseg_tf.shape_error_host`; not usable under XLA).
        e_per: `"image"` (Eq. 4) or `"pixel"` (see `shape_term`).
        weighting: `"fixed"` or `"balanced"` (w = weight * `balanced_weight` of the batch).
        warmup_epochs: the shape term is off while `epoch < warmup_epochs`.
        epoch: the 0-based index of the epoch being trained (a tensor, variable or int);
            needed when `warmup_epochs > 0`.
        max_balanced_weight: the cap of the balancing ratio.

    Returns:
        (B,) float32 losses.

    Raises:
        ConfigError: a bad option, or `warmup_epochs > 0` without `epoch`.

    Example:
        >>> import numpy as np
        >>> y_true = np.zeros((1, 2, 2, 2), "float32")
        >>> y_pred = np.full((1, 2, 2, 2), 0.5, "float32")
        >>> bool(shape_aware_loss(y_true, y_pred)[0] == pixel_log_loss(y_true, y_pred)[0])
        True
    """
    weight, warmup_epochs, max_balanced_weight = _check_loss_options(
        weight, e_mode, e_per, weighting, warmup_epochs, max_balanced_weight
    )
    if warmup_epochs and epoch is None:
        raise ConfigError("warmup_epochs: the loss needs the current epoch (pass epoch=...)")
    log_losses = pixel_log_loss(y_true, y_pred)
    shape_terms = shape_term(y_true, y_pred, e_mode=e_mode, e_per=e_per)
    effective = ops.convert_to_tensor(weight, "float32")
    if weighting == "balanced":
        effective = effective * balanced_weight(log_losses, shape_terms, max_balanced_weight)
    if warmup_epochs:
        switched_on = ops.greater_equal(ops.cast(epoch, "int32"), warmup_epochs)
        effective = effective * ops.cast(switched_on, "float32")
    return log_losses + effective * shape_terms


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

    The defaults are the paper's UNet-S as we read it. The other options are the readings the
    paper leaves open, for the loss ablation (docs/reproducing.md):

    - `weight`: w of "L_t + w L_s". The paper: "best performance was achieved when both
      terms contributed equally", read as w = 1.
    - `weighting="balanced"`: the other reading of that sentence, a w that makes the two
      terms equally large: in every batch, w = weight * sum(log loss) / sum(shape term),
      held constant for the gradient and capped at `max_balanced_weight`. It depends on the
      batch only, so it has no state to save or resume.
    - `e_per="pixel"`: each mismatched pixel weighted by its own ground-truth distance
      instead of the image's E of Eq. 4 (the paper writes `E_i` with a pixel index).
    - `warmup_epochs=k`: the shape term is off for the first k epochs (the paper notes that
      E is very large while early predictions are fragmented). The loss reads the epoch from
      its non-trainable variable `epoch`, set by `set_epoch`: the `ShapeWarmup` callback
      does it for `model.fit`, the custom loop passes its epoch counter to
      `shape_aware_loss`; both resume with the epoch they restore.

    Args:
        weight: w (or the balancing ratio's multiplier), >= 0; 0 = the plain log loss.
        e_mode: how the per-image E is computed: `"graph"` (keras.ops; any backend, XLA,
            tf.distribute, SavedModel) or `"py_function"` (the `tf.py_function` reference;
            TensorFlow only, compile the model with `jit_compile=False`).
        e_per: `"image"` (Eq. 4) or `"pixel"`.
        weighting: `"fixed"` or `"balanced"`.
        warmup_epochs: epochs trained on the log loss alone before the shape term starts.
        max_balanced_weight: cap of the balancing ratio.
        name: the loss's name.
        reduction: Keras reduction over the per-sample values.
        dtype: the loss's dtype policy (default float32).

    Example:
        >>> model = vertseg_tf.build_unet("demo")  # doctest: +SKIP
        >>> loss = ShapeAwareLoss(weight=1.0, warmup_epochs=2)  # doctest: +SKIP
        >>> model.compile(optimizer="rmsprop", loss=loss)  # doctest: +SKIP
        >>> model.fit(patches, y_true, epochs=30, callbacks=[ShapeWarmup(loss)])  # doctest: +SKIP

    Reference:
        Al Arif, Knapp, Slabaugh, "Shape-aware Deep Convolutional Neural Network for Vertebrae
        Segmentation", Eq. 4-5.
    """

    def __init__(
        self,
        weight: float = 1.0,
        e_mode: str = "graph",
        e_per: str = "image",
        weighting: str = "fixed",
        warmup_epochs: int = 0,
        max_balanced_weight: float = 10.0,
        name: str = "shape_aware_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.weight, self.warmup_epochs, self.max_balanced_weight = _check_loss_options(
            weight, e_mode, e_per, weighting, warmup_epochs, max_balanced_weight
        )
        self.e_mode, self.e_per, self.weighting = e_mode, e_per, weighting
        self.epoch = None
        if self.warmup_epochs:
            self.epoch = keras.Variable(0, dtype="int32", trainable=False, name="warmup_epoch")

    def set_epoch(self, epoch: int) -> bool:
        """Tell the loss which 0-based epoch is being trained; returns whether the shape
        term's on/off state changed (always False without warm-up)."""
        if self.epoch is None:
            return False
        before = int(keras.ops.convert_to_numpy(self.epoch)) >= self.warmup_epochs
        self.epoch.assign(int(epoch))
        return before != (int(epoch) >= self.warmup_epochs)

    def call(self, y_true, y_pred):
        return shape_aware_loss(
            y_true,
            y_pred,
            weight=self.weight,
            e_mode=self.e_mode,
            e_per=self.e_per,
            weighting=self.weighting,
            warmup_epochs=self.warmup_epochs,
            epoch=self.epoch,
            max_balanced_weight=self.max_balanced_weight,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "weight": self.weight,
            "e_mode": self.e_mode,
            "e_per": self.e_per,
            "weighting": self.weighting,
            "warmup_epochs": self.warmup_epochs,
            "max_balanced_weight": self.max_balanced_weight,
        }


class ShapeWarmup(keras.callbacks.Callback):
    """Tells a `ShapeAwareLoss` with `warmup_epochs` which epoch `model.fit` is training.

    At every epoch start it calls `loss.set_epoch(epoch)`; `fit` numbers the epochs from its
    `initial_epoch`, so a run resumed by `BackupAndRestore` gets the right state. On the
    TensorFlow backend the compiled step reads the variable; on others (JAX traces the
    variable's value into the step) the train and test functions are rebuilt when the term
    switches on.

    Args:
        loss: the compiled `ShapeAwareLoss`; None = the model's compiled loss.

    Example:
        >>> loss = ShapeAwareLoss(warmup_epochs=3)  # doctest: +SKIP
        >>> model.compile(optimizer="rmsprop", loss=loss)  # doctest: +SKIP
        >>> model.fit(x, y_true, epochs=10, callbacks=[ShapeWarmup(loss)])  # doctest: +SKIP
    """

    def __init__(self, loss: ShapeAwareLoss | None = None):
        super().__init__()
        self.loss = loss

    def on_epoch_begin(self, epoch, logs=None):
        loss = self.loss if self.loss is not None else self.model.loss
        if not isinstance(loss, ShapeAwareLoss):
            return
        if loss.set_epoch(epoch) and keras.backend.backend() != "tensorflow":
            self.model.make_train_function(force=True)
            self.model.make_test_function(force=True)
