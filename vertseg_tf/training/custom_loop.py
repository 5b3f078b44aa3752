"""The TensorFlow training loop: `tf.function` step with `GradientTape`, checkpoints, distribution.

Data order (`vertseg_tf.data.pipeline.gather_batches`): epoch e visits the patches in
`epoch_order(N, seed, e)`, cut into
`N // batch_size` full batches (the remainder is left out that epoch). A checkpoint stores the
model, the optimizer, the epoch and the step inside it, so `resume` continues with exactly the
batches an uninterrupted run would see; under `deterministic` the weights end up equal.

Checkpoints are written by `tf.train.CheckpointManager`: TensorFlow writes the checkpoint
files under their final names and then replaces the `checkpoint` index file atomically
(write to a temporary file + rename), so a run killed while saving still resumes from the
previous complete checkpoint. A checkpoint that is listed but torn anyway (a full disk, a
copy cut short) is skipped on resume with a warning
(`vertseg_tf.training.run_folder.restore_newest_readable`).
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from vertseg_tf.channels import DISTANCE_CHANNEL, VERTEBRA, true_mask
from vertseg_tf.data.pipeline import gather_batches
from vertseg_tf.losses import pixel_log_loss, shape_aware_loss, shape_error
from vertseg_tf.metrics_keras import dice_coefficient, pixel_accuracy_fraction
from vertseg_tf.model import build_unet
from vertseg_tf.progress import Progress
from vertseg_tf.training.config import StepCallback, TrainConfig
from vertseg_tf.training.data import TrainingData
from vertseg_tf.training.distribute import check_strategy, make_strategy, seed_everything
from vertseg_tf.training.optimizer import make_optimizer
from vertseg_tf.training.run_folder import RunFolder, restore_newest_readable

__all__ = ["run_custom_loop"]

_PREVIEW_PATCHES = 4
_VALIDATION_BATCH = 256
_STEP_SCALARS_EVERY = 10
_EPOCH_LINE_VALUES = (
    "loss", "shape_error", "val_loss", "val_pixel_accuracy", "val_dice", "val_shape_error"
)


def _loss_function(config: TrainConfig, epoch: tf.Variable):
    """The run's per-sample loss; a warm-up reads `epoch` (the 0-based epoch being trained)
    when the compiled step runs."""
    if config.method == "unet":
        return pixel_log_loss
    options = config.loss_options
    return lambda y_true, y_pred: shape_aware_loss(y_true, y_pred, epoch=epoch, **options)


def _summary_metadata(plugin: str, data_class: int):
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
        data_class=data_class,
    )


def _scalar(name: str, value: float) -> None:
    """A TensorBoard scalar with `tf.summary.write` (the `tensorboard` package is optional)."""
    from tensorflow.core.framework import summary_pb2

    metadata = _summary_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR)
    tf.summary.write(name, tf.constant(value, tf.float32), metadata=metadata)


def _images(name: str, images: tf.Tensor) -> None:
    """TensorBoard images (PNG, the format of the "images" plugin) from (N, H, W, 1) in [0, 1]."""
    from tensorflow.core.framework import summary_pb2

    metadata = _summary_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
    pixels = tf.image.convert_image_dtype(images, tf.uint8, saturate=True)
    encoded = tf.map_fn(tf.image.encode_png, pixels, fn_output_signature=tf.string)
    size = tf.strings.as_string(tf.shape(images)[2:0:-1])
    tf.summary.write(name, tf.concat([size, encoded], axis=0), metadata=metadata)


def _preview_image(x, y_true, y_pred) -> tf.Tensor:
    """Patch | ground-truth mask | predicted probability, side by side, in [0, 1]."""
    low = tf.reduce_min(x, axis=(1, 2, 3), keepdims=True)
    high = tf.reduce_max(x, axis=(1, 2, 3), keepdims=True)
    patch = (x - low) / tf.maximum(high - low, 1e-6)
    truth = tf.cast(true_mask(y_true)[..., None], tf.float32)
    vertebra = tf.cast(y_pred[..., VERTEBRA : VERTEBRA + 1], tf.float32)
    return tf.concat([patch, truth, vertebra], axis=2)


@dataclasses.dataclass
class _LoopState:
    """What a checkpoint holds, and the two managers that save it."""

    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    epoch: tf.Variable
    step_in_epoch: tf.Variable
    global_step: tf.Variable
    # The lowest validation loss so far; the training loss when the run has no validation set.
    best_monitored_loss: tf.Variable
    last_manager: tf.train.CheckpointManager
    best_manager: tf.train.CheckpointManager

    def save_last(self) -> None:
        self.last_manager.save(checkpoint_number=int(self.global_step.numpy()))


def _build_state(
    config: TrainConfig, strategy, folder: RunFolder, steps_per_epoch: int
) -> _LoopState:
    with strategy.scope():
        model = build_unet(config.model)
        _synchronize_batch_norm(model, strategy.num_replicas_in_sync > 1)
        optimizer = make_optimizer(config, steps_per_epoch)
        optimizer.build(model.trainable_variables)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
        global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        best = tf.Variable(np.inf, dtype=tf.float64, trainable=False, name="best")
    checkpoint = tf.train.Checkpoint(
        model=model,
        optimizer=optimizer,
        epoch=epoch,
        step_in_epoch=step_in_epoch,
        global_step=global_step,
        best_monitored_loss=best,
    )
    last_manager = tf.train.CheckpointManager(
        checkpoint, str(folder.checkpoint_dir("last")), max_to_keep=config.keep_checkpoints,
        step_counter=global_step,
    )
    best_manager = tf.train.CheckpointManager(
        checkpoint, str(folder.checkpoint_dir("best")), max_to_keep=1, step_counter=global_step
    )
    return _LoopState(
        model, optimizer, epoch, step_in_epoch, global_step, best, last_manager, best_manager
    )


def _restore(state: _LoopState, folder: RunFolder) -> list[dict]:
    """Restore the last checkpoint; the history rows of the epochs it has finished."""
    manager = state.last_manager
    restore_newest_readable(
        list(reversed(manager.checkpoints)),
        lambda path: manager.checkpoint.restore(path).assert_existing_objects_matched(),
        manager.directory,
    )
    # Rows of epochs the restored checkpoint has not finished are redone.
    return [row for row in folder.read_history() if row["epoch"] <= int(state.epoch.numpy())]


def _step_functions(config: TrainConfig, strategy, state: _LoopState):
    """`(train_step, validation_step)` as `tf.function`s."""
    model, optimizer = state.model, state.optimizer
    loss_function = _loss_function(config, state.epoch)
    batch = config.batch_size
    # XLA only for one replica: a jit-compiled function around strategy.run is not supported.
    jit = config.use_xla and strategy.num_replicas_in_sync == 1

    def replica_step(x, y_true):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            per_sample = loss_function(y_true, y_pred)
            loss = tf.nn.compute_average_loss(per_sample, global_batch_size=batch)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, tf.reduce_sum(shape_error(y_pred, y_true[..., DISTANCE_CHANNEL])) / batch

    def distributed_step(x, y_true):
        loss, mean_error = strategy.run(replica_step, args=(x, y_true))
        reduce = tf.distribute.ReduceOp.SUM
        return strategy.reduce(reduce, loss, axis=None), strategy.reduce(
            reduce, mean_error, axis=None
        )

    @tf.function
    def validation_step(x, y_true):
        y_pred = model(x, training=False)
        return (
            tf.reduce_sum(loss_function(y_true, y_pred)),
            tf.reduce_sum(pixel_accuracy_fraction(y_true, y_pred)),
            tf.reduce_sum(dice_coefficient(y_true, y_pred)),
            tf.reduce_sum(shape_error(y_pred, y_true[..., DISTANCE_CHANNEL])),
        )

    return tf.function(distributed_step, jit_compile=jit), validation_step


def run_custom_loop(
    config: TrainConfig,
    data: TrainingData,
    folder: RunFolder,
    resume: bool,
    step_callback: StepCallback | None = None,
):
    """Train with the custom loop; returns `(model, history rows)`.

    Args:
        config: the run's config.
        data: training and validation arrays.
        folder: the run folder (exists; its record is written).
        resume: restore the last checkpoint of `folder` first.
        step_callback: called with the global step after every step.
    """
    seed_everything(config)
    strategy = make_strategy(config.strategy)
    check_strategy(config, strategy)
    state = _build_state(config, strategy, folder, len(data.x) // config.batch_size)
    history = _restore(state, folder) if resume else []
    train_step, validation_step = _step_functions(config, strategy, state)
    x_all, y_all = tf.constant(data.x), tf.constant(data.y_true)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True

    def epoch_batches(epoch_number: int, first_step: int):
        batches = gather_batches(
            x_all, y_all, config.batch_size, seed=config.seed, epoch=epoch_number,
            first_batch=first_step, drop_remainder=True,
        )
        return strategy.experimental_distribute_dataset(batches.with_options(options))

    writers = {
        name: tf.summary.create_file_writer(str(folder.tensorboard / name))
        for name in ("train", "validation")
    }
    progress = Progress("train", unit="steps", interval_s=2.0)
    while int(state.epoch.numpy()) < config.epochs:
        epoch_number = int(state.epoch.numpy())
        epoch_started = time.monotonic()
        batches = epoch_batches(epoch_number, int(state.step_in_epoch.numpy()))
        row = _train_epoch(config, state, train_step, batches, len(data.x), writers, progress,
                           step_callback)
        row.update(_validate(validation_step, data))
        row["seconds"] = round(time.monotonic() - epoch_started, 3)
        history.append(row)
        state.epoch.assign(epoch_number + 1)
        state.step_in_epoch.assign(0)
        _log_epoch(writers, row, state.model, data)
        folder.write_history(history)
        monitored = row["val_loss"] if row["val_loss"] is not None else row["loss"]
        selectable = row["epoch"] >= config.first_selectable_epoch
        if (
            selectable
            and monitored is not None
            and monitored < float(state.best_monitored_loss.numpy())
        ):
            state.best_monitored_loss.assign(monitored)
            state.best_manager.save(checkpoint_number=int(state.global_step.numpy()))
        state.save_last()
        progress.write(_epoch_line(row, config.epochs))
    for writer in writers.values():
        writer.close()
    # The saved model is the plain one: it loads on any backend and any number of devices.
    _synchronize_batch_norm(state.model, False)
    if config.model_selection == "best" and state.best_manager.latest_checkpoint:
        tf.train.Checkpoint(model=state.model).restore(
            state.best_manager.latest_checkpoint
        ).expect_partial()
    return state.model, history


def _synchronize_batch_norm(model, synchronized: bool) -> None:
    """Batch statistics over the global batch (all replicas), as one process computes them."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = synchronized


def _train_epoch(
    config: TrainConfig, state: _LoopState, train_step, batches, count: int, writers: dict,
    progress, step_callback: StepCallback | None,
) -> dict:
    """The optimisation steps of one epoch (the rest of it, when resuming); its history row."""
    steps_per_epoch = count // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    first_step = int(state.step_in_epoch.numpy())
    loss_sum = error_sum = 0.0
    done = 0
    for step, (x, y_true) in enumerate(batches, first_step):
        loss, mean_error = train_step(x, y_true)
        loss, mean_error = float(loss), float(mean_error)
        loss_sum += loss
        error_sum += mean_error
        done += 1
        state.global_step.assign_add(1)
        state.step_in_epoch.assign(step + 1)
        current = int(state.global_step.numpy())
        if current % _STEP_SCALARS_EVERY == 0:
            with writers["train"].as_default(step=current):
                _scalar("step/loss", loss)
                _scalar("step/shape_error", mean_error)
        progress(current, total_steps, {"loss": loss_sum / done, "E": error_sum / done})
        if (
            config.checkpoint_every_steps
            and current % config.checkpoint_every_steps == 0
            and step + 1 < steps_per_epoch
        ):
            state.last_manager.save(checkpoint_number=current)
        if step_callback is not None:
            step_callback(current)
    return {
        "epoch": int(state.epoch.numpy()) + 1,
        "loss": loss_sum / done if done else None,
        "shape_error": error_sum / done if done else None,
    }


def _validate(validation_step, data: TrainingData) -> dict:
    count = len(data.val_x)
    if not count:
        return {"val_loss": None, "val_pixel_accuracy": None, "val_dice": None,
                "val_shape_error": None}
    totals = np.zeros(4)
    for start in range(0, count, _VALIDATION_BATCH):
        stop = start + _VALIDATION_BATCH
        values = validation_step(data.val_x[start:stop], data.val_y_true[start:stop])
        totals += [float(value) for value in values]
    names = ("val_loss", "val_pixel_accuracy", "val_dice", "val_shape_error")
    return dict(zip(names, (totals / count).tolist()))


def _log_epoch(writers: dict, row: dict, model, data: TrainingData) -> None:
    epoch = row["epoch"]
    with writers["train"].as_default(step=epoch):
        for name in ("loss", "shape_error"):
            if row[name] is not None:
                _scalar(f"epoch/{name}", row[name])
    if row["val_loss"] is None:
        return
    with writers["validation"].as_default(step=epoch):
        for name in ("loss", "pixel_accuracy", "dice", "shape_error"):
            _scalar(f"epoch/{name}", row[f"val_{name}"])
        x = data.val_x[:_PREVIEW_PATCHES]
        y_true = data.val_y_true[:_PREVIEW_PATCHES]
        _images(
            "validation/patch | truth | prediction",
            _preview_image(x, y_true, model(x, training=False)),
        )


def _epoch_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for name in _EPOCH_LINE_VALUES:
        if row.get(name) is not None:
            parts.append(f"{name} {row[name]:.4f}")
    parts.append(f"({row['seconds']:.1f} s)")
    return " ".join(parts)

