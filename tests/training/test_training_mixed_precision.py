import json

import keras
import numpy as np
import pytest

from vertseg_tf.training import TRAIN_PRESETS, train

# Powers of two, so the scaled rate is exact in float64 and in the optimizer's float32:
# 2**-9 * 10 / 40 = 2**-11.
LEARNING_RATE = 2.0**-9
SCALED_LEARNING_RATE = 2.0**-11
# 40 patches in batches of 10: one epoch is 4 steps.
CONFIG = TRAIN_PRESETS["smoke"].replace(
    epochs=1,
    max_train_patches=40,
    mixed_precision="bfloat16",
    learning_rate=LEARNING_RATE,
    scale_lr=True,
    reference_batch_size=40,
)


def checkpointed_learning_rate(run_dir):
    """The optimizer's learning rate as stored in the run's last custom-loop checkpoint."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints" / "last"))
    names = [name for name in reader.get_variable_to_shape_map() if "learning_rate" in name]
    assert len(names) == 1, names
    return reader.get_tensor(names[0])


@pytest.fixture(scope="module")
def bfloat16_run(tiny_dataset, patch_cache, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("bfloat16") / "run"
    policies = {"before": keras.config.dtype_policy().name, "during": set()}
    result = train(
        CONFIG,
        tiny_dataset,
        run_dir,
        cache_dir=patch_cache,
        step_callback=lambda step: policies["during"].add(keras.config.dtype_policy().name),
    )
    policies["after"] = keras.config.dtype_policy().name
    return run_dir, result, policies


@pytest.mark.slow
def test_bfloat16_custom_loop_saves_a_float32_model_and_restores_the_policy(bfloat16_run):
    run_dir, result, policies = bfloat16_run
    assert result["epochs"] == 1 and np.isfinite(result["final"]["loss"])
    assert policies == {"before": "float32", "during": {"mixed_bfloat16"}, "after": "float32"}
    # model.keras stores the architecture, not the policy: it loads under the caller's policy,
    # and the softmax layer is float32 under any policy.
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    assert model.output.dtype == "float32"
    x = np.random.default_rng(0).normal(size=(2, *model.input_shape[1:])).astype(np.float32)
    y = model(x, training=False)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    probabilities = keras.ops.convert_to_numpy(y)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_scale_lr_sets_the_optimizers_learning_rate(bfloat16_run):
    run_dir, _, _ = bfloat16_run
    expected = CONFIG.learning_rate * CONFIG.batch_size / CONFIG.reference_batch_size
    assert CONFIG.effective_learning_rate == expected == SCALED_LEARNING_RATE
    record = json.loads((run_dir / "config.json").read_text())
    assert record["effective_learning_rate"] == SCALED_LEARNING_RATE
    assert record["config"]["learning_rate"] == LEARNING_RATE
    assert checkpointed_learning_rate(run_dir) == np.float32(SCALED_LEARNING_RATE)
