"""The test-patch pipeline of `vertseg_tf.data.patches` as TensorFlow ops, for the signatures.

`patch_affines_in_graph` is `vertebra_poses` + `patch_affine` (test alpha, no rotation),
`cut_patches_in_graph` the linear resampling with the border reflected (OpenCV's
`warpAffine` with `BORDER_REFLECT`; TensorFlow's `ImageProjectiveTransformV3` with
`fill_mode="REFLECT"` samples the same points with the same weights) and
`normalise_patches` the per-patch normalisation; `typical_spacing_in_graph` is
`vertseg_tf.locate.heatmaps.typical_spacing`, which bounds a located vertebra's scale.
"""

from __future__ import annotations

import numpy as np

from vertseg_tf.data.patches import FLAT_RELATIVE_STD, PATCH_SIZE, TEST_ALPHA
from vertseg_tf.locate.heatmaps import LOCATED_SCALE_RANGE

__all__ = [
    "cut_patches_in_graph",
    "normalise_patches",
    "patch_affines_in_graph",
    "typical_spacing_in_graph",
]


def typical_spacing_in_graph(points, levels):
    """`typical_spacing` of (N, 2) float64 found centres at the (N,) increasing level numbers
    `levels`: the median distance per level between every two of them; NaN under two."""
    import tensorflow as tf

    gaps = tf.norm(points[:, None] - points[None], axis=-1)
    apart = tf.cast(levels[None, :] - levels[:, None], tf.float64)
    pairs = apart > 0
    steps = tf.boolean_mask(gaps / tf.where(pairs, apart, 1.0), pairs)
    # an infinity after the steps, so that the gathers below are in range for no step too
    ordered = tf.concat([tf.sort(steps), tf.constant([np.inf], tf.float64)], axis=0)
    count = tf.size(steps)
    middle = (tf.gather(ordered, tf.maximum(count - 1, 0) // 2)
              + tf.gather(ordered, count // 2)) / 2.0
    return tf.where(count > 0, middle, tf.constant(np.nan, tf.float64))


def normalise_patches(raw):
    """Per-patch zero mean, unit variance of (N, H, W, C) raw patches, as a TensorFlow graph.

    The definition of `vertseg_tf.data.patches`: mean and population standard deviation of
    each patch in float64; a patch whose standard deviation is at most 1e-6 of its mean
    magnitude becomes all zeros; the result is float32.
    """
    import tensorflow as tf

    values = tf.cast(raw, tf.float64)
    mean = tf.reduce_mean(values, axis=[1, 2, 3], keepdims=True)
    std = tf.sqrt(tf.reduce_mean(tf.square(values - mean), axis=[1, 2, 3], keepdims=True))
    flat = std <= FLAT_RELATIVE_STD * tf.abs(mean)
    normalised = (values - mean) / tf.where(flat, tf.ones_like(std), std)
    return tf.cast(tf.where(flat, tf.zeros_like(normalised), normalised), tf.float32)


def patch_affines_in_graph(centers, levels=None):
    """The (N, 2, 3) float64 image -> patch affines of the test patches of (N, 2) float64
    centres in spine order, N >= 2: the spine axis `c[k+1] - c[k-1]` (one-sided at the ends),
    the scale the mean distance to the neighbouring centres, side `TEST_ALPHA` x the scale.

    With `levels` (N,) the level number of each centre, the scales are
    `vertseg_tf.locate.heatmaps.located_scales`': a step between neighbours counts the levels
    it spans (two levels apart is twice the spacing), and each scale is kept within
    `LOCATED_SCALE_RANGE` times the typical spacing."""
    import tensorflow as tf

    ahead = tf.concat([centers[1:], centers[-1:]], axis=0)
    behind = tf.concat([centers[:1], centers[:-1]], axis=0)
    axes = tf.math.l2_normalize(ahead - behind, axis=1)
    steps = tf.norm(centers[1:] - centers[:-1], axis=1)
    if levels is not None:
        steps /= tf.cast(levels[1:] - levels[:-1], tf.float64)
    before = tf.concat([steps[:1], steps], axis=0)  # the first centre has only the step after
    after = tf.concat([steps, steps[-1:]], axis=0)  # the last only the step before
    scales = (before + after) / 2.0
    if levels is not None:
        spacing = typical_spacing_in_graph(centers, levels)
        low, high = LOCATED_SCALE_RANGE
        scales = tf.clip_by_value(scales, low * spacing, high * spacing)
    zoom = PATCH_SIZE / (TEST_ALPHA * scales)
    ax, ay = axes[:, 0], axes[:, 1]
    # `patch_affine`: the rotation that turns the axis to +y, then the zoom
    linear = zoom[:, None, None] * tf.stack([tf.stack([ay, -ax], -1), tf.stack([ax, ay], -1)], 1)
    middle = (PATCH_SIZE - 1) / 2.0
    offset = middle - tf.linalg.matvec(linear, centers)
    return tf.concat([linear, offset[:, :, None]], axis=2)


def cut_patches_in_graph(image, affines):
    """(N, 64, 64, 1) float32 raw patches of an (H, W) float32 image through (N, 2, 3)
    image -> patch affines: linear resampling, the border reflected, pixel centres at
    integer coordinates."""
    import tensorflow as tf

    linear, offset = affines[:, :, :2], affines[:, :, 2]
    # patch -> image: x = L^-1 (p - offset); L is a rotation times a zoom, so L^-1 = L^T / det
    det = tf.linalg.det(linear)
    inverse = tf.linalg.matrix_transpose(linear) / det[:, None, None]
    shift = -tf.linalg.matvec(inverse, offset)
    zeros = tf.zeros_like(det)
    transforms = tf.cast(tf.stack(
        [inverse[:, 0, 0], inverse[:, 0, 1], shift[:, 0],
         inverse[:, 1, 0], inverse[:, 1, 1], shift[:, 1], zeros, zeros], axis=1), tf.float32)
    film = image[None, :, :, None]

    def cut(transform):
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=film, transforms=transform[None], output_shape=[PATCH_SIZE, PATCH_SIZE],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")[0]

    return tf.map_fn(cut, transforms, fn_output_signature=tf.float32)
