"""Plane geometry on the pixel grid: polygons <-> masks, polylines, distances, affine maps.

Conventions (docs/architecture.md, coordinates): a point is (x, y) with x = column and y =
row; the origin is the centre of the top-left pixel, so pixel (x, y) has its centre at integer
coordinates (x, y).
Polygons and polylines are (K, 2) float arrays of xy points; a closed polygon does not repeat
its first point. Affine maps are (2, 3) matrices acting on column vectors (x, y, 1).
The distances to polylines live in `vertseg_tf.distance` and are re-exported here.

numpy / scipy / scikit-image only: no TensorFlow, so every backend can use this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.measure import find_contours

from vertseg_tf.distance import (
    point_to_polyline_distance,
    polyline_distance_map,
    polyline_distance_maps,
    polyline_segments,
)

__all__ = [
    "apply_affine",
    "inside_image",
    "invert_affine",
    "largest_outline",
    "line_crossings",
    "mask_to_contours",
    "point_in_polygon",
    "point_to_polyline_distance",
    "polygon_area",
    "polygon_centroid",
    "polygon_is_simple",
    "polygon_second_moments",
    "polygon_to_mask",
    "polygons_to_masks",
    "polyline_distance_map",
    "polyline_distance_maps",
    "resample_closed",
]

# scikit-image's tolerance for a pixel centre on a polygon vertex.
_VERTEX_EPS = 1e-12


def polygon_to_mask(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Fill a polygon on a pixel grid at pixel centres.

    Boundary rule: pixel (x, y) is in the mask iff its centre (x, y) lies inside the polygon or
    on its boundary (scikit-image's `polygon2mask` rule, computed the same way; see
    `polygons_to_masks`). A rectangle with corners (x0, y0), (x1, y1) therefore covers exactly
    the pixels with x0 <= x <= x1 and y0 <= y <= y1; parts outside the grid are clipped.

    Args:
        polygon: (K, 2) xy vertices, K >= 3, closed implicitly.
        shape: (H, W) of the mask.

    Returns:
        (H, W) uint8 mask of 0 and 1.

    Example:
        >>> rectangle = np.array([[1.0, 1.0], [3.0, 1.0], [3.0, 2.0], [1.0, 2.0]])
        >>> int(polygon_to_mask(rectangle, (4, 5)).sum())
        6
    """
    return polygons_to_masks([polygon], shape)[0]


def polygons_to_masks(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """`polygon_to_mask` of many polygons at once, vectorised over polygons, rows and columns.

    The rule is scikit-image's ray crossing (O'Rourke, "Computational Geometry in C", ch. 7):
    a pixel centre is in when it is within 1e-12 of a vertex, or when a ray to the right or a
    ray to the left crosses the outline an odd number of times (on an edge the two parities
    differ), tested only inside the polygon's bounding box clipped to the grid. Each edge that
    straddles a row crosses it once, at x = X; a column c farther than rounding from X counts
    by the sign of X - c, and one within 1e-12 (relative) of X by scikit-image's own float
    operations, so the masks are the same bit for bit at a cost per row, not per pixel.

    Args:
        polygons: B (K_b, 2) xy outlines, K_b >= 3 (they may differ in length).
        shape: (H, W) of the masks.

    Returns:
        (B, H, W) uint8 masks of 0 and 1.

    Example:
        >>> square = np.array([[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]])
        >>> polygons_to_masks([square, square + 1.0], (5, 5)).sum(axis=(1, 2)).tolist()
        [9, 9]
    """
    height, width = (int(n) for n in shape)
    xs, ys = _padded_vertices(polygons)
    masks = np.zeros((len(xs), height, width), np.uint8)
    if len(xs) == 0 or height == 0 or width == 0:
        return masks
    _fill_crossings(masks, xs, ys)
    _mark_vertices(masks, xs, ys)
    columns = np.arange(width)
    rows = np.arange(height)
    low_x = np.maximum(xs.min(axis=1), 0.0).astype(np.int64)
    high_x = np.ceil(xs.max(axis=1)).astype(np.int64)
    low_y = np.maximum(ys.min(axis=1), 0.0).astype(np.int64)
    high_y = np.ceil(ys.max(axis=1)).astype(np.int64)
    in_x = (columns >= low_x[:, None]) & (columns <= high_x[:, None])
    in_y = (rows >= low_y[:, None]) & (rows <= high_y[:, None])
    masks &= (in_y[:, :, None] & in_x[:, None, :]).view(np.uint8)
    return masks


def _padded_vertices(polygons: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(B, K_max) x and y; a short polygon repeats its last vertex (a zero-length edge)."""
    polygons = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons]
    longest = max((len(p) for p in polygons), default=0)
    padded = np.empty((len(polygons), longest, 2))
    for row, polygon in zip(padded, polygons):
        row[: len(polygon)] = polygon
        row[len(polygon) :] = polygon[-1]
    return padded[..., 0], padded[..., 1]


def _fill_crossings(masks: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    """Set the pixels whose left or right ray crosses the outline an odd number of times."""
    count, height, width = masks.shape
    # Edge (i-1, i): vertex i is "0", vertex i-1 is "1", as in scikit-image. It straddles row
    # r to the right when (y0 > r) != (y1 > r), to the left when (y0 < r) != (y1 < r): the
    # rows from ceil(min(y0, y1)) to floor(max(y0, y1)), for an edge that is not level.
    y0, y1 = ys.ravel(), np.roll(ys, 1, axis=1).ravel()
    x0, x1 = xs.ravel(), np.roll(xs, 1, axis=1).ravel()
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    first = np.maximum(np.ceil(low), 0).astype(np.int64)
    last = np.minimum(np.floor(high), height - 1).astype(np.int64)
    rows_per_edge = np.where(low < high, np.maximum(last - first + 1, 0), 0)
    total = int(rows_per_edge.sum())
    if total == 0:
        return
    edge = np.repeat(np.arange(len(y0)), rows_per_edge)
    row = np.arange(total) - np.repeat(np.cumsum(rows_per_edge) - rows_per_edge, rows_per_edge)
    row += first[edge]
    group = edge // ys.shape[1] * height + row
    x0, x1 = x0[edge], x1[edge]
    y0, y1 = y0[edge] - row, y1[edge] - row
    # scikit-image tests crossing(c) = ((x0 - c) y1 - (x1 - c) y0) / (y1 - y0) at every column
    # c: > 0 counts for the right ray, < 0 for the left one. That is X - c for the crossing
    # point X, to rounding (at most 1e-15 of the coordinates: |y0| + |y1| = |y1 - y0| on an
    # edge that straddles the row), so away from X the sign is that of X - c; a column within
    # `near` of X is tested with scikit-image's own arithmetic.
    cross = (x0 * y1 - x1 * y0) / (y1 - y0)
    right = (y0 > 0) != (y1 > 0)
    left = (y0 < 0) != (y1 < 0)
    # The right ray of column c crosses when c < X (c < ceil X), the left one when c > X.
    odd_right = _parities(group[right], np.ceil(cross[right]), count * height, width, False)
    odd_left = _parities(group[left], np.floor(cross[left]) + 1.0, count * height, width, True)
    near = 1e-12 * (1.0 + np.abs(x0) + np.abs(x1) + width)
    column = np.rint(cross)
    close = np.flatnonzero((np.abs(cross - column) <= near) & (column >= 0) & (column < width))
    if len(close):
        c = column[close]
        exact = ((x0[close] - c) * y1[close] - (x1[close] - c) * y0[close]) / (
            y1[close] - y0[close]
        )
        where = (group[close], c.astype(np.int64))
        flip = right[close] & ((exact > 0) != (c < cross[close]))
        np.bitwise_xor.at(odd_right, (where[0][flip], where[1][flip]), 1)
        flip = left[close] & ((exact < 0) != (c > cross[close]))
        np.bitwise_xor.at(odd_left, (where[0][flip], where[1][flip]), 1)
    odd_right |= odd_left
    masks.reshape(count * height, width)[:] = odd_right


def _parities(group, start, groups: int, width: int, from_start: bool) -> np.ndarray:
    """(groups, width) uint8: for each row group, the parity of its crossings that count at
    column c, a crossing counting from column `start` on (`from_start`) or before it."""
    toggles = np.zeros((groups, width + 1), np.uint8)
    np.add.at(toggles, (group, np.clip(start, 0, width).astype(np.int64)), 1)
    if from_start:
        parity = np.cumsum(toggles, axis=1, dtype=np.uint8)[:, :width]
    else:
        parity = np.cumsum(toggles[:, ::-1], axis=1, dtype=np.uint8)[:, ::-1][:, 1:]
    parity &= 1
    return parity


def _mark_vertices(masks: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    """Set the pixels whose centre is within 1e-12 of a vertex (scikit-image's VERTEX case)."""
    _, height, width = masks.shape
    column, row = np.rint(xs), np.rint(ys)
    near = (np.abs(xs - column) < _VERTEX_EPS) & (np.abs(ys - row) < _VERTEX_EPS)
    near &= (column >= 0) & (column < width) & (row >= 0) & (row < height)
    polygon, vertex = np.nonzero(near)
    rows = row[polygon, vertex].astype(np.int64)
    columns = column[polygon, vertex].astype(np.int64)
    masks[polygon, rows, columns] = 1


def mask_to_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Sub-pixel outlines of a binary mask by marching squares at level 0.5.

    The mask is padded by one background pixel first, so an object touching the border still
    gives a closed contour (it runs half a pixel outside the last mask pixel centres, on the
    border of the grid). Every connected component (and hole) gives its own contour.

    Args:
        mask: (H, W) array, nonzero = inside.

    Returns:
        list of (M, 2) float64 closed xy polylines (first point not repeated); empty for an
        empty mask.

    Example:
        >>> contours = mask_to_contours(np.pad(np.ones((2, 2)), 1))
        >>> len(contours), contours[0].shape[1]
        (1, 2)
    """
    padded = np.pad((np.asarray(mask) != 0).astype(np.float64), 1)
    contours = []
    for rows_cols in find_contours(padded, 0.5):
        xy = rows_cols[:, ::-1] - 1.0
        if len(xy) > 1 and np.allclose(xy[0], xy[-1]):
            xy = xy[:-1]
        contours.append(xy)
    return contours


def largest_outline(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The outer contour of a mask's largest 4-connected component, and the component count.

    Returns:
        ((K, 2) contour as `mask_to_contours` traces it, the largest by area of that
        component's contours; (0, 2) for an empty mask), number of components.

    Example:
        >>> mask = np.zeros((8, 8), np.uint8); mask[1:3, 1:3] = 1; mask[4:8, 4:8] = 1
        >>> outline, count = largest_outline(mask)
        >>> count, abs(polygon_area(outline)) > 4
        (2, True)
    """
    from scipy import ndimage

    components, count = ndimage.label(mask)
    largest = np.asarray(mask, bool)
    if count > 1:
        sizes = np.bincount(components.ravel())[1:]
        largest = components == 1 + int(np.argmax(sizes))
    contours = mask_to_contours(largest)
    if not contours:
        return np.zeros((0, 2)), count
    return max(contours, key=lambda contour: abs(polygon_area(contour))), count


def resample_closed(polyline: np.ndarray, n: int, start_index: int = 0) -> np.ndarray:
    """`n` points equally spaced by arc length along a closed polyline.

    Args:
        polyline: (K, 2) xy vertices of a closed outline (first point not repeated).
        n: number of output points, >= 1.
        start_index: the vertex the first output point sits on.

    Returns:
        (n, 2) float64 points, in the polyline's direction of travel.

    Example:
        >>> square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
        >>> resample_closed(square, 8)[1]
        array([1., 0.])
    """
    polyline = np.roll(np.asarray(polyline, dtype=np.float64), -start_index, axis=0)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    loop = np.vstack([polyline, polyline[:1]])
    step = np.linalg.norm(np.diff(loop, axis=0), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(step)])
    total = cumulative[-1]
    if total == 0:
        return np.repeat(polyline[:1], n, axis=0)
    targets = np.arange(n) * (total / n)
    return np.stack(
        [np.interp(targets, cumulative, loop[:, 0]), np.interp(targets, cumulative, loop[:, 1])],
        axis=1,
    )


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map xy points through a (2, 3) affine: p' = A[:, :2] @ p + A[:, 2].

    Args:
        affine: (2, 3) matrix.
        points: (..., 2) xy points.

    Returns:
        float64 array of the same shape as `points`.

    Example:
        >>> apply_affine(np.array([[2.0, 0, 1], [0, 2.0, 0]]), np.array([[1.0, 1.0]]))
        array([[3., 2.]])
    """
    affine = np.asarray(affine, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """The (2, 3) inverse of an invertible (2, 3) affine map.

    Example:
        >>> invert_affine(np.array([[2.0, 0, 1], [0, 2.0, 4]]))
        array([[ 0.5,  0. , -0.5],
               [ 0. ,  0.5, -2. ]])
    """
    affine = np.asarray(affine, dtype=np.float64)
    linear_inverse = np.linalg.inv(affine[:, :2])
    return np.hstack([linear_inverse, -(linear_inverse @ affine[:, 2])[:, None]])


def _shoelace(polygon: np.ndarray):
    """x, y, the next vertex's x, y, and the cross terms x_k y_k+1 - x_k+1 y_k of a polygon."""
    x, y = np.asarray(polygon, dtype=np.float64).T
    x_next, y_next = np.roll(x, -1), np.roll(y, -1)
    return x, y, x_next, y_next, x * y_next - x_next * y


def polygon_area(polygon: np.ndarray) -> float:
    """Signed shoelace area; positive when the vertices run clockwise on screen (y down),
    which is counter-clockwise in x-right, y-up axes.

    Example:
        >>> polygon_area(np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 3.0], [0.0, 3.0]]))
        6.0
    """
    return float(0.5 * _shoelace(polygon)[4].sum())


def polygon_centroid(polygon: np.ndarray) -> np.ndarray:
    """Centroid (xy) of the area a simple polygon encloses; its vertex mean if the area is 0.

    Example:
        >>> polygon_centroid(np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 3.0], [0.0, 3.0]]))
        array([1. , 1.5])
    """
    x, y, x_next, y_next, cross = _shoelace(polygon)
    area = 0.5 * cross.sum()
    if abs(area) < 1e-12:
        return np.asarray(polygon, dtype=np.float64).mean(axis=0)
    return np.array([((x + x_next) * cross).sum(), ((y + y_next) * cross).sum()]) / (6.0 * area)


def point_in_polygon(point, polygon: np.ndarray) -> bool:
    """Even-odd rule: a ray from `point` towards +x crosses the outline an odd number of times.

    Example:
        >>> square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
        >>> point_in_polygon([1.0, 1.0], square), point_in_polygon([3.0, 1.0], square)
        (True, False)
    """
    x, y = np.asarray(point, dtype=np.float64)
    polygon = np.asarray(polygon, dtype=np.float64)
    xi, yi = polygon[:, 0], polygon[:, 1]
    xj, yj = np.roll(xi, -1), np.roll(yi, -1)
    straddles = (yi > y) != (yj > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_crossing = xi + (y - yi) * (xj - xi) / (yj - yi)
    return bool(np.count_nonzero(straddles & (x < x_crossing)) % 2)


def inside_image(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which (N, 2) xy points lie on an image of `shape` (H, W).

    Pixel centres are integers, so the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5].

    Example:
        >>> inside_image(np.array([[-0.5, 0.0], [3.6, 1.0]]), (2, 4)).tolist()
        [True, False]
    """
    height, width = shape
    points = np.asarray(points, dtype=np.float64)
    x, y = points[:, 0], points[:, 1]
    return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def polygon_is_simple(polygon: np.ndarray) -> bool:
    """Whether a closed polygon's edges meet only at shared vertices of neighbouring edges.

    Every pair of non-adjacent edges is tested exactly (orientation signs, collinear overlaps
    included); a repeated vertex or an edge of zero length makes the polygon not simple.

    Args:
        polygon: (K, 2) xy vertices, K >= 3, closed implicitly.

    Example:
        >>> polygon_is_simple(np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]))
        True
        >>> polygon_is_simple(np.array([[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]]))
        False
    """
    starts, ends = polyline_segments(polygon, closed=True)
    count = len(starts)
    if count < 3 or len(np.unique(starts, axis=0)) < count:
        return False
    i, j = np.triu_indices(count, k=2)
    keep = ~((i == 0) & (j == count - 1))
    i, j = i[keep], j[keep]
    a, b, c, d = starts[i], ends[i], starts[j], ends[j]
    d1 = _cross(b - a, c - a)
    d2 = _cross(b - a, d - a)
    d3 = _cross(d - c, a - c)
    d4 = _cross(d - c, b - c)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)

    def on_segment(p, q, r, orientation):
        inside = (np.minimum(p, q) <= r) & (r <= np.maximum(p, q))
        return (orientation == 0) & inside.all(axis=-1)

    touching = (on_segment(a, b, c, d1) | on_segment(a, b, d, d2)
                | on_segment(c, d, a, d3) | on_segment(c, d, b, d4))
    return not bool((proper | touching).any())


def line_crossings(polyline: np.ndarray, origin, direction, closed: bool = True) -> np.ndarray:
    """Where the infinite line `origin + t * direction` crosses a polyline's edges.

    Args:
        polyline: (K, 2) xy vertices.
        origin: (2,) a point of the line.
        direction: (2,) its direction (any nonzero length; t is in units of it).
        closed: also use the edge from the last vertex back to the first.

    Returns:
        (M,) sorted float64 line parameters t of the crossings; an edge lying on the line
        contributes its two end points, a vertex on the line is reported once per edge.

    Example:
        >>> square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
        >>> line_crossings(square, [1.0, 1.0], [0.0, 1.0])
        array([-1.,  1.])
    """
    starts, ends = polyline_segments(polyline, closed)
    origin = np.asarray(origin, dtype=np.float64)
    direction = np.asarray(direction, dtype=np.float64)
    edges = ends - starts
    offsets = starts - origin
    denominator = _cross(direction, edges)
    parallel = np.abs(denominator) < 1e-12 * np.linalg.norm(edges, axis=1).clip(min=1e-300)
    safe = np.where(parallel, 1.0, denominator)
    along_edge = -_cross(direction, offsets) / safe
    along_line = _cross(offsets, edges) / safe
    hit = ~parallel & (along_edge >= 0.0) & (along_edge <= 1.0)
    on_line = parallel & (np.abs(_cross(direction, offsets)) < 1e-12)
    length_sq = float(direction @ direction)
    collinear = np.concatenate([offsets[on_line] @ direction, (ends - origin)[on_line] @ direction])
    return np.sort(np.concatenate([along_line[hit], collinear / length_sq]))


def polygon_second_moments(polygon: np.ndarray) -> np.ndarray:
    """The (2, 2) second moments of area of a simple polygon about its centroid.

    Entry [i, j] is the integral of (p_i - c_i)(p_j - c_j) over the enclosed region (xy
    order), whichever way the vertices run.

    Example:
        >>> polygon_second_moments(np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]]))
        array([[0.66666667, 0.        ],
               [0.        , 0.16666667]])
    """
    polygon = np.asarray(polygon, dtype=np.float64)
    x, y = (polygon - polygon_centroid(polygon)).T
    x_next, y_next = np.roll(x, -1), np.roll(y, -1)
    cross = x * y_next - x_next * y
    xx = ((x * x + x * x_next + x_next * x_next) * cross).sum() / 12.0
    yy = ((y * y + y * y_next + y_next * y_next) * cross).sum() / 12.0
    xy = ((x * y_next + 2 * x * y + 2 * x_next * y_next + x_next * y) * cross).sum() / 24.0
    moments = np.array([[xx, xy], [xy, yy]])
    return moments if moments[0, 0] + moments[1, 1] >= 0 else -moments
