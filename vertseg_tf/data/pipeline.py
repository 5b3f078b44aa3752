"""tf.data input pipeline over a patch set: shuffled per epoch, batched, prefetched.

The pipeline only adds speed and shuffling to TensorFlow training; the same data is available
to `model.fit` on any Keras backend as plain numpy arrays (`PatchSet.x()`, `PatchSet.y_true()`).
TensorFlow is imported when `make_dataset` runs, not when this module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vertseg_tf.errors import ConfigError

if TYPE_CHECKING:
    import tensorflow as tf

    from vertseg_tf.data.patches import PatchSet

__all__ = ["make_dataset"]


def make_dataset(
    patch_set_or_arrays: PatchSet | tuple[np.ndarray, np.ndarray],
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """A `tf.data.Dataset` of `(x, y_true)` batches for training or evaluation.

    Shuffling covers the whole set and is redone at every pass (epoch) from `seed`: for a given
    seed, epoch e has the same order in every run, and different epochs differ. Batches are
    gathered from the arrays held in memory and prefetched.

    Args:
        patch_set_or_arrays: a `PatchSet` (with targets), or `(x, y_true)` arrays of shapes
            (N, 64, 64, 1) and (N, 64, 64, 2).
        batch_size: patches per batch.
        shuffle: shuffle the patches every epoch.
        seed: shuffling seed.
        repeat: repeat forever (epochs still reshuffle); otherwise one pass per iteration.
        drop_remainder: drop a last batch smaller than `batch_size`.

    Returns:
        dataset yielding float32 `x` (B, 64, 64, 1) and `y_true` (B, 64, 64, 2).

    Raises:
        ConfigError: a bad batch size or arrays whose shapes do not match.

    Example:
        >>> train = make_dataset(patch_set, batch_size=25, seed=1)  # doctest: +SKIP
        >>> model.fit(train, epochs=30)  # doctest: +SKIP
    """
    import tensorflow as tf

    if isinstance(patch_set_or_arrays, tuple):
        x, y_true = patch_set_or_arrays
    else:
        x, y_true = patch_set_or_arrays.x(), patch_set_or_arrays.y_true()
    x = np.asarray(x, dtype=np.float32)
    y_true = np.asarray(y_true, dtype=np.float32)
    if (
        x.ndim != 4
        or y_true.ndim != 4
        or len(x) != len(y_true)
        or x.shape[1:3] != y_true.shape[1:3]
    ):
        raise ConfigError(f"x {x.shape} and y_true {y_true.shape} do not match as (N, H, W, C)")
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    count = len(x)
    x_tensor = tf.constant(x)
    y_tensor = tf.constant(y_true)

    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    batches = indices.batch(int(batch_size), drop_remainder=drop_remainder)
    if repeat:
        batches = batches.repeat()

    def gather(batch_indices):
        return tf.gather(x_tensor, batch_indices), tf.gather(y_tensor, batch_indices)

    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )
