"""Exact distances from points and pixel grids to polylines.

Conventions as in `vertseg_tf.geometry` (which re-exports the public functions): points are
(x, y), pixel (x, y) has its centre at integer coordinates, a closed polyline does not repeat
its first point. Every distance is exact: each candidate segment is measured with the
projection clamped to the segment; pruning only leaves out segments that provably cannot be
the nearest one.

numpy only, no other vertseg_tf module: `geometry` imports this module, never the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "point_to_polyline_distance",
    "polyline_distance_map",
    "polyline_distance_maps",
    "polyline_segments",
    "similar_distance_maps",
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
# `similar_distance_maps`: cell side in pixels of the finest map, cells per tile side, the
# candidates each cell keeps in its fixed slots (cells with more use a ragged list), maps per
# chunk of the pixel stage, tile x segment pairs per chunk of the tile stage, and a margin
# (relative to the coordinates' magnitude) far above the rounding of the bounds.
_CELL_PIXELS = 1.0
_CELLS_PER_TILE = 4
_SLOTS = 3
_MAPS_PER_CHUNK = 8
_TILE_PAIRS_PER_CHUNK = 1 << 16
_RELATIVE_SLACK = 1e-9


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


def _segment_frames(polylines: Sequence[np.ndarray], closed: bool) -> np.ndarray:
    """(5, B, K_max) per segment: midpoint x, midpoint y, unit direction x, y, half length.

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


def _clamped_squared(along: np.ndarray, across: np.ndarray, half_length) -> np.ndarray:
    """Squared distance to a segment from a point's coordinates in the segment's frame.

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
    frames = _segment_frames([polyline], closed)[:, 0]
    out = np.empty(len(points), dtype=np.float64)
    for begin in range(0, len(points), _POINTS_PER_CHUNK):
        xs = points[begin : begin + _POINTS_PER_CHUNK, 0]
        ys = points[begin : begin + _POINTS_PER_CHUNK, 1]
        best = np.full(len(xs), np.inf)
        for middle_x, middle_y, unit_x, unit_y, half_length in frames.T:
            offset_x, offset_y = xs - middle_x, ys - middle_y
            along = offset_x * unit_x + offset_y * unit_y
            across = offset_y * unit_x - offset_x * unit_y
            np.minimum(best, _clamped_squared(along, across, half_length), out=best)
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
    frames = _segment_frames(polylines, closed)
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
    at_centres = _clamped_squared(along, across, half_length[:, None, None, :])
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
    starts = _group_starts(tile)
    nearest = np.sqrt(np.minimum.reduceat(squared, starts, axis=1))
    grid = nearest.reshape(_TILE, _TILE, count, rows, columns).transpose(2, 3, 0, 4, 1)
    return grid.reshape(count, rows * _TILE, columns * _TILE)[:, :height, :width]


def _group_starts(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys begins."""
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
    return _clamped_squared(along, across, half_length)


def similar_distance_maps(
    polyline: np.ndarray, affines: np.ndarray, shape: tuple[int, int], closed: bool = True
) -> np.ndarray:
    """Distance maps of one polyline seen through many similarity maps, sharing their pruning.

    Map j is `polyline_distance_map(polyline mapped through affines[j], shape, closed)`: the
    exact distance from each pixel centre p to the mapped polyline. A similarity (a rotation,
    possibly a reflection, and a uniform scaling by lambda_j) scales distances exactly, so that
    distance is lambda_j times the distance from q = affines[j]^-1 p to the polyline itself,
    and every map can use one pruning structure in the polyline's own frame:

    1. The union of the maps' pixel grids, mapped back, is covered by square cells (as wide as
       a pixel of the finest map) grouped into 4 x 4 tiles. A segment s can be the nearest one
       for some point p of a square of half side a around a centre c only if
       d_s(c) - d_t(c) <= min(2 sqrt(2) a, a (|g_s - g_t|_x + |g_s - g_t|_y) + a^2 / d_t(c)),
       where t is the segment nearest to c and g the unit vectors from each segment's nearest
       point to c: d_s is convex, so d_s(p) >= d_s(c) + g_s . (p - c), and d_t(p) is at most
       the distance from p to t's point nearest to c. The test runs for every segment at the
       tile centres, then for the tile's candidates at each cell centre. On a vertebra outline
       of 96 points a pixel's cell keeps about 3 candidates, where the plain bound
       d_s(c) <= d_t(c) + 2 sqrt(2) a keeps many more far from the curve, whose distance
       changes slowly along it.
    2. Each pixel of each map measures exactly the candidates of the cell its q falls in.

    Args:
        polyline: (K, 2) xy vertices.
        affines: (J, 2, 3) similarity maps (polyline frame -> map pixels).
        shape: (H, W) of the maps.
        closed: treat the polyline as a closed polygon outline.

    Returns:
        (J, H, W) float32 maps; they equal `polyline_distance_maps` of the mapped polylines to
        rounding (about 1e-13 relative before the float32 cast).

    Raises:
        ValueError: an affine that is not a similarity, or a malformed polyline.

    Example:
        >>> turn = np.array([[0.0, -2.0, 5.0], [2.0, 0.0, 1.0]])  # rotate by 90 degrees, scale 2
        >>> line = np.array([[0.0, 0.0], [1.0, 0.0]])
        >>> similar = similar_distance_maps(line, turn[None], (4, 6), closed=False)
        >>> mapped = line @ turn[:, :2].T + turn[:, 2]
        >>> bool(np.array_equal(similar[0], polyline_distance_map(mapped, (4, 6), closed=False)))
        True
    """
    height, width = (int(n) for n in shape)
    affines = np.asarray(affines, dtype=np.float64).reshape(-1, 2, 3)
    polyline = np.asarray(polyline, dtype=np.float64)
    out = np.empty((len(affines), height, width), np.float32)
    if len(affines) == 0 or height == 0 or width == 0:
        return out
    # Work about the polyline's mean: small coordinates keep the rounding small.
    origin = polyline.reshape(-1, 2).mean(axis=0)
    frames = _segment_frames([polyline - origin], closed)[:, 0]
    scales, inverses = _similarity_inverses(affines)
    inverses[:, :, 2] -= origin
    cells = _CellTable(frames, inverses, scales, (height, width))
    for begin in range(0, len(affines), _MAPS_PER_CHUNK):
        chunk = slice(begin, begin + _MAPS_PER_CHUNK)
        out[chunk] = cells.distances(inverses[chunk], scales[chunk], (height, width))
    return out


def _similarity_inverses(affines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(J,) scales lambda_j and (J, 2, 3) inverse maps of similarity maps; ValueError otherwise."""
    linear = affines[:, :, :2]
    gram = linear @ linear.transpose(0, 2, 1)
    squared = 0.5 * (gram[:, 0, 0] + gram[:, 1, 1])
    tolerance = 1e-9 * squared
    similar = (
        (np.abs(gram[:, 0, 0] - gram[:, 1, 1]) <= tolerance)
        & (np.abs(gram[:, 0, 1]) <= tolerance)
        & (squared > 0)
    )
    if not similar.all():
        bad = int(np.flatnonzero(~similar)[0])
        raise ValueError(f"affines[{bad}] is not a similarity map: {affines[bad].tolist()}")
    inverse_linear = linear.transpose(0, 2, 1) / squared[:, None, None]
    offsets = -np.einsum("jab,jb->ja", inverse_linear, affines[:, :, 2])
    return np.sqrt(squared), np.concatenate([inverse_linear, offsets[:, :, None]], axis=2)


def _nearest_directions(along, across, half_length, unit_x, unit_y):
    """Distances to segments and the unit vectors from their nearest points (0 on a segment).

    `along`, `across`: a point's offsets in each segment's frame (see `_clamped_squared`).
    """
    beyond = np.abs(along) - half_length
    np.maximum(beyond, 0.0, out=beyond)
    np.copysign(beyond, along, out=beyond)
    distance = np.sqrt(beyond * beyond + across * across)
    # On the segment both offsets are 0, and so is the quotient.
    inverse = 1.0 / np.maximum(distance, np.finfo(np.float64).tiny)
    return (
        distance,
        (beyond * unit_x - across * unit_y) * inverse,
        (beyond * unit_y + across * unit_x) * inverse,
    )


def _may_be_nearest(distance, nearest, gap_x, gap_y, half_side, slack):
    """The bound of `similar_distance_maps`: can a segment be nearest in a square around c?

    `distance`, `nearest`: d_s(c) and d_t(c); `gap_x`, `gap_y`: g_s - g_t; the square's
    points are c + v with |v_x|, |v_y| <= half_side, so |v| <= sqrt(2) half_side and
    (g_s - g_t) . v >= -half_side (|gap_x| + |gap_y|).
    """
    excess = distance - nearest
    with np.errstate(divide="ignore"):
        curving = (half_side * half_side) / nearest
    sharp = half_side * (np.abs(gap_x) + np.abs(gap_y)) + curving
    return (excess <= 2.0 * np.sqrt(2.0) * half_side + slack) & (excess <= sharp + slack)


class _CellTable:
    """The candidate segments of every cell of the grid in the polyline's frame.

    Built once for all the maps of `similar_distance_maps`; `distances` measures pixels.
    """

    def __init__(self, frames, inverses, scales, shape):
        height, width = shape
        middle_x, middle_y, self.unit_x, self.unit_y, self.half = frames
        # along = q . u + along_0 and across = q_y u_x - q_x u_y + across_0 for a point q.
        self.along_0 = -(middle_x * self.unit_x + middle_y * self.unit_y)
        self.across_0 = middle_x * self.unit_y - middle_y * self.unit_x
        corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]])
        mapped = corners @ inverses[:, :, :2].transpose(0, 2, 1) + inverses[:, None, :, 2]
        self.cell = _CELL_PIXELS / scales.max()
        self.low = mapped.min(axis=(0, 1)) - self.cell
        high = mapped.max(axis=(0, 1)) + self.cell
        magnitude = np.abs(np.concatenate([self.low, high, middle_x, middle_y])).max()
        self.slack = _RELATIVE_SLACK * (1.0 + magnitude)
        side = _CELLS_PER_TILE * self.cell
        self.tiles_x, tiles_y = (int(n) for n in np.ceil((high - self.low) / side))
        self.columns = self.tiles_x * _CELLS_PER_TILE
        cells = self.columns * tiles_y * _CELLS_PER_TILE
        # NaN in the cells no pixel reaches: a lookup there would show, not pass unnoticed.
        self.slots = np.full((5, _SLOTS, cells), np.nan)
        self.count = np.zeros(cells, np.intp)
        self.ragged_start = np.zeros(cells, np.intp)
        tiles = self._reached_tiles(inverses, scales, shape, tiles_y)
        ragged = []
        step = max(1, _TILE_PAIRS_PER_CHUNK // len(self.half))
        for begin in range(0, len(tiles), step):
            tile, segment = self._tile_candidates(tiles[begin : begin + step])
            ragged.append(self._fill_cells(*self._cell_candidates(tile, segment)))
        ragged_cells = np.concatenate([c for c, _ in ragged])
        self.ragged_segment = np.concatenate([s for _, s in ragged])
        starts = _group_starts(ragged_cells)
        self.ragged_start[ragged_cells[starts]] = starts

    def _tile_centres(self, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        side = _CELLS_PER_TILE * self.cell
        row, column = np.divmod(tile, self.tiles_x)
        return self.low[0] + (column + 0.5) * side, self.low[1] + (row + 0.5) * side

    def _reached_tiles(self, inverses, scales, shape, tiles_y) -> np.ndarray:
        """The tiles within their half diagonal of some map's pixel centres (sorted)."""
        height, width = shape
        centre_x, centre_y = self._tile_centres(np.arange(self.tiles_x * tiles_y))
        # A similarity's linear part L has L^-1 = L^T / lambda^2, so L = lambda^2 (L^-1)^T.
        forward = inverses[:, :, :2].transpose(0, 2, 1) * (scales * scales)[:, None, None]
        offset = -np.einsum("jab,jb->ja", forward, inverses[:, :, 2])
        mapped = forward @ np.stack([centre_x, centre_y]) + offset[:, :, None]
        x, y = mapped[:, 0], mapped[:, 1]
        outside_x = np.maximum(np.maximum(-x, x - (width - 1)), 0.0)
        outside_y = np.maximum(np.maximum(-y, y - (height - 1)), 0.0)
        reach = (_CELLS_PER_TILE * self.cell / np.sqrt(2.0) + self.slack) * scales[:, None]
        return np.flatnonzero((outside_x**2 + outside_y**2 <= reach**2).any(axis=0))

    def _tile_candidates(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tile, segment) pairs, tile-major, whose segment may be nearest somewhere in the tile."""
        centre_x, centre_y = (c[:, None] for c in self._tile_centres(tiles))
        count = len(self.half)
        along = centre_x * self.unit_x + centre_y * self.unit_y + self.along_0
        across = centre_y * self.unit_x - centre_x * self.unit_y + self.across_0
        squared = _clamped_squared(along.copy(), across.copy(), self.half)
        nearest_segment = squared.argmin(axis=1)
        best = np.arange(len(squared)) * count + nearest_segment
        nearest = np.sqrt(squared.ravel().take(best))
        half_side = _CELLS_PER_TILE * self.cell / 2.0
        reach = nearest + 2.0 * np.sqrt(2.0) * half_side + self.slack
        pair = np.flatnonzero(squared <= (reach * reach)[:, None])
        position, segment = np.divmod(pair, count)
        distance, gap_x, gap_y = self._directions(along, across, pair, segment)
        _, nearest_x, nearest_y = self._directions(along, across, best, nearest_segment)
        gap_x -= nearest_x.take(position)
        gap_y -= nearest_y.take(position)
        keep = _may_be_nearest(
            distance, nearest.take(position), gap_x, gap_y, half_side, self.slack
        )
        return tiles.take(position[keep]), segment[keep]

    def _directions(self, along, across, pair, segment):
        """`_nearest_directions` at flat indices `pair` of (tile, segment) arrays."""
        return _nearest_directions(
            along.ravel().take(pair), across.ravel().take(pair), self.half.take(segment),
            self.unit_x.take(segment), self.unit_y.take(segment),
        )

    def _cell_candidates(self, tile: np.ndarray, segment: np.ndarray):
        """(cell, segment) entries, grouped by cell, of the tiles' candidates kept per cell."""
        tile_y, tile_x = np.divmod(tile, self.tiles_x)
        centre_x, centre_y = self._tile_centres(tile)
        unit_x, unit_y = self.unit_x.take(segment), self.unit_y.take(segment)
        half = self.half.take(segment)
        along = centre_x * unit_x + centre_y * unit_y + self.along_0.take(segment)
        across = centre_y * unit_x - centre_x * unit_y + self.across_0.take(segment)
        offsets = ((np.arange(_CELLS_PER_TILE) - (_CELLS_PER_TILE - 1) / 2.0) * self.cell)[:, None]
        # Row r * CELLS_PER_TILE + c is the cell offsets[c], offsets[r] from the tile centre.
        along = ((along + offsets * unit_x)[None] + (offsets * unit_y)[:, None]).reshape(
            -1, len(tile)
        )
        across = ((across - offsets * unit_y)[None] + (offsets * unit_x)[:, None]).reshape(
            -1, len(tile)
        )
        distance, direction_x, direction_y = _nearest_directions(
            along, across, half, unit_x, unit_y
        )
        starts = _group_starts(tile)
        counts = np.diff(np.r_[starts, len(tile)])
        nearest = np.repeat(np.minimum.reduceat(distance, starts, axis=1), counts, axis=1)
        at_nearest = np.where(distance == nearest, np.arange(len(tile)), -1)
        best = np.maximum.reduceat(at_nearest, starts, axis=1)
        best += np.arange(len(distance))[:, None] * len(tile)
        gap_x = direction_x - np.repeat(direction_x.ravel().take(best), counts, axis=1)
        gap_y = direction_y - np.repeat(direction_y.ravel().take(best), counts, axis=1)
        keep = _may_be_nearest(
            distance, nearest, gap_x, gap_y, self.cell / 2.0, self.slack
        )
        # Row-major order: the entries of each (cell of the tile, tile) come together.
        inside, pair = np.divmod(np.flatnonzero(keep), len(tile))
        row = tile_y.take(pair) * _CELLS_PER_TILE + inside // _CELLS_PER_TILE
        column = tile_x.take(pair) * _CELLS_PER_TILE + inside % _CELLS_PER_TILE
        return row * self.columns + column, segment.take(pair)

    def _fill_cells(self, cell: np.ndarray, segment: np.ndarray):
        """Store each cell's candidates in its slots; returns the entries of fuller cells."""
        starts = _group_starts(cell)
        counts = np.diff(np.r_[starts, len(cell)])
        filled = cell.take(starts)
        self.count[filled] = counts
        # A cell with fewer candidates than slots repeats its last one: no minimum changes.
        slot = np.minimum(np.arange(_SLOTS)[:, None], counts - 1)
        chosen = segment.take(starts + slot)
        fields = (self.unit_x, self.unit_y, self.along_0, self.across_0, self.half)
        place = (np.arange(_SLOTS)[:, None] * self.slots.shape[2] + filled).ravel()
        for slots, field in zip(self.slots, fields):
            slots.reshape(-1)[place] = field.take(chosen).ravel()
        fuller = np.repeat(counts > _SLOTS, counts)
        return cell[fuller], segment[fuller]

    def distances(self, inverses, scales, shape) -> np.ndarray:
        """(J, H, W) float32 maps of the pixel grids `inverses` maps into the polyline's frame."""
        height, width = shape
        xs, ys = np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
        qx, qy = (
            (
                inverses[:, axis, 0, None, None] * xs
                + (inverses[:, axis, 1, None] * ys + inverses[:, axis, 2, None])[:, :, None]
            ).ravel()
            for axis in (0, 1)
        )
        cell = ((qy - self.low[1]) * (1.0 / self.cell)).astype(np.intp)
        cell *= self.columns
        cell += ((qx - self.low[0]) * (1.0 / self.cell)).astype(np.intp)
        best = None
        for k in range(_SLOTS):
            unit_x, unit_y, along_0, across_0, half = (slots[k].take(cell) for slots in self.slots)
            squared = _clamped_squared(
                qx * unit_x + qy * unit_y + along_0, qy * unit_x - qx * unit_y + across_0, half
            )
            best = squared if best is None else np.minimum(best, squared, out=best)
        count = self.count.take(cell)
        fuller = np.flatnonzero(count > _SLOTS)
        if len(fuller):
            best[fuller] = self._ragged_squared(
                qx.take(fuller), qy.take(fuller), cell.take(fuller), count.take(fuller)
            )
        maps = np.sqrt(best, out=best).reshape(-1, height, width)
        return (maps * scales[:, None, None]).astype(np.float32)

    def _ragged_squared(self, qx, qy, cells, counts) -> np.ndarray:
        """Squared distances of points in cells with more candidates than slots."""
        offsets = np.cumsum(counts) - counts
        point = np.repeat(np.arange(len(counts)), counts)
        index = np.arange(int(counts.sum())) + np.repeat(
            self.ragged_start.take(cells) - offsets, counts
        )
        segment = self.ragged_segment.take(index)
        x, y = qx.take(point), qy.take(point)
        unit_x, unit_y = self.unit_x.take(segment), self.unit_y.take(segment)
        squared = _clamped_squared(
            x * unit_x + y * unit_y + self.along_0.take(segment),
            y * unit_x - x * unit_y + self.across_0.take(segment),
            self.half.take(segment),
        )
        return np.minimum.reduceat(squared, offsets)
