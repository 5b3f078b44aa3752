"""The splits of the dataset format and the importers' pixel origins, in a module that imports
nothing, so the CLI's parser offers them without loading numpy (the import formats live in the
equally light `import_formats`)."""

from __future__ import annotations

__all__ = ["PIXEL_ORIGINS", "SPLITS"]

SPLITS = ("train", "val", "test")
"""The splits of a native dataset, in their order."""
PIXEL_ORIGINS = ("corner", "center")
"""Where a source format puts pixel (0, 0): at the pixel's corner or at its centre."""
