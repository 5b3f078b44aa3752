"""The SavedModel's `segment_radiograph` signature: a whole film in, one row per vertebra out.

It is `Segmenter(model, locator=locator).segment(image)` without clicks
(`segment_located(image, located)`) in one TensorFlow graph: the `locate` graph
(`locate_signature.locate_in_graph`), then for the levels of C3-C7 found (C2 and T1 only
help to name them), top to bottom, the test patches cut in the graph (`graph_patches`, the
located scales), normalised, segmented by the UNet and thresholded with
`channels.predicted_mask`; then `LOCATED_REFINEMENTS` times each centre moved to its outline's
area centroid (`refine_graph`) and the film segmented again. Input: `image` float32 (H, W), as
for `locate`.

Outputs, one row per found level of C3-C7 (N rows). Where `Segmenter.segment` refuses the
found centres (fewer than two, since a lone centre has no neighbour to set its patch scale;
one off the image; two that coincide) there are no rows; the `locate` signature still shows
what was found.
    - `masks` uint8 (N, 64, 64): the patch mask (1 = vertebra), `VertebraSegmentation.patch_mask`.
    - `affines` float32 (N, 2, 3): the image -> patch map of each patch.
    - `labels` string (N,), `centers` float32 (N, 2) image xy, `confidences` float32 (N,).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vertseg_tf.channels import predicted_mask
from vertseg_tf.data.patches import PATCH_SIZE, patch_to_image
from vertseg_tf.deploy.graph_patches import (
    cut_patches_in_graph,
    normalise_patches,
    patch_affines_in_graph,
)
from vertseg_tf.deploy.locate_signature import (
    IMAGE_INPUT,
    checked_image,
    level_labels,
    locate_in_graph,
)
from vertseg_tf.deploy.refine_graph import outline_centroids_in_graph
from vertseg_tf.errors import VertsegError
from vertseg_tf.locate.heatmaps import LOCATED_REFINEMENTS, SEGMENTED_LEVELS

__all__ = [
    "SEGMENT_RADIOGRAPH_MIN_AGREEMENT",
    "SEGMENT_RADIOGRAPH_PLACEMENT_TOLERANCE_PX",
    "SEGMENT_RADIOGRAPH_SIGNATURE",
    "add_segment_radiograph_endpoint",
    "segment_radiograph_manifest",
    "segment_radiograph_parity",
]

SEGMENT_RADIOGRAPH_SIGNATURE = "segment_radiograph"
SEGMENT_RADIOGRAPH_MIN_AGREEMENT = 0.998
"""Smallest allowed share of mask pixels equal to the Python path's, over all vertebrae."""
SEGMENT_RADIOGRAPH_PLACEMENT_TOLERANCE_PX = 0.5
"""Largest allowed distance (image px) of a patch corner or refined centre from the Python
path's. Wider than `locate`'s 0.05 px: each refinement takes a centre from a mask, and the
refined centre of one vertebra sets its neighbours' patch axes and scales, so a mask pixel
that the graph's float32 patch flips carries down the spine (docs/deploy.md)."""
_COINCIDENT_PX = 1e-6  # `vertebra_poses` refuses centres closer than this
_CORNERS = np.array([[-0.5, -0.5], [PATCH_SIZE - 0.5, -0.5], [-0.5, PATCH_SIZE - 0.5],
                     [PATCH_SIZE - 0.5, PATCH_SIZE - 0.5]])


def _segmentable(centers, shape):
    """Whether `Segmenter.segment` takes these (N, 2) centres on an image of `shape`: at least
    two, all on the image (`geometry.inside_image`), no two closer than 1e-6 px."""
    import tensorflow as tf

    height, width = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    x, y = centers[:, 0], centers[:, 1]
    inside = tf.reduce_all((x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5))
    gaps = tf.norm(centers[:, None] - centers[None], axis=-1)
    count = tf.shape(centers)[0]
    apart = tf.reduce_all((gaps >= _COINCIDENT_PX) | tf.eye(count, dtype=tf.bool))
    return (count >= 2) & inside & apart


def _recentred_in_graph(centers, masks, affines, shape):
    """`recentred`: each (N, 2) float64 centre moved to the image xy of its patch mask's
    outline centroid, unless the mask is empty or the centroid lies off the image."""
    import tensorflow as tf

    patch_xy, found = outline_centroids_in_graph(masks)
    linear, offset = affines[:, :, :2], affines[:, :, 2]
    image_xy = tf.linalg.solve(linear, (patch_xy - offset)[..., None])[..., 0]
    height, width = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    x, y = image_xy[:, 0], image_xy[:, 1]
    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    return tf.where((found & inside)[:, None], image_xy, centers)


def _segmented_in_graph(image, centers, levels, model):
    """`segment_located`'s segmentation of (N >= 2, 2) float64 centres at their level numbers:
    segment, then `LOCATED_REFINEMENTS` times recentre and segment again. Returns (centres,
    affines, probabilities) of the last segmentation."""
    import tensorflow as tf

    def segment(at):
        affines = patch_affines_in_graph(at, levels)  # a missing level counts
        return affines, model(normalise_patches(cut_patches_in_graph(image, affines)),
                              training=False)

    affines, probabilities = segment(centers)
    for _ in range(LOCATED_REFINEMENTS):
        centers = _recentred_in_graph(centers, predicted_mask(probabilities), affines,
                                      tf.shape(image))
        affines, probabilities = segment(centers)
    return centers, affines, probabilities


def add_segment_radiograph_endpoint(archive, model, locator) -> None:
    """Add the `segment_radiograph` endpoint; both models must be tracked in `archive`."""
    import tensorflow as tf

    labels = tf.constant(level_labels(locator))
    segmented = tf.constant([label in SEGMENTED_LEVELS for label in level_labels(locator)])

    def segment_radiograph(image):
        image = checked_image(image)
        located = locate_in_graph(image, locator)
        keep = tf.where(located["found"] & segmented)[:, 0]
        found = tf.gather(located["centers"], keep)
        keep = keep[: tf.where(_segmentable(found, tf.shape(image)), tf.size(keep), 0)]
        centers = tf.gather(located["centers"], keep)
        # Not the network on an empty batch: a Keras layer can fail on one.
        centers, affines, probabilities = tf.cond(
            tf.size(keep) > 0, lambda: _segmented_in_graph(image, centers, keep, model),
            lambda: (centers, tf.zeros([0, 2, 3], tf.float64),
                     tf.zeros([0, PATCH_SIZE, PATCH_SIZE, 2])))
        return {
            "masks": tf.cast(predicted_mask(probabilities), tf.uint8),
            "affines": tf.cast(affines, tf.float32),
            "labels": tf.gather(labels, keep),
            "centers": tf.cast(centers, tf.float32),
            "confidences": tf.cast(tf.gather(located["confidences"], keep), tf.float32),
        }

    spec = tf.TensorSpec((None, None), tf.float32, name=IMAGE_INPUT)
    archive.add_endpoint(SEGMENT_RADIOGRAPH_SIGNATURE, segment_radiograph, input_signature=[spec])


def _python_path(segmenter, film):
    """`Segmenter.segment(film)` without clicks, or the reason it refuses the film."""
    try:
        return segmenter.segment_located(film, segmenter.locate(film)), None
    except VertsegError as error:
        return [], str(error)


def segment_radiograph_parity(served: list[dict[str, np.ndarray]], model, locator,
                              films) -> dict[str, Any]:
    """The served outputs of `films` against `Segmenter(model, locator=locator)`'s
    `segment_located(film, locate(film))` (with its centre refinement).

    Returns:
        The figures; "passed" is False, with the reason under "problem", when the vertebrae
        or their labels differ, a centre or a patch corner (through the affine) is more than
        `SEGMENT_RADIOGRAPH_PLACEMENT_TOLERANCE_PX` away, or under
        `SEGMENT_RADIOGRAPH_MIN_AGREEMENT` of the mask pixels agree. A film the Python path
        refuses counts as agreeing when the graph returns no vertebra for it.
    """
    from vertseg_tf.deploy.inference import Segmenter

    segmenter = Segmenter(model, locator=locator)
    corner_error, equal, pixels, problems, refused = 0.0, 0, 0, [], 0
    for number, (outputs, film) in enumerate(zip(served, films)):
        reference, refusal = _python_path(segmenter, film)
        refused += refusal is not None
        labels = [result.label for result in reference]
        if list(outputs["labels"]) != labels:
            problems.append(f"film {number}: vertebrae {list(outputs['labels'])}, Python "
                            f"path {labels or refusal}")
            continue
        for k, result in enumerate(reference):
            corners = [patch_to_image(_CORNERS, affine)
                       for affine in (outputs["affines"][k], result.affine)]
            corner_error = max(corner_error, float(np.abs(corners[0] - corners[1]).max()),
                               float(np.abs(outputs["centers"][k] - result.center).max()))
            equal += int((outputs["masks"][k] == result.patch_mask).sum())
            pixels += PATCH_SIZE * PATCH_SIZE
    agreement = equal / pixels if pixels else 1.0
    if corner_error > SEGMENT_RADIOGRAPH_PLACEMENT_TOLERANCE_PX:
        problems.append(f"patch placement differs by up to {corner_error:.3g} px")
    if agreement < SEGMENT_RADIOGRAPH_MIN_AGREEMENT:
        problems.append(f"only {agreement:.4%} of the mask pixels agree")
    return {"films": len(films), "vertebrae": pixels // (PATCH_SIZE * PATCH_SIZE),
            "films_refused_by_python": refused, "max_placement_diff_px": corner_error,
            "placement_tolerance_px": SEGMENT_RADIOGRAPH_PLACEMENT_TOLERANCE_PX,
            "mask_pixel_agreement": agreement,
            "min_mask_pixel_agreement": SEGMENT_RADIOGRAPH_MIN_AGREEMENT,
            "passed": not problems, "problem": "; ".join(problems) or None}


def segment_radiograph_manifest() -> dict[str, Any]:
    """The manifest's `segment_radiograph` signature entry."""
    side = [None, PATCH_SIZE, PATCH_SIZE]
    return {
        "inputs": {IMAGE_INPUT: {"dtype": "float32", "shape": [None, None]}},
        "outputs": {"masks": {"dtype": "uint8", "shape": side},
                    "affines": {"dtype": "float32", "shape": [None, 2, 3],
                                "maps": "image xy -> patch xy"},
                    "labels": {"dtype": "string", "shape": [None]},
                    "centers": {"dtype": "float32", "shape": [None, 2]},
                    "confidences": {"dtype": "float32", "shape": [None]}},
        "input_preprocessing": "raw whole radiograph (H, W); located, cut, normalised in graph",
    }
