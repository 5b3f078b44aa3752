"""`vertseg_tf.locate.heatmaps.decode_chain` as TensorFlow ops, for the `locate` signature.

The same candidates (each channel's strongest local maxima, refined by the log-parabola),
the same typical spacing and the same dynamic programme over the levels in spine order, with
the levels and candidates unrolled (there are 5 x 3 of them), so that the served levels are
the ones `Locator.locate` reports.
"""

from __future__ import annotations

import inspect

import numpy as np

from vertseg_tf.deploy.graph_patches import typical_spacing_in_graph
from vertseg_tf.locate.heatmaps import decode_chain

__all__ = ["decode_chain_in_graph"]

_DEFAULTS = inspect.signature(decode_chain).parameters
CANDIDATES = _DEFAULTS["candidates"].default
SPACING_RANGE = _DEFAULTS["spacing_range"].default
_MASS_RADIUS = 2  # `local_mass`'s default window, as `locate_from_heatmaps` reads it


def _log_parabola_offset(left, centre, right):
    """`heatmaps._log_parabola_offset` on tensors."""
    import tensorflow as tf

    logs = [tf.math.log(tf.maximum(value, 1e-12)) for value in (left, centre, right)]
    curvature = logs[0] - 2.0 * logs[1] + logs[2]
    bending = curvature < 0.0
    safe = tf.where(bending, curvature, -tf.ones_like(curvature))
    return tf.where(bending, tf.clip_by_value(0.5 * (logs[0] - logs[2]) / safe, -0.5, 0.5), 0.0)


def _candidates(maps, count: int):
    """Per level the `count` strongest local maxima (3 x 3, highest first, ties row-major):
    refined xy (L, C, 2), local mass (L, C) and whether each is a real maximum (L, C)."""
    import tensorflow as tf

    height, width, levels = tf.unstack(tf.shape(maps))
    peaks = maps >= tf.nn.max_pool2d(maps[None], 3, 1, "SAME")[0]
    flat = tf.reshape(tf.transpose(tf.where(peaks, maps, -np.inf), [2, 0, 1]), [levels, -1])
    values, index = tf.math.top_k(flat, k=count)  # equal values: the lower index first
    row, col = index // width, index % width
    level = tf.broadcast_to(tf.range(levels)[:, None], tf.shape(index))

    def at(rows, cols):
        rows = tf.clip_by_value(rows, 0, height - 1)
        cols = tf.clip_by_value(cols, 0, width - 1)
        return tf.gather_nd(maps, tf.stack([rows, cols, level], axis=-1))

    peak = at(row, col)
    x_offset = _log_parabola_offset(at(row, col - 1), peak, at(row, col + 1))
    y_offset = _log_parabola_offset(at(row - 1, col), peak, at(row + 1, col))
    x = tf.cast(col, tf.float64) + tf.where((col > 0) & (col < width - 1), x_offset, 0.0)
    y = tf.cast(row, tf.float64) + tf.where((row > 0) & (row < height - 1), y_offset, 0.0)
    padded = tf.pad(maps, [[_MASS_RADIUS] * 2, [_MASS_RADIUS] * 2, [0, 0]])
    mass = tf.zeros_like(peak)
    for dr in range(-_MASS_RADIUS, _MASS_RADIUS + 1):
        for dc in range(-_MASS_RADIUS, _MASS_RADIUS + 1):
            mass += tf.gather_nd(padded, tf.stack(
                [row + dr + _MASS_RADIUS, col + dc + _MASS_RADIUS, level], axis=-1))
    return tf.stack([x, y], axis=-1), mass, values > -np.inf


def _typical_spacing(xy, eligible):
    """Median distance per level between the first eligible candidates of every two levels;
    NaN when no two levels have one."""
    import tensorflow as tf

    first = tf.argmax(tf.cast(eligible, tf.int32), axis=1, output_type=tf.int32)
    point = tf.gather(xy, first, axis=1, batch_dims=1)
    has = tf.where(tf.reduce_any(eligible, axis=1))[:, 0]
    return typical_spacing_in_graph(tf.gather(point, has), has)


def decode_chain_in_graph(heatmaps, threshold: float):
    """`decode_chain(heatmaps, threshold, confidence=local_mass(heatmaps))` in TensorFlow.

    Args:
        heatmaps: (h, w, L) float tensor, L known when the graph is built.
        threshold: a candidate whose confidence is under it is not eligible.

    Returns:
        `(xy, confidence, found)`: (L, 2) float64 heatmap xy (NaN where missing), (L,) float64
        (a missing level's at its channel's maximum) and (L,) bool.
    """
    import tensorflow as tf

    maps = tf.cast(heatmaps, tf.float64)
    levels, count = int(heatmaps.shape[-1]), CANDIDATES
    xy, mass, real = _candidates(maps, count)
    eligible = real & (mass >= threshold)
    spacing = _typical_spacing(xy, eligible)
    skip = float(np.log(max(threshold, 1e-300)))
    low, high = SPACING_RANGE

    def fits(k, a, level, b):
        step = xy[level, b] - xy[k, a]
        span = (level - k) * spacing
        length = tf.norm(step)
        spaced = (step[1] > 0) & (low * span <= length) & (length <= high * span)
        return tf.math.is_nan(spacing) | spaced

    best, links = {}, {}
    for level in range(levels):
        for b in range(count):
            score, link = tf.constant(level * skip, tf.float64), tf.constant(-1)
            for k in range(level):
                for a in range(count):
                    value = best[k, a] + (level - k - 1) * skip
                    better = (value > score) & fits(k, a, level, b)
                    score = tf.where(better, value, score)
                    link = tf.where(better, k * count + a, link)
            total = score + tf.math.log(tf.maximum(mass[level, b], 1e-300))
            best[level, b] = tf.where(eligible[level, b], total, -np.inf)
            links[level, b] = link
    end, finish = tf.constant(levels * skip, tf.float64), tf.constant(-1)
    for level in range(levels):
        for b in range(count):
            value = best[level, b] + (levels - level - 1) * skip
            finish = tf.where(value > end, level * count + b, finish)
            end = tf.maximum(value, end)
    table = tf.stack([links[level, b] for level in range(levels) for b in range(count)])
    chosen = tf.fill([levels], -1)
    for _ in range(levels):
        here = (finish >= 0) & (tf.range(levels) == finish // count)
        chosen = tf.where(here, finish % count, chosen)
        finish = tf.where(finish >= 0, tf.gather(table, tf.maximum(finish, 0)), -1)
    found = chosen >= 0
    pick = tf.maximum(chosen, 0)
    placed = tf.gather(xy, pick, axis=1, batch_dims=1)
    xy_out = tf.where(found[:, None], placed, np.nan)
    confidence = tf.where(found, tf.gather(mass, pick, axis=1, batch_dims=1), mass[:, 0])
    return xy_out, confidence, found
