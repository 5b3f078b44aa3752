"""The `model.fit` training path: Keras callbacks only, on any Keras backend.

No TensorFlow import here: under `KERAS_BACKEND=jax` the run uses the numpy patch arrays
(no tf.data), Keras checkpoints (`.weights.h5`, `BackupAndRestore`) and no TensorBoard. The
saved `model.keras` and weights load into the TensorFlow-backend model for export.
TensorFlow-only options (`--strategy mirrored|multiworker`, e_mode "py_function", the
TensorBoard callback) import TensorFlow when they are used.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import keras

from vertseg_tf.atomic import atomic_dir, write_json_atomic
from vertseg_tf.errors import ConfigError
from vertseg_tf.losses import PixelLogLoss, ShapeAwareLoss, ShapeWarmup
from vertseg_tf.metrics_keras import DiceCoefficient, MeanShapeError, PixelAccuracy
from vertseg_tf.model import build_unet
from vertseg_tf.progress import keras_verbose
from vertseg_tf.training.config import StepCallback, TrainConfig
from vertseg_tf.training.data import TrainingData
from vertseg_tf.training.distribute import check_strategy, make_strategy, seed_everything
from vertseg_tf.training.optimizer import make_optimizer
from vertseg_tf.training.run_folder import RunFolder, restore_newest_readable

__all__ = ["compile_unet", "run_fit_loop"]


def compile_unet(config: TrainConfig, steps_per_epoch: int = 1) -> keras.Model:
    """Build the config's UNet and compile it the paper's way for `model.fit`.

    RMSprop at `config.effective_learning_rate` on the config's schedule;
    `ShapeAwareLoss(**config.loss_options)` for "unet-s", `PixelLogLoss` for "unet"; metrics
    mean E, pixel accuracy and Dice. A loss with a warm-up needs the `ShapeWarmup` callback
    in `fit`.

    Args:
        config: a UNet `TrainConfig`.
        steps_per_epoch: optimisation steps per epoch (the length of the "cosine" and "step"
            learning-rate schedules is counted in steps).

    Returns:
        The compiled model (build it under a strategy's scope to distribute it).

    Example:
        >>> model = compile_unet(TRAIN_PRESETS["smoke"])  # doctest: +SKIP
        >>> model.fit(patches.x(), patches.y_true(), batch_size=10, epochs=2)  # doctest: +SKIP
    """
    if not config.is_unet:
        raise ConfigError(f"method {config.method!r} is not a UNet; it is not trained with fit")
    model = build_unet(config.model)
    if config.method == "unet-s":
        loss = ShapeAwareLoss(**config.loss_options)
    else:
        loss = PixelLogLoss()
    # JAX compiles every step and has no determinism switch; TensorFlow follows `use_xla`.
    host_e = config.method == "unet-s" and config.e_mode == "py_function"
    on_tensorflow = keras.backend.backend() == "tensorflow"
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=loss,
        metrics=[MeanShapeError(), PixelAccuracy(), DiceCoefficient()],
        jit_compile=config.use_xla if on_tensorflow else config.jit_compile and not host_e,
    )
    return model


class _HistoryLogger(keras.callbacks.CSVLogger):
    """`CSVLogger` numbering epochs from 1, as the custom loop's history.csv and summary.json."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


class _BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint(save_best_only=True)` that ignores the epochs before
    `first_epoch` (1-based): those of the shape term's warm-up."""

    def __init__(self, path: str, monitor: str, first_epoch: int):
        super().__init__(path, monitor=monitor, save_best_only=True, save_weights_only=True)
        self.first_epoch = first_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.first_epoch:
            super().on_epoch_end(epoch, logs)


class _ResumableBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that resumes past a torn backup.

    Keras writes its one backup in place, so a crash, a full disk or a copy cut short leaves
    it torn and resuming fails. Here each backup is a new folder `state-N` in `backup_dir`,
    renamed into place when complete (`atomic_dir`), of which the newest `keep` stay; resuming
    restores the newest that reads back whole, with a warning for each torn one
    (`restore_newest_readable`), and drops the history rows of the epochs it will redo.
    The epoch and batch counts and the `_save_model` hook are `BackupAndRestore`'s own.
    """

    _PREFIX = "state-"
    _WEIGHTS = "state.weights.h5"
    _METADATA = "training_metadata.json"

    def __init__(self, folder: RunFolder, save_freq, keep: int = 2):
        super().__init__(str(folder.checkpoint_dir("backup")), save_freq=save_freq)
        self.folder, self.keep = folder, keep

    def _states(self) -> list[Path]:
        """The complete backups, newest first."""
        root = Path(self.backup_dir)
        numbered = [
            (int(path.name[len(self._PREFIX):]), path)
            for path in (root.iterdir() if root.is_dir() else ())
            if path.name.startswith(self._PREFIX) and path.name[len(self._PREFIX):].isdigit()
        ]
        return [path for _, path in sorted(numbered, reverse=True)]

    def on_train_begin(self, logs=None):
        restore_newest_readable([str(path) for path in self._states()], self._restore,
                                self.backup_dir)

    def _restore(self, state: str) -> None:
        epoch = int(json.loads((Path(state) / self._METADATA).read_text())["epoch"])
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(Path(state) / self._WEIGHTS))
        self.model._initial_epoch = epoch  # where `fit` starts: how Keras's own callback resumes
        self.folder.keep_history(epoch)

    def _save_model(self):
        states = self._states()
        number = int(states[0].name[len(self._PREFIX):]) + 1 if states else 1
        with atomic_dir(Path(self.backup_dir) / f"{self._PREFIX}{number}") as building:
            self.model.save_weights(str(building / self._WEIGHTS))
            metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            write_json_atomic(metadata, building / self._METADATA)
        for old in states[self.keep - 1:]:
            shutil.rmtree(old, ignore_errors=True)


class _StepCounter(keras.callbacks.Callback):
    """Calls `step_callback` with the global step: the optimizer's step count, which
    `BackupAndRestore` (earlier in the callback list) has restored when resuming."""

    def __init__(self, step_callback: StepCallback):
        super().__init__()
        self.step_callback, self.step = step_callback, 0

    def on_train_begin(self, logs=None):
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.step_callback(self.step)


def run_fit_loop(
    config: TrainConfig,
    data: TrainingData,
    folder: RunFolder,
    resume: bool,
    step_callback: StepCallback | None = None,
):
    """Train with `model.fit`; returns `(model, history rows)`.

    Callbacks: `BackupAndRestore` (every `checkpoint_every_steps` steps, else every epoch;
    resumes an interrupted run from its newest readable backup), `ModelCheckpoint` of the
    last and the best weights, `CSVLogger` (history.csv, epochs numbered from 1) and, on the
    TensorFlow backend with the `tensorboard` package installed, `TensorBoard`.

    Keras resumes from the start of the epoch of the last backup (its batch is not restored):
    a backup taken inside an epoch keeps that epoch's finished steps in the weights and the
    resumed run repeats the whole epoch, so only a run whose last backup was an epoch end
    (always with `checkpoint_every_steps` 0) resumes to the uninterrupted run's weights
    under `deterministic`.
    """
    keras.utils.set_random_seed(config.seed)
    steps_per_epoch = -(-len(data.x) // config.batch_size)
    on_tensorflow = keras.backend.backend() == "tensorflow"
    if config.strategy != "default" or (config.deterministic and on_tensorflow):
        if not on_tensorflow:
            raise ConfigError(
                f"--strategy {config.strategy} needs the TensorFlow backend "
                f"(running {keras.backend.backend()!r})"
            )
        seed_everything(config)
        strategy = make_strategy(config.strategy)
        check_strategy(config, strategy)
        with strategy.scope():
            model = compile_unet(config, steps_per_epoch)
    else:
        model = compile_unet(config, steps_per_epoch)
    has_validation = len(data.val_x) > 0
    monitor = "val_loss" if has_validation else "loss"
    callbacks = [
        _ResumableBackup(folder, save_freq=config.checkpoint_every_steps or "epoch"),
        keras.callbacks.ModelCheckpoint(
            str(folder.checkpoints / "last.weights.h5"), save_weights_only=True
        ),
        _BestCheckpoint(
            str(folder.checkpoints / "best.weights.h5"), monitor, config.first_selectable_epoch
        ),
        _HistoryLogger(str(folder.history_path), append=resume),
        ShapeWarmup(),
    ]
    if on_tensorflow and importlib.util.find_spec("tensorboard") is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(folder.tensorboard)))
    if step_callback is not None:
        callbacks.append(_StepCounter(step_callback))
    model.fit(
        data.x,
        data.y_true,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(data.val_x, data.val_y_true) if has_validation else None,
        shuffle=True,
        callbacks=callbacks,
        verbose=keras_verbose(),
    )
    best = folder.checkpoints / "best.weights.h5"
    if config.model_selection == "best" and best.is_file():
        model.load_weights(str(best))
    return model, folder.read_history()
