"""The channel contract of the training targets and the model's output, and the argmax mask.

`y_true` (N, 64, 64, 2): channel `MASK_CHANNEL` is the ground-truth mask (1 = vertebra),
channel `DISTANCE_CHANNEL` the distance map D (each pixel's exact distance to the ground-truth
outline, in patch pixels). The model's softmax `y_pred` / `probabilities` (N, 64, 64, 2):
channel `BACKGROUND` and channel `VERTEBRA`. The predicted mask is the argmax: vertebra where
p1 > p0, so a tie is background. Every module that takes these apart uses the names here;
see docs/architecture.md (the y_true contract).

Plain indexing and comparison only: works on numpy arrays, TensorFlow and JAX tensors alike.
"""

from __future__ import annotations

__all__ = [
    "BACKGROUND",
    "DISTANCE_CHANNEL",
    "E_MODES",
    "E_PER",
    "MASK_CHANNEL",
    "VERTEBRA",
    "WEIGHTINGS",
    "predicted_mask",
    "true_mask",
]

MASK_CHANNEL = 0
DISTANCE_CHANNEL = 1
BACKGROUND = 0
VERTEBRA = 1
E_MODES = ("graph", "py_function")
"""How E (Eq. 4: the mean of the distance channel over the predicted mask's boundary) is
computed: "graph" (`vertseg_tf.losses.shape_error`, keras.ops) or "py_function" (the host
reference `vertseg_tf.shape_error_host`)."""
E_PER = ("image", "pixel")
"""What weights a mismatched pixel in the shape term: the image's E ("image", Eq. 4) or the
pixel's own distance channel ("pixel"); see `vertseg_tf.losses.ShapeAwareLoss`."""
WEIGHTINGS = ("fixed", "balanced")
"""The shape term's weight: fixed, or balanced against the log loss in every batch."""


def predicted_mask(probabilities):
    """The argmax mask of (..., 2) class probabilities: True where p1 > p0 (a tie is background).

    Args:
        probabilities: (..., 2) softmax output, numpy or a backend tensor.

    Returns:
        (...) boolean mask of the same kind as the input.

    Example:
        >>> import numpy as np
        >>> predicted_mask(np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])).tolist()
        [True, False, False]
    """
    return probabilities[..., VERTEBRA] > probabilities[..., BACKGROUND]


def true_mask(y_true):
    """The ground-truth mask of (..., 2) targets: True where channel `MASK_CHANNEL` > 0.5.

    Example:
        >>> import numpy as np
        >>> true_mask(np.array([[1.0, 0.0], [0.0, 3.5]])).tolist()
        [True, False]
    """
    return y_true[..., MASK_CHANNEL] > 0.5
