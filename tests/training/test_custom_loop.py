import csv
import json

import keras
import numpy as np
import pytest

from tests.training.killing import Killed, kill_after
from vertseg_tf.errors import DataError
from vertseg_tf.training import TRAIN_PRESETS, read_run_config, train

# 40 patches in batches of 10: 4 steps per epoch, 8 in all; a checkpoint every 2 steps.
CONFIG = TRAIN_PRESETS["smoke"].replace(
    max_train_patches=40, checkpoint_every_steps=2, deterministic=True
)


def tensorboard_values(folder):
    """{(step, tag): value} of the TensorBoard event files in `folder`."""
    import tensorflow as tf

    values = {}
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                values[(event.step, value.tag)] = array.tolist() if array.ndim else float(array)
    return values


def weights(run_dir):
    return keras.models.load_model(run_dir / "model.keras").get_weights()


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset, patch_cache, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("custom") / "run"
    result = train(CONFIG, tiny_dataset, run_dir, cache_dir=patch_cache)
    return run_dir, result


def test_smoke_training_loss_falls_and_the_run_folder_is_complete(uninterrupted):
    run_dir, _ = uninterrupted
    with open(run_dir / "history.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])
    for name in ("val_loss", "val_pixel_accuracy", "val_dice", "val_shape_error"):
        assert np.isfinite(float(rows[1][name]))
    assert 0.0 <= float(rows[1]["val_dice"]) <= 1.0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["final"]["loss"] == pytest.approx(
        float(rows[1]["loss"])
    )
    assert read_run_config(run_dir) == CONFIG
    checkpoint_record = json.loads((run_dir / "checkpoints" / "config.json").read_text())
    assert checkpoint_record == json.loads((run_dir / "config.json").read_text())
    assert checkpoint_record["config"] == CONFIG.to_dict()
    last = sorted(p.name for p in (run_dir / "checkpoints" / "last").glob("ckpt-*.index"))
    assert last == ["ckpt-6.index", "ckpt-8.index"]  # keep_checkpoints = 2
    logged = tensorboard_values(run_dir / "tensorboard" / "validation")
    assert logged[(2, "epoch/dice")] == pytest.approx(float(rows[1]["val_dice"]), abs=1e-6)
    width, height, *pngs = logged[(2, "validation/patch | truth | prediction")]
    assert (width, height) == (b"192", b"64") and len(pngs) == 4
    assert all(png.startswith(b"\x89PNG") for png in pngs)
    assert not [p for p in run_dir.rglob(".*") if p.is_file()]  # no temporary file left


def test_killed_and_resumed_run_equals_the_uninterrupted_run(
    uninterrupted, tiny_dataset, patch_cache, tmp_path
):
    reference, _ = uninterrupted
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        # Step 7 is mid-epoch 2; the last checkpoint is step 6, so step 7 is done twice.
        train(CONFIG, tiny_dataset, run_dir, cache_dir=patch_cache, step_callback=kill_after(7))
    assert not (run_dir / "model.keras").exists() and not (run_dir / "summary.json").exists()
    result = train(CONFIG, tiny_dataset, run_dir, cache_dir=patch_cache, resume=True)
    assert result["epochs"] == 2
    for resumed, straight in zip(weights(run_dir), weights(reference), strict=True):
        np.testing.assert_array_equal(resumed, straight)
    with open(run_dir / "history.csv", newline="") as stream:
        assert [int(row["epoch"]) for row in csv.DictReader(stream)] == [1, 2]


@pytest.mark.slow
def test_resume_falls_back_to_the_newest_readable_checkpoint(
    uninterrupted, tiny_dataset, patch_cache, tmp_path, capsys
):
    reference, _ = uninterrupted
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        train(CONFIG, tiny_dataset, run_dir, cache_dir=patch_cache, step_callback=kill_after(7))
    last = run_dir / "checkpoints" / "last"
    assert sorted(p.name for p in last.glob("ckpt-*.index")) == ["ckpt-4.index", "ckpt-6.index"]
    [data] = last.glob("ckpt-6.data-*")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # a torn write
    capsys.readouterr()
    result = train(CONFIG, tiny_dataset, run_dir, cache_dir=patch_cache, resume=True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "ckpt-6" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")
    assert "ckpt-4" in warnings[0]
    assert result["epochs"] == 2
    for resumed, straight in zip(weights(run_dir), weights(reference), strict=True):
        np.testing.assert_array_equal(resumed, straight)


@pytest.mark.slow
def test_resume_with_no_readable_checkpoint_is_one_error(tiny_dataset, patch_cache, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        train(CONFIG, tiny_dataset, run_dir, cache_dir=patch_cache, step_callback=kill_after(3))
    for data in (run_dir / "checkpoints" / "last").glob("ckpt-*.data-*"):
        data.write_bytes(b"")
    with pytest.raises(DataError, match=r"checkpoints.last: no readable checkpoint"):
        train(CONFIG, tiny_dataset, run_dir, cache_dir=patch_cache, resume=True)
