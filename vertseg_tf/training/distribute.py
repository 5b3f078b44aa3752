"""Seeding and tf.distribute strategies, shared by the custom loop and the `model.fit` path.

TensorFlow is imported inside the functions that need it: `is_multiworker_chief` runs before
any TensorFlow start-up, and the fit path imports this module also under `KERAS_BACKEND=jax`.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from vertseg_tf.errors import ConfigError
from vertseg_tf.training.config import TrainConfig

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["check_strategy", "is_multiworker_chief", "make_strategy", "seed_everything"]


def seed_everything(config: TrainConfig) -> None:
    """Seed Python, numpy and TensorFlow; switch on op determinism when asked."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `TrainConfig.strategy`.

    "default" is one device; "mirrored" mirrors over all local GPUs, else over all logical
    CPU devices; "multiworker" reads the cluster from the `TF_CONFIG` environment variable.

    Raises:
        ConfigError: "multiworker" without `TF_CONFIG`.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
    if "TF_CONFIG" not in os.environ:
        raise ConfigError(
            "--strategy multiworker reads the cluster from TF_CONFIG, which is not set"
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_strategy(config: TrainConfig, strategy: tf.distribute.Strategy) -> None:
    """Refuse a batch that does not split evenly over the replicas.

    (The host E, e_mode "py_function", is refused for every strategy but "default" by
    `TrainConfig` itself, before anything is written.)
    """
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(
            f"batch_size {config.batch_size} is not divisible by the {replicas} replicas"
        )


def is_multiworker_chief() -> bool:
    """Whether this process is the chief of the `TF_CONFIG` cluster (the task "chief", or
    worker 0 of a cluster without one); True without `TF_CONFIG`."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except ValueError:
        raise ConfigError("TF_CONFIG is not valid JSON") from None
    task = cluster.get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    has_chief = "chief" in cluster.get("cluster", {})
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and not has_chief
