"""The SavedModel's `locate` signature: the whole `Locator.locate` path in one TensorFlow graph.

Input contract (`IMAGE_INPUT`): one radiograph as a float32 (H, W) tensor of raw intensities,
any size of at least 2 x 2 (a uint8 or uint16 film converts to float32 without loss; no batch
axis, because films differ in size). The graph does what `vertseg_tf.locate` does on the host:
it resizes the film (area interpolation, TensorFlow's `ResizeArea`, the same box weights as
OpenCV's `INTER_AREA`) so that its long side is the locator's canvas side, normalises it to
zero mean and unit standard deviation, places it at the canvas's top-left corner, runs the
network, and places the levels jointly in spine order as `decode_chain` does (`chain_graph`),
with the threshold fixed at export time.

Outputs (one row per level of the locator, `Locator.levels`: C2-T1 for the shipped one, top
to bottom):
    - `centers` float32 (L, 2): (x, y) in pixels of the input image; NaN for a missing level.
    - `found` bool (L,): False where the level's confidence is under the threshold.
    - `confidences` float32 (L,), `labels` string (L,), and `scale` float32 (): canvas pixels
      per image pixel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vertseg_tf.deploy.chain_graph import decode_chain_in_graph

__all__ = [
    "IMAGE_INPUT",
    "LOCATE_CENTER_TOLERANCE_PX",
    "LOCATE_CONFIDENCE_TOLERANCE",
    "LOCATE_SIGNATURE",
    "add_locate_endpoint",
    "checked_image",
    "level_labels",
    "locate_in_graph",
    "locate_manifest",
    "locate_parity",
    "parity_films",
    "resolve_locator",
]

LOCATE_SIGNATURE = "locate"
IMAGE_INPUT = "image"
LOCATE_CENTER_TOLERANCE_PX = 0.05
"""Largest allowed distance, in image pixels, between a served centre and `Locator.locate`'s."""
LOCATE_CONFIDENCE_TOLERANCE = 2e-3
"""Largest allowed difference between a served confidence and `Locator.locate`'s."""


def resolve_locator(locator):
    """A `Locator` from what `export_run(locator=...)` takes: a `Locator`, "pretrained", a
    locator run folder or a `.keras` file; None stays None (no `locate` signature)."""
    from vertseg_tf.locate.locator import Locator

    if locator is None or isinstance(locator, Locator):
        return locator
    return Locator(locator)


def _canvas_in_graph(image, long_side: int):
    """`prepare_canvas` at offset (0, 0): the (S, S) normalised canvas and the scale (float64)."""
    import tensorflow as tf

    shape = tf.cast(tf.shape(image), tf.float64)
    scale = long_side / tf.reduce_max(shape)
    # Python's round() in `CanvasGeometry.resized_shape` rounds half to even, as tf.round does.
    size = tf.clip_by_value(tf.cast(tf.round(shape * scale), tf.int32), 1, long_side)
    resized = tf.image.resize(image[None, :, :, None], size, method="area")[0, :, :, 0]
    values = tf.cast(resized, tf.float64)
    mean = tf.reduce_mean(values)
    std = tf.sqrt(tf.reduce_mean(tf.square(values - mean)))
    normalised = tf.cast((values - mean) / tf.maximum(std, 1e-6), tf.float32)
    canvas = tf.pad(normalised, [[0, long_side - size[0]], [0, long_side - size[1]]])
    return tf.ensure_shape(canvas, (long_side, long_side)), scale


def checked_image(image):
    """The (H, W) image of a signature, its rank and size checked in the graph: a signature
    does not check shapes itself, and a wrong rank would reach the resize op."""
    import tensorflow as tf

    image = tf.ensure_shape(image, (None, None), name="check_image_is_2d")
    tf.debugging.assert_greater_equal(
        tf.shape(image), 2, message="the image must be at least 2 x 2 pixels")
    return image


def locate_in_graph(image, locator) -> dict:
    """`locator.locate(image)` on an (H, W) float32 tensor: "centers" (L, 2) float64 image xy
    (NaN where missing), "found" (L,) bool, "confidences" (L,) float64, "scale" float64."""
    spec = locator.spec
    canvas, scale = _canvas_in_graph(image, spec.long_side)
    heatmaps = locator.model(canvas[None, :, :, None], training=False)[0]
    xy, confidence, found = decode_chain_in_graph(heatmaps, locator.threshold)
    centers = (xy + 0.5) * spec.stride / scale - 0.5  # `CanvasGeometry.to_image`, offset 0
    return {"centers": centers, "found": found, "confidences": confidence, "scale": scale}


def level_labels(locator) -> list[str]:
    """The level names of the locator's output channels, top to bottom."""
    return list(locator.levels)


def add_locate_endpoint(archive, locator) -> None:
    """Track `locator.model` in a `keras.export.ExportArchive` and add the `locate` endpoint."""
    import tensorflow as tf

    archive.track(locator.model)
    labels = level_labels(locator)

    def locate(image):
        located = locate_in_graph(checked_image(image), locator)
        return {
            "centers": tf.cast(located["centers"], tf.float32),
            "found": located["found"],
            "confidences": tf.cast(located["confidences"], tf.float32),
            "labels": tf.constant(labels),
            "scale": tf.cast(located["scale"], tf.float32),
        }

    spec_in = tf.TensorSpec((None, None), tf.float32, name=IMAGE_INPUT)
    archive.add_endpoint(LOCATE_SIGNATURE, locate, input_signature=[spec_in])


def parity_films(count: int = 3, seed: int = 0) -> tuple[list[np.ndarray], str]:
    """Synthetic v2 films (`synthesize(seed, k, size="small", version=2)`), the first also
    transposed (a landscape film) and decimated 5 x 3 (a small film, of another aspect)."""
    from vertseg_tf.data.synthetic import synthesize

    films = [synthesize(seed, index, size="small", version=2).image.astype(np.float32)
             for index in range(count)]
    films += [np.ascontiguousarray(films[0].T), np.ascontiguousarray(films[0][::5, ::3])]
    return films, (f"{count} synthetic v2 small films (seed {seed}), the first also "
                   "transposed and decimated 5 x 3")


def locate_parity(served: list[dict[str, np.ndarray]], locator, films) -> dict[str, Any]:
    """The served `locate` outputs of `films` against `locator.locate`.

    Returns:
        The figures; "passed" is False, with the reason under "problem", when a level is found
        on one side only, a missing level has a centre, or a centre or confidence is beyond
        its tolerance.
    """
    center_error = confidence_error = 0.0
    found_levels, problems = 0, []
    for number, (outputs, film) in enumerate(zip(served, films)):
        reference = locator.locate(film)
        found = np.array([level.found for level in reference])
        if not np.array_equal(outputs["found"], found):
            problems.append(f"film {number}: found {outputs['found'].tolist()}, "
                            f"Locator.locate {found.tolist()}")
            continue
        if not np.isnan(outputs["centers"][~found]).all():
            problems.append(f"film {number}: a centre for a missing level")
        confidences = np.array([level.confidence for level in reference])
        confidence_error = max(confidence_error,
                               float(np.abs(outputs["confidences"] - confidences).max()))
        if found.any():
            centers = np.array([level.center for level in reference if level.found])
            gaps = np.linalg.norm(outputs["centers"][found] - centers, axis=1)
            center_error = max(center_error, float(gaps.max()))
        found_levels += int(found.sum())
    if center_error > LOCATE_CENTER_TOLERANCE_PX:
        problems.append(f"centres differ by up to {center_error:.3g} px")
    if confidence_error > LOCATE_CONFIDENCE_TOLERANCE:
        problems.append(f"confidences differ by up to {confidence_error:.3g}")
    return {"films": len(films), "levels_found": found_levels,
            "levels": len(films) * len(locator.levels),
            "max_center_diff_px": center_error, "max_confidence_diff": confidence_error,
            "center_tolerance_px": LOCATE_CENTER_TOLERANCE_PX,
            "confidence_tolerance": LOCATE_CONFIDENCE_TOLERANCE,
            "passed": not problems, "problem": "; ".join(problems) or None}


def locate_manifest(locator, film_source: str) -> dict[str, Any]:
    """The manifest's `locate` signature entry and locator description."""
    levels = len(locator.levels)
    signature = {
        "inputs": {IMAGE_INPUT: {"dtype": "float32", "shape": [None, None]}},
        "outputs": {"centers": {"dtype": "float32", "shape": [levels, 2]},
                    "found": {"dtype": "bool", "shape": [levels]},
                    "confidences": {"dtype": "float32", "shape": [levels]},
                    "labels": {"dtype": "string", "shape": [levels]},
                    "scale": {"dtype": "float32", "shape": []}},
        "input_preprocessing": "raw whole radiograph (H, W), resized and normalised in graph",
    }
    # A Locator built on an in-memory model names it by its repr.
    source = "in-memory model" if locator.source.startswith("<") else locator.source
    locator_record = {
        "source": source, "levels": level_labels(locator),
        "canvas": locator.spec.long_side, "stride": locator.spec.stride,
        "missing_threshold": locator.threshold,
        "parameters": int(locator.model.count_params()),
        "parity_films": film_source,
    }
    return {"signature": signature, "locator": locator_record}
