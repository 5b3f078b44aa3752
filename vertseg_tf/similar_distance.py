"""Distance maps of one polyline through many similarity maps, sharing one pruning structure.

The 45 training patches of a vertebra are its outline seen through 45 similarity maps (turns
and scalings); `similar_distance_maps` measures all their distance maps at once, exactly, with
the segment frames of `vertseg_tf.distance`. numpy only; imports `distance`, never the reverse.
"""

from __future__ import annotations

import numpy as np

from vertseg_tf.distance import clamped_squared, group_starts, segment_frames

__all__ = ["similar_distance_maps"]

# Cell side in pixels of the finest map, cells per tile side, the candidates each cell keeps in
# its fixed slots (cells with more use a ragged list), maps per chunk of the pixel stage, tile
# x segment pairs per chunk of the tile stage, and a margin (relative to the coordinates'
# magnitude) far above the rounding of the bounds.
_CELL_PIXELS = 1.0
_CELLS_PER_TILE = 4
_SLOTS = 3
_MAPS_PER_CHUNK = 8
_TILE_PAIRS_PER_CHUNK = 1 << 16
_RELATIVE_SLACK = 1e-9


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
        >>> from vertseg_tf.distance import polyline_distance_map
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
    frames = segment_frames([polyline - origin], closed)[:, 0]
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

    `along`, `across`: a point's offsets in each segment's frame (see `clamped_squared`).
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
        starts = group_starts(ragged_cells)
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
        squared = clamped_squared(along.copy(), across.copy(), self.half)
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
        starts = group_starts(tile)
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
        starts = group_starts(cell)
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
            squared = clamped_squared(
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
        squared = clamped_squared(
            x * unit_x + y * unit_y + self.along_0.take(segment),
            y * unit_x - x * unit_y + self.across_0.take(segment),
            self.half.take(segment),
        )
        return np.minimum.reduceat(squared, offsets)
