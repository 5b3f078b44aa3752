"""Deployment: SavedModel and TFLite export (`export`), radiograph segmentation (`inference`).

`Segmenter` and `export_run` load lazily, so importing this package does not start TensorFlow.
"""

from __future__ import annotations

from vertseg_tf.lazy import lazy_attributes

__all__ = ["Segmenter", "VertebraSegmentation", "export_run"]

__getattr__, __dir__ = lazy_attributes(__name__, {
    "Segmenter": "vertseg_tf.deploy.inference",
    "VertebraSegmentation": "vertseg_tf.deploy.inference",
    "export_run": "vertseg_tf.deploy.export",
})
