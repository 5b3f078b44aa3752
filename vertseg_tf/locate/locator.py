"""`Locator`: find the vertebra centres (C2-T1, or C3-C7 for an earlier locator) on a whole
radiograph, without clicks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vertseg_tf.errors import DataError
from vertseg_tf.locate.heatmaps import MISSING_THRESHOLD, channel_levels, decode_chain, local_mass
from vertseg_tf.locate.network import LocatorSpec, locator_levels, prepare_canvas

__all__ = ["LocatedLevel", "Locator", "locate_from_heatmaps"]


@dataclass(frozen=True)
class LocatedLevel:
    """One level's result: `center` (x, y) in image pixels, or None when the level is missing
    (its heatmap peak `confidence` is under the threshold)."""

    label: str
    center: np.ndarray | None
    confidence: float

    @property
    def found(self) -> bool:
        return self.center is not None


def locate_from_heatmaps(heatmaps, geometry, threshold: float = MISSING_THRESHOLD,
                         levels=None) -> list[LocatedLevel]:
    """Decode (h, w, L) spatial distributions into one `LocatedLevel` per level, centres in
    image pixels, the levels placed jointly in spine order (`decode_chain`); the confidence
    is the probability mass within 2 heatmap pixels of the peak (`local_mass`). `levels`
    names the channels (default `channel_levels`)."""
    levels = channel_levels(np.shape(heatmaps)[-1]) if levels is None else levels
    results = []
    peaks = decode_chain(heatmaps, threshold, confidence=local_mass(heatmaps))
    for label, peak in zip(levels, peaks):
        center = geometry.to_image(peak.xy[None])[0] if peak.found else None
        results.append(LocatedLevel(label, center, peak.confidence))
    return results


class Locator:
    """The locator network with its pre- and post-processing.

    Args:
        model: a `keras.Model` from `build_locator`, a `.keras` file, a locator run folder
            (its `model.keras`), or None / "pretrained" for the locator shipped with vertseg-tf.
        threshold: peak value under which a level is reported missing
            (default `MISSING_THRESHOLD`, 0.3).

    Example:
        >>> locator = Locator()  # doctest: +SKIP
        >>> [(level.label, level.found) for level in locator.locate(image)]  # doctest: +SKIP
        [('C2', True), ('C3', True), ('C4', True), ('C5', True), ('C6', True), ('C7', False),
         ('T1', False)]
    """

    def __init__(self, model=None, threshold: float = MISSING_THRESHOLD):
        self.threshold = float(threshold)
        self.source = "pretrained" if model in (None, "pretrained") else str(model)
        if model is None or model == "pretrained":
            from vertseg_tf.pretrained import load_pretrained_locator

            model = load_pretrained_locator()
        elif isinstance(model, (str, Path)):
            model = _load_locator_file(Path(model))
        self.model = model
        self.levels = locator_levels(model)
        side = int(model.input_shape[1])
        self.spec = LocatorSpec(long_side=side, stride=side // int(model.output_shape[1]))

    def heatmaps(self, image: np.ndarray):
        """(h, w, L) heatmaps of one radiograph and its `CanvasGeometry`."""
        image = np.asarray(image)
        if image.ndim != 2 or min(image.shape) < 2:
            raise DataError("image", f"expected a 2-D radiograph, got shape {image.shape}")
        canvas, geometry = prepare_canvas(image, self.spec)
        maps = self.model.predict_on_batch(canvas[None, ..., None])
        return np.asarray(maps)[0], geometry

    def locate(self, image: np.ndarray) -> list[LocatedLevel]:
        """One `LocatedLevel` per level of `levels` (C2-T1 for the shipped locator), top to
        bottom; missing levels have no centre."""
        maps, geometry = self.heatmaps(image)
        return locate_from_heatmaps(maps, geometry, self.threshold, self.levels)


def _load_locator_file(path: Path):
    from vertseg_tf.models_io import load_keras_model
    from vertseg_tf.training.run_folder import RunFolder

    if path.is_dir():
        path = RunFolder(path).model_path
    model = load_keras_model(path)
    if len(model.input_shape) != 4 or len(model.output_shape) != 4:
        raise DataError(path, f"not a locator model (output shape {model.output_shape})")
    try:
        locator_levels(model)
    except ValueError as error:
        raise DataError(path, f"not a locator model: {error}") from None
    return model
