import csv
import json

import keras
import numpy as np
import pytest

from tests.training.killing import Killed, kill_after
from vertseg_tf.errors import DataError
from vertseg_tf.training import TRAIN_PRESETS, train

# 40 patches in batches of 10: 4 steps per epoch, 8 in all. `BackupAndRestore` backs up at
# every epoch end (checkpoint_every_steps 0): Keras restores the epoch of a backup but not its
# batch, so only an epoch-end backup resumes exactly (see `run_fit_loop`).
CONFIG = TRAIN_PRESETS["smoke"].replace(
    loop="fit", max_train_patches=40, deterministic=True, checkpoint_every_steps=0
)
STEPS_PER_EPOCH = 4


def weights(run_dir):
    return keras.models.load_model(run_dir / "model.keras", compile=False).get_weights()


def history_rows(run_dir):
    with open(run_dir / "history.csv", newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_killed_and_resumed_fit_run_equals_the_uninterrupted_run(
    tiny_dataset, patch_cache, tmp_path
):
    """A fit-loop run killed mid-epoch 2 and resumed ends with the uninterrupted run's weights.

    Equality holds because (a) op determinism and the seed make each step reproducible,
    (b) the backup of the end of epoch 1 holds the model and the optimizer state, and the
    resumed run redoes only epoch 2, and (c) the resumed epoch sees the same batches: the
    TensorFlow-backend `fit` draws its shuffle from the seeded tf.data pipeline that each `fit`
    call builds anew, and under a fixed seed that pipeline gives the same permutation every
    epoch, in the first run and in the resumed one alike.
    """
    reference = tmp_path / "uninterrupted"
    train(CONFIG, tiny_dataset, reference, cache_dir=patch_cache)
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        # Step 6 is mid-epoch 2; the last backup is the end of epoch 1 (step 4).
        train(CONFIG, tiny_dataset, run_dir, cache_dir=patch_cache, step_callback=kill_after(6))
    assert not (run_dir / "model.keras").exists() and not (run_dir / "summary.json").exists()
    [state] = (run_dir / "checkpoints" / "backup").iterdir()
    assert state.name == "state-1"  # the end of epoch 1
    assert json.loads((state / "training_metadata.json").read_text())["epoch"] == 1
    assert [row["epoch"] for row in history_rows(run_dir)] == ["1"]

    resumed_steps = []
    result = train(
        CONFIG,
        tiny_dataset,
        run_dir,
        cache_dir=patch_cache,
        resume=True,
        step_callback=resumed_steps.append,
    )
    # Continued from the backup: only epoch 2's steps are run, numbered on from step 4.
    assert resumed_steps == list(range(STEPS_PER_EPOCH + 1, 2 * STEPS_PER_EPOCH + 1))
    assert result["epochs"] == 2 and np.isfinite(result["final"]["loss"])
    rows, reference_rows = history_rows(run_dir), history_rows(reference)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert rows == reference_rows
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 2
    assert not (run_dir / "checkpoints" / "backup").exists()  # removed when fit ends
    for resumed, straight in zip(weights(run_dir), weights(reference), strict=True):
        np.testing.assert_array_equal(resumed, straight)


def tear(state):
    """Cut a backup's weights file in half, as a full disk or a copy cut short leaves it."""
    weights_file = state / "state.weights.h5"
    weights_file.write_bytes(weights_file.read_bytes()[: weights_file.stat().st_size // 2])


@pytest.mark.slow
def test_fit_resume_falls_back_past_a_torn_backup(tiny_dataset, patch_cache, tmp_path, capsys):
    config = CONFIG.replace(epochs=3)
    reference = tmp_path / "uninterrupted"
    train(config, tiny_dataset, reference, cache_dir=patch_cache)
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        # Step 10 is mid-epoch 3: backups of the ends of epochs 1 and 2.
        train(config, tiny_dataset, run_dir, cache_dir=patch_cache, step_callback=kill_after(10))
    backup = run_dir / "checkpoints" / "backup"
    assert sorted(path.name for path in backup.iterdir()) == ["state-1", "state-2"]
    assert [row["epoch"] for row in history_rows(run_dir)] == ["1", "2"]
    tear(backup / "state-2")
    capsys.readouterr()
    resumed_steps = []
    result = train(config, tiny_dataset, run_dir, cache_dir=patch_cache, resume=True,
                   step_callback=resumed_steps.append)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "state-2" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")
    assert "unreadable checkpoint" in warnings[0] and str(backup / "state-1") in warnings[0]
    # Epochs 2 and 3 again, from the end of epoch 1; epoch 2's first row is replaced.
    assert resumed_steps == list(range(STEPS_PER_EPOCH + 1, 3 * STEPS_PER_EPOCH + 1))
    assert result["epochs"] == 3
    assert history_rows(run_dir) == history_rows(reference)
    for resumed, straight in zip(weights(run_dir), weights(reference), strict=True):
        np.testing.assert_array_equal(resumed, straight)


@pytest.mark.slow
def test_fit_resume_with_no_readable_backup_is_one_error(tiny_dataset, patch_cache, tmp_path):
    config = CONFIG.replace(max_train_patches=20)  # 2 steps per epoch
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        train(config, tiny_dataset, run_dir, cache_dir=patch_cache, step_callback=kill_after(3))
    [state] = (run_dir / "checkpoints" / "backup").iterdir()
    tear(state)
    with pytest.raises(DataError, match=r"checkpoints.backup: no readable checkpoint"):
        train(config, tiny_dataset, run_dir, cache_dir=patch_cache, resume=True)
