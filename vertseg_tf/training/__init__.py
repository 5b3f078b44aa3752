"""Training: `TrainConfig` and its presets, `train` (custom TensorFlow loop or `model.fit`).

Importing this package imports no TensorFlow: the `model.fit` path also runs under
`KERAS_BACKEND=jax`; the custom loop and the tf.distribute strategies load TensorFlow when
they run.

Example:
    >>> from vertseg_tf.training import TRAIN_PRESETS, train
    >>> config = TRAIN_PRESETS["demo"].replace(method="unet-s", epochs=3)
    >>> result = train(config, dataset=None, out="runs/demo")  # doctest: +SKIP
"""

from vertseg_tf.data.pipeline import epoch_order
from vertseg_tf.training.config import (
    LOOPS,
    METHODS,
    MIXED_PRECISION,
    STRATEGIES,
    TRAIN_PRESETS,
    TrainConfig,
    load_config,
)
from vertseg_tf.training.data import TrainingData, load_training_data, resolve_dataset
from vertseg_tf.training.run import TrainResult, fit_asm_run, train
from vertseg_tf.training.run_folder import RunFolder, read_run_config

__all__ = [
    "LOOPS",
    "METHODS",
    "MIXED_PRECISION",
    "STRATEGIES",
    "TRAIN_PRESETS",
    "RunFolder",
    "TrainConfig",
    "TrainResult",
    "TrainingData",
    "epoch_order",
    "fit_asm_run",
    "load_config",
    "load_training_data",
    "read_run_config",
    "resolve_dataset",
    "train",
]
