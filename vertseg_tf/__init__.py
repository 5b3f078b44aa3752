"""vertseg-tf: shape-aware UNet vertebrae segmentation (Al Arif, Knapp, Slabaugh).

Importing the package is cheap: TensorFlow and Keras load only when a model-side name
(`load_model`, `UNet`, `build_unet`, `UNetConfig`) is first used. Using any of them registers
every vertseg-tf Keras object (the UNet, the losses, the metrics), so a plain
`keras.saving.load_model("model.keras")` works after it.

Example:
    >>> import vertseg_tf
    >>> model = vertseg_tf.UNet.from_preset("smoke")
    >>> model.count_params()
    102810
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = [
    "KERAS_OBJECT_MODULES",
    "UNet",
    "UNetConfig",
    "__version__",
    "build_unet",
    "load_model",
    "load_pretrained",
    "register_keras_objects",
]

KERAS_OBJECT_MODULES = (
    "vertseg_tf.model", "vertseg_tf.losses", "vertseg_tf.metrics_keras", "vertseg_tf.locate.network"
)
"""Every module that registers Keras objects under the package name "vertseg_tf"."""

_LAZY = {
    "UNet": "vertseg_tf.model",
    "UNetConfig": "vertseg_tf.model",
    "build_unet": "vertseg_tf.model",
    "load_model": "vertseg_tf.loading",
    "load_pretrained": "vertseg_tf.pretrained",
}


def register_keras_objects() -> None:
    """Import every module of `KERAS_OBJECT_MODULES`, registering their Keras classes.

    Example:
        >>> register_keras_objects()
        >>> import keras
        >>> keras.saving.get_registered_object("vertseg_tf>ShapeAwareLoss").__name__
        'ShapeAwareLoss'
    """
    for module in KERAS_OBJECT_MODULES:
        importlib.import_module(module)


def __getattr__(name):
    if name in _LAZY:
        register_keras_objects()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vertseg_tf' has no attribute {name!r}")
