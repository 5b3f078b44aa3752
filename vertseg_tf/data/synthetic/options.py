"""The synthetic generator's choices, in a module that imports nothing, so the CLI's parser
offers them without loading numpy or OpenCV."""

from __future__ import annotations

__all__ = ["FACINGS", "GENERATOR_VERSION", "GENERATOR_VERSIONS", "IMAGE_FORMATS", "IMAGE_SIZES"]

GENERATOR_VERSION = 2
"""The generator `generate` uses by default: 2, the realistic one."""
GENERATOR_VERSIONS = (1, 2)
IMAGE_SIZES = ("full", "small")
"""Output sizes: "full" (1500-2500 px), "small" (about 512 px); `scene.SIZES` holds their ranges."""
IMAGE_FORMATS = {"png": ".png", "dicom": ".dcm"}
"""Image format -> file suffix: 16-bit PNG or DICOM."""
FACINGS = ("left", "right", "random")
"""The side the patient faces; "random" draws left or right 50/50 per image."""
