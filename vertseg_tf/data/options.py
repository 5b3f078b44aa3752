"""The choices of the dataset format and the importers, in a module that imports nothing, so
the CLI's parser offers them without loading numpy."""

from __future__ import annotations

__all__ = ["IMPORT_FORMATS", "PIXEL_ORIGINS", "SPLITS"]

SPLITS = ("train", "val", "test")
"""The splits of a native dataset, in their order."""
IMPORT_FORMATS = ("labelme", "coco", "aasce", "corners-csv")
"""The annotation formats `vertseg_tf.data.importers.import_dataset` reads."""
PIXEL_ORIGINS = ("corner", "center")
"""Where a source format puts pixel (0, 0): at the pixel's corner or at its centre."""
