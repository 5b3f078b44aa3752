"""Training: `TrainConfig` and its presets, `train` (custom TensorFlow loop or `model.fit`).

Importing this package is light (no TensorFlow, no numpy): each name loads its module on
first use. The `model.fit` path also runs under `KERAS_BACKEND=jax`; the custom loop and the
tf.distribute strategies load TensorFlow when they run.

Example:
    >>> from vertseg_tf.training import TRAIN_PRESETS, train
    >>> config = TRAIN_PRESETS["demo"].replace(method="unet-s", epochs=3)
    >>> result = train(config, dataset=None, out="runs/demo")  # doctest: +SKIP
"""

from vertseg_tf.lazy import lazy_attributes

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

_CONFIG = "vertseg_tf.training.config"
__getattr__, __dir__ = lazy_attributes(__name__, {
    **dict.fromkeys(
        ("LOOPS", "METHODS", "MIXED_PRECISION", "STRATEGIES", "TRAIN_PRESETS", "TrainConfig",
         "load_config"), _CONFIG),
    **dict.fromkeys(("TrainingData", "load_training_data", "resolve_dataset"),
                    "vertseg_tf.training.data"),
    **dict.fromkeys(("TrainResult", "fit_asm_run", "train"), "vertseg_tf.training.run"),
    **dict.fromkeys(("RunFolder", "read_run_config"), "vertseg_tf.training.run_folder"),
    "epoch_order": "vertseg_tf.data.pipeline",
})
