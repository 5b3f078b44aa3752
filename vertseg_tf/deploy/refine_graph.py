"""`vertseg_tf.locate.heatmaps.recentred` for patch masks, as TensorFlow ops.

`recentred` moves a located centre to the area centroid of its outline: the outer contour
(`largest_outline`: marching squares at level 0.5, vertebra pixels face-connected) of the
largest 4-connected component of the patch mask, mapped back to the image. That polygon
encloses the component with its holes filled, the background counting as 8-connected. Within
each 2 x 2 cell of pixel centres, marching squares on a binary mask cuts at the edge midpoints,
so the enclosed region's area and first moments are a sum over cells of one of 16 pieces: the
centroid is exact, without tracing the contour.
"""

from __future__ import annotations

import numpy as np

from vertseg_tf.geometry import polygon_area, polygon_centroid

__all__ = ["outline_centroids_in_graph"]

# Corners and edge midpoints of a unit cell (x right, y down), and the region marching squares
# keeps for each corner pattern: bit 1 top left, 2 top right, 4 bottom left, 8 bottom right.
# Two diagonal corners are two separate triangles (vertebra pixels only face-connected).
_POINTS = {"TL": (0.0, 0.0), "TR": (1.0, 0.0), "BL": (0.0, 1.0), "BR": (1.0, 1.0),
           "T": (0.5, 0.0), "B": (0.5, 1.0), "L": (0.0, 0.5), "R": (1.0, 0.5)}
_PIECES = {
    1: [["TL", "T", "L"]], 2: [["T", "TR", "R"]], 4: [["L", "B", "BL"]],
    8: [["R", "BR", "B"]], 3: [["TL", "TR", "R", "L"]], 12: [["L", "R", "BR", "BL"]],
    5: [["TL", "T", "B", "BL"]], 10: [["T", "TR", "BR", "B"]],
    9: [["TL", "T", "L"], ["R", "BR", "B"]], 6: [["T", "TR", "R"], ["L", "B", "BL"]],
    7: [["TL", "TR", "R", "B", "BL"]], 11: [["TL", "TR", "BR", "B", "L"]],
    13: [["TL", "T", "R", "BR", "BL"]], 14: [["T", "TR", "BR", "BL", "L"]],
    15: [["TL", "TR", "BR", "BL"]],
}


def _cell_moments() -> np.ndarray:
    """(16, 3) area and first moments (area x centroid x, y) of each pattern's region."""
    table = np.zeros((16, 3))
    for pattern, polygons in _PIECES.items():
        for names in polygons:
            polygon = np.array([_POINTS[name] for name in names])
            area = abs(polygon_area(polygon))
            table[pattern] += [area, *(area * polygon_centroid(polygon))]
    return table


def _propagate(step, start):
    """Apply `step` until the tensor stops changing."""
    import tensorflow as tf

    def body(current, _):
        following = step(current)
        return following, tf.reduce_any(tf.not_equal(following, current))

    result, _ = tf.while_loop(lambda current, changed: changed, body,
                              (start, tf.constant(True)))
    return result


def _largest_component(masks):
    """(N, H, W) bool: each mask's largest 4-connected component; of equal ones the first in
    raster order (as `largest_outline`, from `scipy.ndimage.label`)."""
    import tensorflow as tf

    height, width = masks.shape[1], masks.shape[2]
    size = height * width
    index = tf.broadcast_to(tf.reshape(tf.range(size), [1, height, width]), tf.shape(masks))
    labels = tf.where(masks, index, size)

    def spread(current):  # each pixel takes the smallest label of its 4-neighbourhood
        padded = tf.pad(current, [[0, 0], [1, 1], [1, 1]], constant_values=size)
        smallest = tf.reduce_min(tf.stack([
            padded[:, 1:-1, 1:-1], padded[:, :-2, 1:-1], padded[:, 2:, 1:-1],
            padded[:, 1:-1, :-2], padded[:, 1:-1, 2:]]), axis=0)
        return tf.where(masks, smallest, size)

    labels = _propagate(spread, labels)
    patch = tf.range(tf.shape(masks)[0])[:, None, None] * (size + 1)
    sizes = tf.math.unsorted_segment_sum(
        tf.ones_like(labels), patch + labels, tf.shape(masks)[0] * (size + 1))
    sizes = tf.reshape(sizes, [-1, size + 1])[:, :size]  # the last label is the background
    largest = tf.argmax(sizes, axis=1, output_type=tf.int32)
    return masks & tf.equal(labels, largest[:, None, None])


def _filled(component):
    """(N, H + 2, W + 2) float64: the component padded by one background pixel, with every
    background region that is not 8-connected to the border filled."""
    import tensorflow as tf

    padded = tf.pad(component, [[0, 0], [1, 1], [1, 1]])
    background = tf.logical_not(padded)
    border = tf.pad(tf.zeros_like(component), [[0, 0], [1, 1], [1, 1]], constant_values=True)

    def grow(outside):
        around = tf.nn.max_pool2d(tf.cast(outside, tf.float32)[..., None], 3, 1, "SAME")
        return background & (around[..., 0] > 0)

    outside = _propagate(grow, border & background)
    return tf.cast(tf.logical_not(outside), tf.float64)


def outline_centroids_in_graph(masks):
    """Patch xy area centroids of the outlines `recentred` takes from (N, H, W) masks.

    Returns:
        ((N, 2) float64 centroids in patch pixels, (N,) bool: the mask is not empty).
    """
    import tensorflow as tf

    grid = _filled(_largest_component(tf.cast(masks, tf.bool)))
    pattern = (tf.cast(grid[:, :-1, :-1], tf.int32) + 2 * tf.cast(grid[:, :-1, 1:], tf.int32)
               + 4 * tf.cast(grid[:, 1:, :-1], tf.int32) + 8 * tf.cast(grid[:, 1:, 1:], tf.int32))
    moments = tf.gather(tf.constant(_cell_moments()), pattern)  # (N, H + 1, W + 1, 3)
    rows, cols = grid.shape[1] - 1, grid.shape[2] - 1
    # the cell below and right of padded pixel (r, c) starts at patch xy (c - 1, r - 1)
    x0 = tf.range(cols, dtype=tf.float64)[None, None, :] - 1.0
    y0 = tf.range(rows, dtype=tf.float64)[None, :, None] - 1.0
    area = tf.reduce_sum(moments[..., 0], axis=[1, 2])
    x = tf.reduce_sum(moments[..., 1] + x0 * moments[..., 0], axis=[1, 2])
    y = tf.reduce_sum(moments[..., 2] + y0 * moments[..., 0], axis=[1, 2])
    found = area > 0
    safe = tf.where(found, area, tf.ones_like(area))
    return tf.stack([x / safe, y / safe], axis=1), found
