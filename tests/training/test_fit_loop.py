import csv
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tests.child_process import BLOCK_TENSORFLOW, child_environment
from vertseg_tf.model import build_unet
from vertseg_tf.training import TRAIN_PRESETS, train

CONFIG = TRAIN_PRESETS["smoke"].replace(max_train_patches=40, deterministic=True)

# Both loops start from the same weights (same seed) and see the same 40 patches twice, in a
# different order (Keras shuffles in `fit`). The epoch-mean training loss falls from about 8 in
# epoch 1 to about 3.5 in epoch 2; after epoch 2 the two loops agree within this fraction of
# the custom loop's loss, far less than what one epoch of training changes.
LOSS_TOLERANCE = 0.2


def final_training_loss(run_dir):
    with open(run_dir / "history.csv", newline="") as stream:
        return float(list(csv.DictReader(stream))[-1]["loss"])


@pytest.mark.slow
def test_fit_and_custom_loop_reach_the_same_loss(tiny_dataset, patch_cache, tmp_path):
    custom = train(CONFIG, tiny_dataset, tmp_path / "custom", cache_dir=patch_cache)
    fit = train(CONFIG.replace(loop="fit"), tiny_dataset, tmp_path / "fit", cache_dir=patch_cache)
    assert custom["epochs"] == fit["epochs"] == 2
    custom_loss = final_training_loss(tmp_path / "custom")
    fit_loss = final_training_loss(tmp_path / "fit")
    assert abs(fit_loss - custom_loss) <= LOSS_TOLERANCE * custom_loss
    for name in ("model.keras", "config.json", "summary.json", "checkpoints/best.weights.h5"):
        assert (tmp_path / "fit" / name).is_file()


JAX_SCRIPT = BLOCK_TENSORFLOW + textwrap.dedent(
    """
    import keras
    import numpy as np

    from vertseg_tf.training import TRAIN_PRESETS, train

    assert keras.backend.backend() == "jax"
    dataset, out, cache, probe = sys.argv[1:5]
    # 20 patches in batches of 10: 2 training steps.
    config = TRAIN_PRESETS["smoke"].replace(loop="fit", epochs=1, max_train_patches=20)
    train(config, dataset, out, cache_dir=cache)
    model = keras.models.load_model(f"{out}/model.keras")
    x = np.load(f"{probe}/x.npy")
    np.save(f"{probe}/y.npy", keras.ops.convert_to_numpy(model(x, training=False)))
    assert not [name for name in sys.modules if name.split(".")[0] == "tensorflow"]
    """
)


@pytest.mark.slow
def test_fit_path_runs_under_jax_without_tensorflow(tiny_dataset, patch_cache, tmp_path):
    run_dir = tmp_path / "jax-run"
    x = np.random.default_rng(0).normal(size=(4, 64, 64, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    completed = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tiny_dataset), str(run_dir), str(patch_cache),
         str(tmp_path)],
        env=child_environment(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert keras.backend.backend() == "tensorflow"
    jax_outputs = np.load(tmp_path / "y.npy")
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), jax_outputs, atol=1e-5)
    from_weights = build_unet("smoke")
    from_weights.load_weights(run_dir / "checkpoints" / "last.weights.h5")
    np.testing.assert_allclose(np.asarray(from_weights(x, training=False)), jax_outputs, atol=1e-5)
