"""Fully automatic mode: find the vertebra centres C3-C7 on a whole lateral radiograph.

`Locator` runs a small heatmap network (`network.build_locator`) on the film resized to a
fixed long side, decodes one peak per level with sub-pixel refinement (`heatmaps`) and maps
it back to image pixels; a level whose peak is under `MISSING_THRESHOLD` is reported missing.
`vertseg-tf-train --method locator` trains it (`training`).
"""

from vertseg_tf.locate.heatmaps import (
    LOCATED_LEVELS,
    MISSING_THRESHOLD,
    CanvasGeometry,
    decode_peaks,
    render_heatmaps,
)
from vertseg_tf.locate.locator import LocatedLevel, Locator, locate_from_heatmaps
from vertseg_tf.locate.network import LOCATOR_SPECS, LocatorSpec, build_locator

__all__ = [
    "LOCATED_LEVELS",
    "LOCATOR_SPECS",
    "MISSING_THRESHOLD",
    "CanvasGeometry",
    "LocatedLevel",
    "Locator",
    "LocatorSpec",
    "build_locator",
    "decode_peaks",
    "locate_from_heatmaps",
    "render_heatmaps",
]
