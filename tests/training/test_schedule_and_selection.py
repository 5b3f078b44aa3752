"""Learning-rate schedules, the choice of the kept model and the shape warm-up in training."""

import json
import math

import keras
import numpy as np
import pytest

from vertseg_tf.errors import ConfigError
from vertseg_tf.training import TRAIN_PRESETS, TrainConfig, train
from vertseg_tf.training.optimizer import learning_rate
from vertseg_tf.training.run import _best_row
from vertseg_tf.training.run_folder import RunFolder


def test_loss_options_reach_the_loss_and_unet_has_no_warm_up():
    config = TrainConfig(shape_weight=0.3, shape_weighting="balanced", e_per="pixel",
                         shape_warmup_epochs=2)
    assert config.loss_options == {"weight": 0.3, "e_mode": "graph", "e_per": "pixel",
                                   "weighting": "balanced", "warmup_epochs": 2}
    assert config.first_selectable_epoch == 3
    assert config.replace(method="unet").first_selectable_epoch == 1


@pytest.mark.parametrize(
    "changes, field",
    [({"lr_schedule": "linear"}, "lr_schedule"), ({"lr_step_factor": 0.0}, "lr_step_factor"),
     ({"lr_step_factor": 1.5}, "lr_step_factor"), ({"lr_step_epochs": 0}, "lr_step_epochs"),
     ({"model_selection": "median"}, "model_selection"), ({"e_per": "batch"}, "e_per"),
     ({"shape_weighting": "equal"}, "shape_weighting"),
     ({"shape_warmup_epochs": -1}, "shape_warmup_epochs")],
)
def test_bad_new_values_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=f"TrainConfig.{field}"):
        TrainConfig(**changes)


def rate_at(schedule, step):
    if isinstance(schedule, float):
        return schedule
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_cosine_schedule_falls_from_the_rate_to_zero_over_the_run():
    config = TrainConfig(learning_rate=0.002, epochs=4, lr_schedule="cosine")
    schedule = learning_rate(config, steps_per_epoch=5)  # 20 steps in all
    for step in (0, 5, 10, 15, 20):
        expected = 0.002 * 0.5 * (1 + math.cos(math.pi * step / 20))
        assert rate_at(schedule, step) == pytest.approx(expected, abs=1e-9)


def test_step_schedule_multiplies_by_the_factor_every_k_epochs():
    config = TrainConfig(learning_rate=0.004, lr_schedule="step", lr_step_epochs=2,
                         lr_step_factor=0.25)
    schedule = learning_rate(config, steps_per_epoch=3)  # a step every 6 optimiser steps
    for step, expected in ((0, 0.004), (5, 0.004), (6, 0.001), (11, 0.001), (12, 0.00025)):
        assert rate_at(schedule, step) == pytest.approx(expected, rel=1e-6)
    assert learning_rate(TrainConfig(learning_rate=0.004), 3) == 0.004


def test_best_row_skips_the_warm_up_and_falls_back_to_the_training_loss():
    history = [{"epoch": 1, "loss": 0.2, "val_loss": 0.1}, {"epoch": 2, "loss": 0.5,
               "val_loss": 0.4}, {"epoch": 3, "loss": 0.3, "val_loss": 0.6}]
    config = TrainConfig(method="unet-s")
    assert _best_row(config, history)["epoch"] == 1
    assert _best_row(config.replace(shape_warmup_epochs=1), history)["epoch"] == 2
    assert _best_row(config.replace(method="unet", shape_warmup_epochs=1), history)["epoch"] == 1
    no_validation = [{**row, "val_loss": None} for row in history]
    assert _best_row(config, no_validation)["epoch"] == 1
    assert _best_row(config.replace(shape_warmup_epochs=5), history) is None


def validation_loss_of(run_dir, data_rows):
    """The saved model's loss on the validation patches, as the loop computes val_loss."""
    from vertseg_tf.losses import pixel_log_loss

    model = keras.models.load_model(run_dir / "model.keras")
    x, y_true = data_rows
    return float(np.mean(keras.ops.convert_to_numpy(pixel_log_loss(y_true, model(x)))))


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["custom", "fit"])
def test_best_selection_keeps_the_lowest_validation_loss(loop, tiny_dataset, patch_cache,
                                                         tmp_path):
    from vertseg_tf.training.data import load_training_data

    # UNet at a large learning rate: the validation loss is not monotone, so best != last.
    config = TRAIN_PRESETS["smoke"].replace(
        method="unet", epochs=4, learning_rate=0.05, max_train_patches=40, deterministic=True,
        loop=loop, checkpoint_every_steps=0, model_selection="best",
    )
    result = train(config, tiny_dataset, tmp_path / "run", cache_dir=patch_cache)
    history = [row["val_loss"] for row in RunFolder(tmp_path / "run").read_history()]
    data = load_training_data(tiny_dataset, config, cache_dir=patch_cache)
    best_epoch = int(np.argmin(history)) + 1
    assert best_epoch != len(history), "the setup must make the best epoch differ from the last"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["model_selection"], summary["selected_epoch"]) == ("best", best_epoch)
    assert result["best"]["epoch"] == best_epoch
    saved = validation_loss_of(tmp_path / "run", (data.val_x, data.val_y_true))
    assert saved == pytest.approx(history[best_epoch - 1], rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["custom", "fit"])
def test_warm_up_trains_the_first_epochs_as_plain_unet(loop, tiny_dataset, patch_cache, tmp_path):
    base = TRAIN_PRESETS["smoke"].replace(
        epochs=2, max_train_patches=40, deterministic=True, loop=loop, checkpoint_every_steps=0
    )
    runs = {}
    for name, config in (("unet", base.replace(method="unet")),
                         ("warm", base.replace(method="unet-s", shape_warmup_epochs=1))):
        train(config, tiny_dataset, tmp_path / name, cache_dir=patch_cache)
        runs[name] = RunFolder(tmp_path / name).read_history()
    # Same seed, data order and loss in epoch 1; the shape term joins in epoch 2.
    assert runs["warm"][0]["loss"] == pytest.approx(runs["unet"][0]["loss"], rel=1e-6)
    assert runs["warm"][1]["loss"] > runs["unet"][1]["loss"] * 1.01
