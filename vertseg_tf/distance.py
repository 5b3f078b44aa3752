"""Exact distances from points and pixel grids to polylines.

Conventions as in `vertseg_tf.geometry` (which re-exports the public functions): points are
(x, y), pixel (x, y) has its centre at integer coordinates, a closed polyline does not repeat
its first point. Every distance is exact: each candidate segment is measured with the
projection clamped to the segment; pruning only leaves out segments that provably cannot be
the nearest one. `vertseg_tf.similar_distance` builds on the segment frames here.

numpy only, no other vertseg_tf module: `geometry` and `similar_distance` import this module,
never the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "point_to_polyline_distance",
    "polyline_distance_map",
    "polyline_distance_maps",
    "polyline_segments",
]

# Points handled at once; bounds the temporary arrays to a few tens of MB.
_POINTS_PER_CHUNK = 1 << 20
# Side of the pruning tiles of `polyline_distance_maps`, the largest distance from a tile's
# centre to one of its pixel centres, and a margin far above the rounding of the bound.
_TILE = 4
_TILE_RADIUS = (_TILE - 1) / 2.0 * np.sqrt(2.0)
_BOUND_SLACK = 1e-6
# Tile x segment distances per chunk of maps: keeps the temporaries within the CPU cache.
_PAIRS_PER_CHUNK = 1 << 17


def polyline_segments(polyline: np.ndarray, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the segments of a (K, 2) polyline; a single vertex is one point segment.

    Example:
        >>> starts, ends = polyline_segments(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]), True)
        >>> ends.tolist()
        [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    """
    polyline = np.asarray(polyline, dtype=np.float64)
    if polyline.ndim != 2 or polyline.shape[1] != 2 or len(polyline) == 0:
        raise ValueError(f"polyline must be (K, 2) with K >= 1, got shape {polyline.shape}")
    if len(polyline) == 1:
        return polyline, polyline
    ends = np.roll(polyline, -1, axis=0) if closed else polyline[1:]
    starts = polyline if closed else polyline[:-1]
    return starts, ends


def segment_frames(polylines: Sequence[np.ndarray], closed: bool) -> np.ndarray:
    """(5, B, K_max) per segment: midpoint x, midpoint y, unit direction x, y, half length.

    For the distance code of this package (not in `__all__`).

    A polyline with fewer segments repeats its last segment, which changes no minimum. A
    zero-length segment gets the direction (1, 0): its distance is then that to its point.
    """
    pairs = [polyline_segments(polyline, closed) for polyline in polylines]
    longest = max(len(starts) for starts, _ in pairs)
    frames = np.empty((5, len(pairs), longest))
    for b, (starts, ends) in enumerate(pairs):
        count = len(starts)
        frames[0, b, :count], frames[1, b, :count] = ((starts + ends) / 2.0).T
        frames[2, b, :count], frames[3, b, :count] = (ends - starts).T
        frames[:4, b, count:] = frames[:4, b, count - 1 : count]
    frames[4] = np.hypot(frames[2], frames[3])
    point = frames[4] == 0
    frames[2:4] /= np.where(point, 1.0, frames[4])
    frames[2][point], frames[3][point] = 1.0, 0.0
    frames[4] /= 2.0
    return frames


def clamped_squared(along: np.ndarray, across: np.ndarray, half_length) -> np.ndarray:
    """Squared distance to a segment from a point's coordinates in the segment's frame
    (for the distance code of this package, not in `__all__`).

    `along` is the offset from the segment's midpoint along its direction, `across` the offset
    perpendicular to it; the point lies max(|along| - half_length, 0) beyond the segment's
    end along it. Both arrays are overwritten (in place: no temporary, about a third faster
    than clamping the projection).
    """
    np.abs(along, out=along)
    along -= half_length
    np.maximum(along, 0.0, out=along)
    along *= along
    across *= across
    across += along
    return across


def point_to_polyline_distance(
    points: np.ndarray, polyline: np.ndarray, closed: bool = True
) -> np.ndarray:
    """Exact Euclidean distance from each point to the nearest point of a polyline.

    Every segment is measured exactly (projection clamped to the segment). The work is
    vectorised over points, one pass per segment keeping a running minimum, in chunks of
    points so memory stays bounded. For the pixel grid, `polyline_distance_maps` is much
    faster: it measures only the segments that can be nearest.

    Args:
        points: (P, 2) xy points.
        polyline: (K, 2) xy vertices; a single vertex is a point.
        closed: also use the segment from the last vertex back to the first.

    Returns:
        (P,) float64 distances.

    Example:
        >>> square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        >>> point_to_polyline_distance(np.array([[0.5, 0.5], [2.0, 0.5]]), square)
        array([0.5, 1. ])
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    frames = segment_frames([polyline], closed)[:, 0]
    out = np.empty(len(points), dtype=np.float64)
    for begin in range(0, len(points), _POINTS_PER_CHUNK):
        xs = points[begin : begin + _POINTS_PER_CHUNK, 0]
        ys = points[begin : begin + _POINTS_PER_CHUNK, 1]
        best = np.full(len(xs), np.inf)
        for middle_x, middle_y, unit_x, unit_y, half_length in frames.T:
            offset_x, offset_y = xs - middle_x, ys - middle_y
            along = offset_x * unit_x + offset_y * unit_y
            across = offset_y * unit_x - offset_x * unit_y
            np.minimum(best, clamped_squared(along, across, half_length), out=best)
        out[begin : begin + _POINTS_PER_CHUNK] = np.sqrt(best)
    return out


def polyline_distance_map(
    polyline: np.ndarray, shape: tuple[int, int], closed: bool = True
) -> np.ndarray:
    """Distance from every pixel centre of an (H, W) grid to a polyline, in pixels.

    Args:
        polyline: (K, 2) xy vertices.
        shape: (H, W) of the map.
        closed: treat the polyline as a closed polygon outline.

    Returns:
        (H, W) float32 map; entry [y, x] is the distance from (x, y) to the curve.

    Example:
        >>> line = np.array([[0.0, 1.0], [3.0, 1.0]])
        >>> polyline_distance_map(line, (3, 4), closed=False)[:, 0]
        array([1., 0., 1.], dtype=float32)
    """
    return polyline_distance_maps([polyline], shape, closed)[0]


def polyline_distance_maps(
    polylines: Sequence[np.ndarray], shape: tuple[int, int], closed: bool = True
) -> np.ndarray:
    """`polyline_distance_map` of many polylines at once: exact, and pruned.

    The grid is cut into 4 x 4 pixel tiles. The distance from a tile's centre c to every
    segment s, d_s(c), is measured first; every pixel p of the tile lies within r = 1.5 * sqrt(2)
    of c, and a distance to a set changes by at most |p - c|, so s can be nearest to p only if
    d_s(c) <= min_s' d_s'(c) + 2 r. Only those segments (about 15 of a 96-point vertebra
    outline, instead of all) are then measured at the tile's pixels, exactly (projection
    clamped to the segment, as `point_to_polyline_distance` does); the two agree to rounding
    (about 1e-13 pixels).

    Args:
        polylines: B (K_b, 2) xy polylines (they may differ in length).
        shape: (H, W) of the maps.
        closed: treat each polyline as a closed polygon outline.

    Returns:
        (B, H, W) float32 maps.

    Example:
        >>> line = np.array([[0.0, 1.0], [3.0, 1.0]])
        >>> maps = polyline_distance_maps([line, line + 1.0], (3, 4), closed=False)
        >>> [round(float(d), 4) for d in maps[:, 0, 0]]  # (0, 0) to (0, 1) and to the end (1, 2)
        [1.0, 2.2361]
    """
    height, width = (int(n) for n in shape)
    out = np.empty((len(polylines), height, width), np.float32)
    if len(polylines) == 0 or height == 0 or width == 0:
        return out
    frames = segment_frames(polylines, closed)
    tiles = -(-height // _TILE) * -(-width // _TILE)
    step = max(1, _PAIRS_PER_CHUNK // (tiles * frames.shape[2]))
    for begin in range(0, len(polylines), step):
        out[begin : begin + step] = _pruned_distances(frames[:, begin : begin + step], shape)
    return out


def _pruned_distances(frames: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The maps of the segments in `frames` (5, B, K): see `polyline_distance_maps`."""
    height, width = shape
    count = frames.shape[1]
    rows, columns = -(-height // _TILE), -(-width // _TILE)
    middle_x, middle_y, unit_x, unit_y, half_length = frames
    # Offsets in each segment's frame are sums of a row term and a column term: one addition
    # per tile x segment (and per pixel x segment below) instead of a dot product.
    centre_x = (np.arange(columns) * float(_TILE) + (_TILE - 1) / 2.0)[None, :, None]
    centre_y = (np.arange(rows) * float(_TILE) + (_TILE - 1) / 2.0)[None, :, None]
    unit_x, unit_y = unit_x[:, None, :], unit_y[:, None, :]
    origin_along = -(middle_x * unit_x[:, 0] + middle_y * unit_y[:, 0])[:, None, :]
    origin_across = (middle_x * unit_y[:, 0] - middle_y * unit_x[:, 0])[:, None, :]
    along = (centre_x * unit_x + origin_along)[:, None] + (centre_y * unit_y)[:, :, None]
    across = (origin_across - centre_x * unit_y)[:, None] + (centre_y * unit_x)[:, :, None]
    at_centres = clamped_squared(along, across, half_length[:, None, None, :])
    reach = np.sqrt(at_centres.min(axis=3)) + 2.0 * _TILE_RADIUS + _BOUND_SLACK
    # Flat indices: much faster than a 4-D nonzero; tiles come out in raster order.
    pair = np.flatnonzero(at_centres <= (reach * reach)[..., None])
    tile, segment = np.divmod(pair, frames.shape[2])
    segment += tile // (rows * columns) * frames.shape[2]
    tile_row, tile_column = np.divmod(tile % (rows * columns), columns)
    frames = frames.reshape(5, -1)[:, segment]
    squared = _tile_pixels_squared(
        tile_column * float(_TILE) - frames[0], tile_row * float(_TILE) - frames[1], frames[2:]
    )
    starts = group_starts(tile)
    nearest = np.sqrt(np.minimum.reduceat(squared, starts, axis=1))
    grid = nearest.reshape(_TILE, _TILE, count, rows, columns).transpose(2, 3, 0, 4, 1)
    return grid.reshape(count, rows * _TILE, columns * _TILE)[:, :height, :width]


def group_starts(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys begins (for the distance code of this package)."""
    if len(keys) == 0:
        return np.zeros(0, np.intp)
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


def _tile_pixels_squared(offset_x, offset_y, frame) -> np.ndarray:
    """(TILE * TILE, P) squared distances from each tile pixel to its pair's segment.

    `offset_x`, `offset_y`: (P,) tile origin minus segment midpoint; `frame`: (3, P) unit x,
    unit y, half length. Rows are the tile's pixels, row-major.
    """
    unit_x, unit_y, half_length = frame
    local = np.arange(_TILE, dtype=np.float64)[:, None]
    along_x = local * unit_x + (offset_x * unit_x + offset_y * unit_y)
    across_x = (offset_y * unit_x - offset_x * unit_y) - local * unit_y
    along = ((local * unit_y)[:, None] + along_x[None]).reshape(_TILE * _TILE, -1)
    across = ((local * unit_x)[:, None] + across_x[None]).reshape(_TILE * _TILE, -1)
    return clamped_squared(along, across, half_length)
