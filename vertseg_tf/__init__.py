"""vertseg-tf: shape-aware UNet vertebrae segmentation (Al Arif, Knapp, Slabaugh).

Importing the package is cheap: TensorFlow and Keras load only when a model-side name
(`build_unet`, `UNetConfig`) is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["UNetConfig", "__version__", "build_unet", "load_pretrained"]


def __getattr__(name):
    if name in ("build_unet", "UNetConfig"):
        from vertseg_tf import model

        return getattr(model, name)
    if name == "load_pretrained":
        from vertseg_tf.pretrained import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'vertseg_tf' has no attribute {name!r}")
