"""Fully automatic mode: find the vertebra centres C2-T1 on a whole lateral radiograph.

C3-C7 are segmented; C2 and T1 help to name them (`SEGMENTED_LEVELS`).

`Locator` runs a small heatmap network (`network.build_locator`) on the film resized to a
fixed long side, decodes one peak per level with sub-pixel refinement (`heatmaps`) and maps
it back to image pixels; a level whose peak is under `MISSING_THRESHOLD` is reported missing.
`vertseg-tf-train --method locator` trains it (`training`).
"""

from vertseg_tf.locate.heatmaps import (
    LOCATED_LEVELS,
    MISSING_THRESHOLD,
    SEGMENTED_LEVELS,
    CanvasGeometry,
    decode_peaks,
    render_heatmaps,
)
from vertseg_tf.locate.locator import LocatedLevel, Locator, locate_from_heatmaps
from vertseg_tf.locate.network import LOCATOR_SPECS, LocatorSpec, build_locator, locator_levels

__all__ = [
    "LOCATED_LEVELS",
    "LOCATOR_SPECS",
    "MISSING_THRESHOLD",
    "SEGMENTED_LEVELS",
    "CanvasGeometry",
    "LocatedLevel",
    "Locator",
    "LocatorSpec",
    "build_locator",
    "decode_peaks",
    "locate_from_heatmaps",
    "locator_levels",
    "render_heatmaps",
]
