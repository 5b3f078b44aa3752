"""The reference E (Eq. 4) through `tf.py_function`: boundary pixels found on the host with SciPy.

This is the path the paper's description suggests (locate the boundary pixels of the predicted
mask, then look the ground-truth distances up). It is TensorFlow-only, runs on the host outside
the graph and cannot be compiled by XLA; `vertseg_tf.losses.shape_error` is the graph path that
must give the same numbers (to 1e-5) everywhere else.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import tensorflow as tf

from vertseg_tf.channels import predicted_mask

__all__ = ["boundary_pixels_numpy", "shape_error_numpy", "shape_error_py_function"]

_FOUR_CONNECTED = scipy.ndimage.generate_binary_structure(2, 1)


def boundary_pixels_numpy(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask; outside the patch counts as outside.

    Args:
        mask: (H, W) boolean mask.

    Returns:
        (H, W) boolean boundary: the mask minus its erosion by the 4-connected cross with
        `border_value=0` (so mask pixels on the patch border are boundary pixels).
    """
    mask = np.asarray(mask, dtype=bool)
    interior = scipy.ndimage.binary_erosion(mask, structure=_FOUR_CONNECTED, border_value=0)
    return mask & ~interior


def shape_error_numpy(y_pred: np.ndarray, dist_map: np.ndarray) -> np.ndarray:
    """E per sample on the host: mean of `dist_map` over the predicted mask's boundary pixels.

    Args:
        y_pred: (B, H, W, 2) softmax probabilities; the mask is their argmax
            (`vertseg_tf.channels.predicted_mask`).
        dist_map: (B, H, W) ground-truth distance maps.

    Returns:
        (B,) float32; an empty prediction gives the largest value of its distance map.
    """
    y_pred = np.asarray(y_pred)
    dist_map = np.asarray(dist_map, dtype=np.float64)
    errors = np.empty(len(y_pred), dtype=np.float32)
    for index, (probabilities, distances) in enumerate(zip(y_pred, dist_map, strict=True)):
        boundary = boundary_pixels_numpy(predicted_mask(probabilities))
        errors[index] = distances[boundary].mean() if boundary.any() else distances.max()
    return errors


def shape_error_py_function(y_pred, dist_map) -> tf.Tensor:
    """E per sample (Eq. 4) via `tf.py_function` calling `shape_error_numpy`; no gradient.

    Args:
        y_pred: (B, H, W, 2) softmax probabilities.
        dist_map: (B, H, W) ground-truth distance maps.

    Returns:
        (B,) float32 tensor with a static shape of `y_pred.shape[:1]`.

    Example:
        >>> import numpy as np
        >>> y_pred = np.zeros((1, 3, 3, 2), "float32"); y_pred[..., 1] = 1  # full prediction
        >>> dist = np.arange(9, dtype="float32").reshape(1, 3, 3)
        >>> float(shape_error_py_function(y_pred, dist)[0])  # all but the centre (4): 32 / 8
        4.0
    """
    y_pred = tf.convert_to_tensor(y_pred)
    dist_map = tf.convert_to_tensor(dist_map)
    errors = tf.py_function(shape_error_numpy, [y_pred, dist_map], Tout=tf.float32)
    errors.set_shape(y_pred.shape[:1])
    return tf.stop_gradient(errors)
