"""The locator network: a small Keras encoder-decoder from the whole radiograph to heatmaps.

The canvas is the radiograph resized to a long side of `long_side` pixels on a square of that
size; the heatmaps (one channel per level, top to bottom, a spatial softmax each) have half
its resolution. The model's name records its levels (`locator_levels`). Presets size it for
tests, a CPU and a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vertseg_tf.locate.heatmaps import LOCATED_LEVELS, channel_levels

__all__ = [
    "LOCATOR_SPECS",
    "LocatorSpec",
    "build_locator",
    "heatmap_loss",
    "locator_levels",
    "normalise_canvas",
    "prepare_canvas",
]


@dataclass(frozen=True)
class LocatorSpec:
    """The locator's architecture: canvas size, width and depth.

    Args:
        long_side: canvas side in pixels (the radiograph's long side after resizing).
        base_width: filters of the first level; doubled per level up to 4x.
        depth: poolings in the encoder (the heatmaps are taken at stride 2).
        sigma: target Gaussian standard deviation in heatmap pixels.
    """

    long_side: int = 256
    base_width: int = 8
    depth: int = 5
    sigma: float = 1.5
    stride: int = 2


LOCATOR_SPECS = {
    "smoke": LocatorSpec(long_side=64, base_width=4, depth=3),
    "demo": LocatorSpec(),
    "cpu": LocatorSpec(),
    "paper": LocatorSpec(long_side=512, base_width=16, depth=6, sigma=2.0),
}
"""Locator sizes by the `TrainConfig.model` preset name."""


def normalise_canvas(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation over the image (bone bright stays bright)."""
    image = np.asarray(image, np.float32)
    return (image - image.mean()) / max(float(image.std()), 1e-6)


def prepare_canvas(image: np.ndarray, spec: LocatorSpec, offset=(0, 0), flip: bool = False):
    """Resize `image` to the canvas (area interpolation), normalise it and place it at `offset`.

    Returns:
        `(canvas (long_side, long_side) float32, CanvasGeometry)`; with `flip` the resized
        image is mirrored left to right before placing (the geometry does not know about it).
    """
    import cv2

    from vertseg_tf.locate.heatmaps import CanvasGeometry

    geometry = CanvasGeometry.fit(np.shape(image), spec.long_side, spec.stride, offset)
    height, width = geometry.resized_shape(np.shape(image))
    resized = cv2.resize(np.asarray(image, np.float32), (width, height),
                         interpolation=cv2.INTER_AREA)
    if flip:
        resized = resized[:, ::-1]
    canvas = np.zeros((spec.long_side, spec.long_side), np.float32)
    x0, y0 = int(offset[0]), int(offset[1])
    canvas[y0:y0 + height, x0:x0 + width] = normalise_canvas(resized)
    return canvas, geometry


def _register(function):
    import keras

    return keras.saving.register_keras_serializable(package="vertseg_tf")(function)


def _block(x, filters: int, name: str):
    import keras

    for k in range(2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                name=f"{name}_conv{k}")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn{k}")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu{k}")(x)
    return x


_NAME = "vertseg_locator"


def locator_levels(model) -> tuple[str, ...]:
    """The levels of a locator model's channels, top to bottom, from the name `build_locator`
    gave it ("vertseg_locator_C2_T1": C2 to T1 of `LOCATED_LEVELS`); for a model named
    otherwise, `channel_levels` (5 channels: an earlier locator of C3-C7).

    Raises:
        ValueError: the name gives no levels and the channels are not 5, or the name's span
            does not match the channels.
    """
    channels = int(model.output_shape[-1])
    parts = model.name.split("_")
    if model.name.startswith(_NAME + "_") and len(parts) == 4 and set(parts[2:]) <= set(
            LOCATED_LEVELS):
        first, last = (LOCATED_LEVELS.index(part) for part in parts[2:])
        levels = LOCATED_LEVELS[first:last + 1]
    else:
        levels = channel_levels(channels)
    if len(levels) != channels:
        raise ValueError(f"model {model.name!r} has {channels} channels, not one per level "
                         f"of {'-'.join((levels[0], levels[-1]))}")
    return levels


def build_locator(spec: LocatorSpec = LocatorSpec(), levels=LOCATED_LEVELS):
    """A functional Keras model: (N, S, S, 1) canvases to (N, S/2, S/2, L) heatmaps, each
    channel a probability distribution over the positions (a spatial softmax), so that a
    level the film does not show spreads its mass instead of inventing a sharp peak.

    Args:
        spec: the architecture.
        levels: consecutive levels of `LOCATED_LEVELS`, one channel each; the model's name
            records the first and the last (`locator_levels`).

    Example:
        >>> model = build_locator(LOCATOR_SPECS["smoke"])  # doctest: +SKIP
        >>> model.output_shape, locator_levels(model)  # doctest: +SKIP
        ((None, 32, 32, 7), ('C2', 'C3', 'C4', 'C5', 'C6', 'C7', 'T1'))
    """
    import keras

    levels = tuple(levels)
    first = LOCATED_LEVELS.index(levels[0])
    if levels != LOCATED_LEVELS[first:first + len(levels)]:
        raise ValueError(f"locator levels must be consecutive levels of {LOCATED_LEVELS}, "
                         f"got {levels}")

    side = spec.long_side
    inputs = keras.Input((side, side, 1), name="canvas")
    widths = [spec.base_width * min(2 ** level, 4) for level in range(spec.depth + 1)]
    skips = []
    x = inputs
    for level, filters in enumerate(widths[:-1]):
        x = _block(x, filters, f"down{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _block(x, widths[-1], "bottom")
    for level in range(spec.depth - 1, 0, -1):
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _block(x, widths[level], f"decode{level}")
    logits = keras.layers.Conv2D(len(levels), 1, name="logits")(x)
    height = side // spec.stride
    flat = keras.layers.Reshape((height * height, len(levels)), name="flatten")(logits)
    spread = keras.layers.Softmax(axis=1, name="spatial_softmax")(flat)
    outputs = keras.layers.Reshape((height, height, len(levels)), name="heatmaps")(spread)
    return keras.Model(inputs, outputs, name=f"{_NAME}_{levels[0]}_{levels[-1]}")


@_register
def heatmap_loss(y_true, y_pred):
    """Cross-entropy between each level's target, normalised to a distribution, and the
    predicted spatial distribution: a Gaussian for a level on the film, a constant (uniform:
    no place is that level) for one known to be off it, and an empty target (not annotated)
    adds 0."""
    import keras

    ops = keras.ops
    mass = ops.sum(y_true, axis=(1, 2), keepdims=True)
    target = y_true / ops.maximum(mass, 1e-12)
    return -ops.mean(ops.sum(target * ops.log(y_pred + 1e-9), axis=(1, 2)))
