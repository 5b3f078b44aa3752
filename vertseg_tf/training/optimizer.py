"""The optimizer of both training loops: RMSprop with the config's learning-rate schedule.

Keras only (no TensorFlow import), so the "fit" loop keeps running on any backend. The
schedule is a function of the optimizer's step count, which both loops checkpoint, so a
resumed run continues on the same curve.
"""

from __future__ import annotations

import keras

from vertseg_tf.training.config import TrainConfig

__all__ = ["learning_rate", "make_optimizer"]


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """The learning rate of `config`: a float, or a Keras schedule of the step count.

    "constant": `effective_learning_rate`; "cosine": cosine decay from it to 0 over
    `epochs * steps_per_epoch` steps; "step": times `lr_step_factor` after every
    `lr_step_epochs` epochs.
    """
    initial = config.effective_learning_rate
    steps_per_epoch = max(int(steps_per_epoch), 1)
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial, decay_steps=config.epochs * steps_per_epoch
        )
    if config.lr_schedule == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            initial,
            decay_steps=config.lr_step_epochs * steps_per_epoch,
            decay_rate=config.lr_step_factor,
            staircase=True,
        )
    return initial


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The paper's RMSprop at the config's learning rate and schedule."""
    return keras.optimizers.RMSprop(learning_rate=learning_rate(config, steps_per_epoch))

