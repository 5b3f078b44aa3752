import numpy as np
import pytest

from vertseg_tf.data.patches import extract_patches
from vertseg_tf.data.pipeline import epoch_order as pipeline_epoch_order
from vertseg_tf.data.pipeline import make_dataset
from vertseg_tf.errors import ConfigError


def numbered_arrays(count=10, size=4):
    """x and y_true whose every patch carries its own index, so order is readable."""
    x = np.broadcast_to(
        np.arange(count, dtype=np.float32)[:, None, None, None], (count, size, size, 1)
    )
    y_true = np.concatenate([x, 2 * x], axis=-1)
    return x.copy(), y_true


def epoch_order(iterator, batches):
    return np.concatenate([next(iterator)[0].numpy()[:, 0, 0, 0] for _ in range(batches)])


def test_shapes_dtypes_and_partial_last_batch():
    x, y_true = numbered_arrays()
    batches = list(make_dataset((x, y_true), 4, shuffle=False))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    first_x, first_y = batches[0]
    assert first_x.shape == (4, 4, 4, 1) and first_y.shape == (4, 4, 4, 2)
    assert first_x.dtype.name == "float32" and first_y.dtype.name == "float32"
    np.testing.assert_array_equal(first_x.numpy(), x[:4])
    np.testing.assert_array_equal(first_y.numpy(), y_true[:4])
    assert [len(b[0]) for b in make_dataset((x, y_true), 4, drop_remainder=True)] == [4, 4]


def visited(dataset):
    return np.concatenate([b[0].numpy()[:, 0, 0, 0] for b in dataset])


def test_each_epoch_is_a_permutation_reshuffled_and_reproducible_by_seed():
    x, y_true = numbered_arrays(count=12)
    epochs = [visited(make_dataset((x, y_true), 3, seed=7, epoch=e)) for e in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(12))
    assert not all(np.array_equal(epochs[0], other) for other in epochs[1:])
    for e, order in enumerate(epochs):
        np.testing.assert_array_equal(visited(make_dataset((x, y_true), 3, seed=7, epoch=e)), order)
    other = [visited(make_dataset((x, y_true), 3, seed=8, epoch=e)) for e in range(3)]
    assert not all(np.array_equal(a, b) for a, b in zip(epochs, other))


def test_order_is_epoch_order_and_a_resume_skips_the_done_batches():
    x, y_true = numbered_arrays(count=11)
    order = np.random.default_rng([5, 2]).permutation(11)  # the definition of epoch_order
    np.testing.assert_array_equal(pipeline_epoch_order(11, 5, 2), order)
    resumed = make_dataset((x, y_true), 3, seed=5, epoch=2, first_batch=1, drop_remainder=True)
    np.testing.assert_array_equal(visited(resumed), order[3:9])
    repeated = iter(make_dataset((x, y_true), 3, seed=5, epoch=2, repeat=True, drop_remainder=True))
    np.testing.assert_array_equal(epoch_order(repeated, 3), order[:9])
    np.testing.assert_array_equal(epoch_order(repeated, 3), pipeline_epoch_order(11, 5, 3)[:9])


def test_repeat_keeps_epoch_boundaries_and_pairs_x_with_y():
    x, y_true = numbered_arrays(count=6)
    iterator = iter(make_dataset((x, y_true), 2, seed=3, repeat=True))
    for _ in range(3):
        assert sorted(epoch_order(iterator, 3).tolist()) == list(range(6))
    batch_x, batch_y = next(iterator)
    np.testing.assert_array_equal(batch_y.numpy()[..., 0], batch_x.numpy()[..., 0])
    np.testing.assert_array_equal(batch_y.numpy()[..., 1], 2 * batch_x.numpy()[..., 0])


def test_patch_set_input_and_bad_arguments():
    centers = np.array([[30.0, 20.0], [30.0, 40.0]])
    square = np.array([[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0], [-5.0, 5.0]])
    patch_set = extract_patches(
        np.random.default_rng(0).uniform(size=(60, 60)), centers, [square + c for c in centers]
    )
    ((batch_x, batch_y),) = list(make_dataset(patch_set, 8, shuffle=False))
    np.testing.assert_array_equal(batch_x.numpy(), patch_set.x())
    np.testing.assert_array_equal(batch_y.numpy(), patch_set.y_true())
    with pytest.raises(ConfigError, match="batch_size"):
        make_dataset(patch_set, 0)
    with pytest.raises(ConfigError, match="do not match"):
        make_dataset((np.zeros((3, 4, 4, 1)), np.zeros((2, 4, 4, 2))), 2)
