"""Deployment: SavedModel and TFLite export (`export`), radiograph segmentation (`inference`).

`Segmenter` and `export_run` load lazily, so importing this package does not start TensorFlow.
"""

from __future__ import annotations

__all__ = ["Segmenter", "VertebraSegmentation", "export_run"]


def __getattr__(name):
    if name in ("Segmenter", "VertebraSegmentation"):
        from vertseg_tf.deploy import inference

        return getattr(inference, name)
    if name == "export_run":
        from vertseg_tf.deploy import export

        return export.export_run
    raise AttributeError(f"module 'vertseg_tf.deploy' has no attribute {name!r}")
