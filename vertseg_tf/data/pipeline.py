"""The tf.data input pipeline, the one training uses: batches in the order of `epoch_order`.

Epoch e visits the patches in `epoch_order(N, seed, e)`, a pure function of (seed, e), so a
resumed run (`first_batch` > 0) sees exactly the batches an uninterrupted one would. The
custom training loop feeds on `gather_batches`; `make_dataset` is the same pipeline over
numpy arrays or a `PatchSet`. The same data is available to `model.fit` on any Keras backend
as plain numpy arrays (`PatchSet.x()`, `PatchSet.y_true()`). TensorFlow is imported when a
pipeline is built, not when this module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vertseg_tf.errors import ConfigError

if TYPE_CHECKING:
    import tensorflow as tf

    from vertseg_tf.data.patches import PatchSet

__all__ = ["epoch_order", "gather_batches", "make_dataset"]


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the training patches in `epoch`: a pure function of (seed, epoch).

    A resumed run therefore sees the same batches as an uninterrupted one.

    Example:
        >>> bool((epoch_order(5, seed=1, epoch=2) == epoch_order(5, seed=1, epoch=2)).all())
        True
    """
    return np.random.default_rng([seed, epoch]).permutation(count)


def gather_batches(
    x: tf.Tensor,
    y_true: tf.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    first_batch: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """`(x, y_true)` batches gathered from tensors held in memory, in `epoch_order`.

    Args:
        x: (N, H, W, 1) tensor of patches.
        y_true: (N, H, W, 2) tensor of targets.
        batch_size: patches per batch.
        shuffle: visit epoch e in `epoch_order(N, seed, e)`; otherwise in index order.
        seed: the order's seed.
        epoch: the (first) epoch to produce.
        first_batch: skip this many batches of the first epoch (resuming inside it).
        repeat: continue with epochs `epoch + 1`, `epoch + 2`, ... forever.
        drop_remainder: leave out each epoch's last batch when it is smaller.

    Returns:
        A prefetched, deterministic `tf.data.Dataset`.
    """
    import tensorflow as tf

    count = int(x.shape[0])

    def order(epoch_number) -> np.ndarray:
        if not shuffle:
            return np.arange(count, dtype=np.int64)
        return epoch_order(count, seed, int(epoch_number)).astype(np.int64)

    if repeat:
        indices = tf.data.Dataset.range(epoch, np.iinfo(np.int64).max).flat_map(
            lambda e: tf.data.Dataset.from_tensor_slices(
                tf.ensure_shape(tf.numpy_function(order, [e], tf.int64), [count])
            ).batch(batch_size, drop_remainder=drop_remainder)
        )
    else:
        indices = tf.data.Dataset.from_tensor_slices(order(epoch)).batch(
            batch_size, drop_remainder=drop_remainder
        )
    indices = indices.skip(first_batch)

    def gather(batch_indices):
        return tf.gather(x, batch_indices), tf.gather(y_true, batch_indices)

    return indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )


def make_dataset(
    patch_set_or_arrays: PatchSet | tuple[np.ndarray, np.ndarray],
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    first_batch: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """A `tf.data.Dataset` of `(x, y_true)` batches for training or evaluation.

    The training loop's own pipeline (`gather_batches`) over numpy arrays: epoch e is visited
    in `epoch_order(N, seed, e)`, so the same (seed, epoch) gives the same batches in every
    run, and different epochs differ. Pass `repeat=True` for several epochs in one dataset.

    Args:
        patch_set_or_arrays: a `PatchSet` (with targets), or `(x, y_true)` arrays of shapes
            (N, 64, 64, 1) and (N, 64, 64, 2).
        batch_size: patches per batch.
        shuffle: shuffle the patches (per epoch, see `epoch_order`).
        seed: shuffling seed.
        epoch: the (first) epoch.
        first_batch: skip this many batches of the first epoch.
        repeat: repeat forever, epoch after epoch, each in its own order.
        drop_remainder: drop a last batch smaller than `batch_size`.

    Returns:
        dataset yielding float32 `x` (B, 64, 64, 1) and `y_true` (B, 64, 64, 2).

    Raises:
        ConfigError: a bad batch size or arrays whose shapes do not match.

    Example:
        >>> train = make_dataset(patch_set, batch_size=25, seed=1, repeat=True)  # doctest: +SKIP
        >>> model.fit(train, epochs=30, steps_per_epoch=len(patch_set) // 25)  # doctest: +SKIP
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
    return gather_batches(
        tf.constant(x), tf.constant(y_true), int(batch_size), shuffle=shuffle, seed=seed,
        epoch=epoch, first_batch=first_batch, repeat=repeat, drop_remainder=drop_remainder,
    )
