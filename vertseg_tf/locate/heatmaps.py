"""Pure numpy geometry of the locator: resizing, Gaussian target heatmaps and peak decoding.

The locator sees the radiograph resized so that its long side is `long_side` pixels and placed
at an offset on a square canvas; its heatmaps have `1 / stride` of the canvas resolution.
Coordinates follow the package's convention: x = column, y = row, pixel centres at integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LOCATED_LEVELS",
    "LOCATED_REFINEMENTS",
    "LOCATED_SCALE_RANGE",
    "MISSING_THRESHOLD",
    "SEGMENTED_LEVELS",
    "CanvasGeometry",
    "PeakFinding",
    "channel_levels",
    "decode_chain",
    "decode_peaks",
    "level_centers",
    "local_mass",
    "located_scales",
    "recentred",
    "refine_segmentation",
    "render_heatmaps",
    "typical_spacing",
]

LOCATED_LEVELS = ("C2", "C3", "C4", "C5", "C6", "C7", "T1")
"""The levels a locator can find, top to bottom: C3-C7, and C2 and T1 around them, which
help to name the levels (synthetic v2 records their centres in `ImageRecord.level_centers`)."""
SEGMENTED_LEVELS = ("C3", "C4", "C5", "C6", "C7")
"""The located levels that are segmented: those the paper and the native datasets outline."""


def channel_levels(channels: int) -> tuple[str, ...]:
    """The levels of heatmap channels whose levels are not recorded: all of `LOCATED_LEVELS`
    for 7 channels, `SEGMENTED_LEVELS` for 5 (a locator from before C2 and T1)."""
    for levels in (LOCATED_LEVELS, SEGMENTED_LEVELS):
        if channels == len(levels):
            return levels
    raise ValueError(f"{channels} heatmap channels do not say which levels they are; "
                     "give the levels")


def level_centers(record, levels=LOCATED_LEVELS) -> np.ndarray:
    """(L, 2) annotated centres of a dataset record per level of `levels` (outlined vertebrae
    and `level_centers`), NaN for a level it does not annotate."""
    centers = np.full((len(levels), 2), np.nan)
    known = {**record.level_centers, **{v.label: v.center for v in record.vertebrae}}
    for k, label in enumerate(levels):
        if label in known:
            centers[k] = known[label]
    return centers


LOCATED_SCALE_RANGE = (0.8, 1.25)
"""A located vertebra's patch scale is kept within these factors of the film's typical
spacing (`typical_spacing`): a level found one vertebra off, next to a missing one, would
otherwise halve or double its patch (docs/automatic.md)."""


def typical_spacing(centers) -> float | None:
    """Median distance per level between every two found centres (two levels apart counts
    half the distance), or None under two found.

    Args:
        centers: (L, 2) centres per level, top to bottom, NaN where a level is missing.

    Example:
        >>> typical_spacing([[0.0, 0.0], [0.0, 40.0], [np.nan, np.nan], [0.0, 90.0]])
        30.0
    """
    centers = np.asarray(centers, np.float64)
    levels = np.flatnonzero(np.isfinite(centers[:, 0]))
    steps = [np.linalg.norm(centers[j] - centers[i]) / (j - i)
             for n, i in enumerate(levels) for j in levels[n + 1:]]
    return float(np.median(steps)) if steps else None


def located_scales(centers, scale_range=LOCATED_SCALE_RANGE) -> np.ndarray:
    """The vertebra scale (mean distance to the neighbouring levels) of each found level,
    with a missing level in between counted (two levels apart is twice the spacing), kept
    within `scale_range` times the film's `typical_spacing`.

    Args:
        centers: (L, 2) centres per level, top to bottom, NaN where a level is missing; at
            least two found.
        scale_range: (low, high) factors of the typical spacing; None leaves the scales as
            the neighbours give them.

    Returns:
        (F,) scales of the F found levels, in order.

    Example:
        >>> located_scales([[0.0, 0.0], [np.nan, np.nan], [0.0, 20.0], [0.0, 32.0]]).tolist()
        [10.0, 11.0, 12.0]
        >>> located_scales([[0.0, 0.0], [0.0, 40.0], [0.0, 80.0], [np.nan, np.nan],
        ...                 [0.0, 120.0]]).tolist()  # the last is one level off: 20 -> 28
        [40.0, 40.0, 30.0, 28.0]
    """
    centers = np.asarray(centers, np.float64)
    levels = np.flatnonzero(np.isfinite(centers[:, 0]))
    steps = (np.linalg.norm(np.diff(centers[levels], axis=0), axis=1) / np.diff(levels))
    scales = np.nanmean(np.stack([np.r_[np.nan, steps], np.r_[steps, np.nan]]), axis=0)
    if scale_range is None:
        return scales
    spacing = typical_spacing(centers)
    return np.clip(scales, scale_range[0] * spacing, scale_range[1] * spacing)


def recentred(centers, outlines, shape=None) -> np.ndarray:
    """Found centres moved to the area centroids of their segmented outlines.

    A vertebra's centre is its outline's area centroid (the convention of the synthetic
    generator and the importers), so a segmentation from a located centre gives a better
    centre; segmenting again from it gives a better outline.

    Args:
        centers: (L, 2) centres per level, NaN where missing.
        outlines: {level index: (K, 2) image-space outline}; an empty outline (or a level not
            given) keeps its centre.
        shape: the image's (H, W): a centroid outside it keeps the centre.

    Example:
        >>> square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
        >>> recentred([[1.0, 1.0], [np.nan, np.nan]], {0: square}).tolist()
        [[2.0, 2.0], [nan, nan]]
    """
    from vertseg_tf.geometry import inside_image, polygon_centroid

    moved = np.array(centers, np.float64)
    for level, outline in outlines.items():
        if len(outline) < 3 or not np.isfinite(moved[level, 0]):
            continue
        centroid = polygon_centroid(np.asarray(outline, np.float64))
        if shape is None or inside_image(centroid[None], shape[:2])[0]:
            moved[level] = centroid
    return moved


def refine_segmentation(centers, segment_from, outlines_of, refine: int, shape=None):
    """Segment from `centers`, then `refine` times move the centres to the area centroids of
    the outlines segmented from them (`recentred`) and segment again.

    Args:
        centers: (L, 2) centres per level, NaN where missing.
        segment_from: (L, 2) centres -> a segmentation.
        outlines_of: a segmentation -> {level index: (K, 2) image-space outline}.
        refine: how many times the centres are moved.
        shape: the image's (H, W), as `recentred` takes it.

    Returns:
        (the last segmentation, the centres it was made from).

    Example:
        >>> square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
        >>> made, centers = refine_segmentation(
        ...     [[1.0, 1.0]], lambda c: c.tolist(), lambda made: {0: square}, 1)
        >>> made, centers.tolist()
        ([[2.0, 2.0]], [[2.0, 2.0]])
    """
    centers = np.asarray(centers, np.float64)
    segmentation = segment_from(centers)
    for _ in range(refine):
        centers = recentred(centers, outlines_of(segmentation), shape)
        segmentation = segment_from(centers)
    return segmentation, centers


LOCATED_REFINEMENTS = 2
"""Times a segmentation from located centres moves each centre to its outline's centroid
(`recentred`) and segments again (chosen on validation films: docs/automatic.md)."""

MISSING_THRESHOLD = 0.3
"""A level whose heatmap peak is below this is reported missing (its centre is not given)."""


@dataclass(frozen=True)
class CanvasGeometry:
    """Where an (H, W) image lies on the locator's square canvas.

    Args:
        scale: canvas pixels per image pixel (`long_side / max(H, W)`).
        offset: (x, y) canvas position of the resized image's top-left corner.
        stride: canvas pixels per heatmap pixel.

    Example:
        >>> geometry = CanvasGeometry(scale=0.5, offset=(0.0, 0.0), stride=2)
        >>> geometry.to_heatmap(np.array([[9.5, 9.5]])).tolist()
        [[2.0, 2.0]]
        >>> geometry.to_image(geometry.to_heatmap(np.array([[100.0, 40.0]]))).tolist()
        [[100.0, 40.0]]
    """

    scale: float
    offset: tuple[float, float]
    stride: int

    @classmethod
    def fit(cls, shape, long_side: int, stride: int, offset=(0.0, 0.0)) -> CanvasGeometry:
        """The geometry of an image of `shape` (H, W) resized to a long side of `long_side`."""
        return cls(long_side / max(shape[:2]), (float(offset[0]), float(offset[1])), stride)

    def resized_shape(self, shape) -> tuple[int, int]:
        """(h, w) of the resized image on the canvas."""
        return (max(1, round(shape[0] * self.scale)), max(1, round(shape[1] * self.scale)))

    def to_heatmap(self, xy: np.ndarray) -> np.ndarray:
        """Image xy (N, 2) to heatmap xy; a heatmap pixel averages `stride` canvas pixels."""
        canvas = (np.asarray(xy, np.float64) + 0.5) * self.scale - 0.5 + np.asarray(self.offset)
        return (canvas + 0.5) / self.stride - 0.5

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Heatmap xy (N, 2) back to image xy (the inverse of `to_heatmap`)."""
        canvas = (np.asarray(xy, np.float64) + 0.5) * self.stride - 0.5 - np.asarray(self.offset)
        return (canvas + 0.5) / self.scale - 0.5


def render_heatmaps(centers, shape, sigma: float) -> np.ndarray:
    """Gaussian target heatmaps, one channel per centre, peak 1 at the centre.

    Args:
        centers: (L, 2) heatmap xy per level; a row of NaN (a level not annotated) gives an
            all-zero channel.
        shape: (h, w) of the heatmap.
        sigma: the Gaussian's standard deviation in heatmap pixels.

    Returns:
        (h, w, L) float32 heatmaps.

    Example:
        >>> maps = render_heatmaps([[1.0, 2.0]], (4, 3), sigma=1.0)
        >>> maps.shape, float(maps[2, 1, 0])
        ((4, 3, 1), 1.0)
    """
    centers = np.asarray(centers, np.float64).reshape(-1, 2)
    rows = np.arange(shape[0], dtype=np.float64)[:, None, None]
    cols = np.arange(shape[1], dtype=np.float64)[None, :, None]
    squared = (cols - centers[:, 0]) ** 2 + (rows - centers[:, 1]) ** 2
    maps = np.exp(-squared / (2.0 * sigma * sigma))
    return np.nan_to_num(maps, nan=0.0).astype(np.float32)


@dataclass(frozen=True)
class PeakFinding:
    """One level's decoded peak: heatmap xy (sub-pixel) and the peak value (its confidence)."""

    xy: np.ndarray
    confidence: float

    @property
    def found(self) -> bool:
        return bool(np.all(np.isfinite(self.xy)))


def _log_parabola_offset(left: float, centre: float, right: float) -> float:
    """Vertex of the parabola through the logs of three samples: exact for a Gaussian."""
    logs = np.log(np.maximum([left, centre, right], 1e-12))
    curvature = logs[0] - 2.0 * logs[1] + logs[2]
    if curvature >= 0.0:
        return 0.0
    return float(np.clip(0.5 * (logs[0] - logs[2]) / curvature, -0.5, 0.5))


def local_mass(heatmaps: np.ndarray, radius: int = 2) -> np.ndarray:
    """Sum of each channel over the (2 radius + 1)^2 window around every pixel (zero padded):
    for a spatial distribution, the probability that the level lies in that window."""
    heatmaps = np.asarray(heatmaps, np.float64)
    padded = np.pad(heatmaps, ((radius, radius), (radius, radius), (0, 0)))
    summed = np.cumsum(np.cumsum(padded, axis=0), axis=1)
    summed = np.pad(summed, ((1, 0), (1, 0), (0, 0)))
    size = 2 * radius + 1
    return (summed[size:, size:] - summed[:-size, size:] - summed[size:, :-size]
            + summed[:-size, :-size])


def _refined(channel: np.ndarray, row: int, col: int) -> np.ndarray:
    """Sub-pixel xy of the maximum at (row, col): a parabola through the logs of it and its two
    neighbours along each axis (exact for a Gaussian); on the border an axis stays integer."""
    x, y = float(col), float(row)
    peak = channel[row, col]
    if 0 < col < channel.shape[1] - 1:
        x += _log_parabola_offset(channel[row, col - 1], peak, channel[row, col + 1])
    if 0 < row < channel.shape[0] - 1:
        y += _log_parabola_offset(channel[row - 1, col], peak, channel[row + 1, col])
    return np.array([x, y])


def decode_peaks(heatmaps: np.ndarray, threshold: float = MISSING_THRESHOLD,
                 confidence: np.ndarray | None = None) -> list[PeakFinding]:
    """The maximum of every channel, refined to sub-pixel precision, or missing.

    The refinement fits a parabola to the logs of the maximum and its two neighbours along
    each axis (exact for a Gaussian peak); on the border an axis keeps the integer position.

    Args:
        heatmaps: (h, w, L) heatmaps.
        threshold: a channel whose confidence is below it is missing (xy NaN); never a guess.
        confidence: (h, w, L) confidence maps read at each maximum (e.g. `local_mass` of a
            spatial distribution); default the heatmaps themselves (the peak value).

    Returns:
        One `PeakFinding` per channel.

    Example:
        >>> maps = render_heatmaps([[1.3, 2.0], [np.nan, np.nan]], (5, 4), sigma=1.0)
        >>> [(np.round(p.xy, 6).tolist(), p.found) for p in decode_peaks(maps)]
        [([1.3, 2.0], True), ([nan, nan], False)]
    """
    heatmaps = np.asarray(heatmaps, np.float64)
    confidence = heatmaps if confidence is None else np.asarray(confidence, np.float64)
    findings = []
    for level, channel in enumerate(np.moveaxis(heatmaps, -1, 0)):
        row, col = np.unravel_index(int(np.argmax(channel)), channel.shape)
        score = float(confidence[row, col, level])
        xy = _refined(channel, row, col) if score >= threshold else np.array([np.nan, np.nan])
        findings.append(PeakFinding(xy, score))
    return findings


def _candidates(channel: np.ndarray, mass: np.ndarray, count: int):
    """Up to `count` local maxima of a channel (3 x 3 neighbourhood), highest first (the
    channel's maximum first; ties in row-major order), as (refined xy (K, 2), mass (K,))."""
    height, width = channel.shape
    padded = np.pad(channel, 1, constant_values=-np.inf)
    neighbours = np.stack([padded[1 + dr:1 + dr + height, 1 + dc:1 + dc + width]
                           for dr in (-1, 0, 1) for dc in (-1, 0, 1)])
    rows, cols = np.nonzero(channel >= neighbours.max(axis=0))
    order = np.argsort(-channel[rows, cols], kind="stable")[:count]
    xy = np.array([_refined(channel, rows[k], cols[k]) for k in order]).reshape(-1, 2)
    return xy, mass[rows[order], cols[order]]


def decode_chain(heatmaps: np.ndarray, threshold: float = MISSING_THRESHOLD,
                 confidence: np.ndarray | None = None, candidates: int = 3,
                 spacing_range: tuple[float, float] = (0.6, 1.5)) -> list[PeakFinding]:
    """One position per level (channels top to bottom), chosen jointly in spine order.

    Every level may take one of its channel's `candidates` strongest local maxima whose
    confidence is at least `threshold`, or be missing. Two found levels k < l must lie with
    l below k in the image, `(l - k)` typical spacings apart within `spacing_range` (the
    typical spacing is the median distance per level between the channels' strongest peaks
    of confidence >= threshold). Among the chains that obey this, the decoder takes the one
    with the largest sum of log confidences, a missing level counting log(threshold): two
    levels never share a vertebra, and a level is never placed where the spine's spacing says
    no vertebra of that level can be; it is reported missing instead.

    Returns:
        One `PeakFinding` per channel; a missing one carries the confidence at its channel's
        maximum.
    """
    heatmaps = np.asarray(heatmaps, np.float64)
    confidence = heatmaps if confidence is None else np.asarray(confidence, np.float64)
    levels = heatmaps.shape[-1]
    options = [_candidates(heatmaps[..., k], confidence[..., k], candidates)
               for k in range(levels)]
    eligible = [(xy[mass >= threshold], mass[mass >= threshold]) for xy, mass in options]
    spacing = typical_spacing([xy[0] if len(xy) else (np.nan, np.nan) for xy, _ in eligible])
    # A missing level costs log(threshold); with threshold 0 a large finite cost instead, so
    # that every level that fits the chain is found.
    skip = float(np.log(max(threshold, 1e-300)))
    low, high = spacing_range

    def fits(k, a, level, b) -> bool:
        step = eligible[level][0][b] - eligible[k][0][a]
        if spacing is None:
            return True
        span = (level - k) * spacing
        return step[1] > 0 and low * span <= float(np.linalg.norm(step)) <= high * span

    # best[level][b]: the best chain whose lowest found level is `level`, at candidate b.
    best, back = [], []
    for level, (_, mass) in enumerate(eligible):
        scores, links = [], []
        for b in range(len(mass)):
            score, link = level * skip, None
            for k in range(level):
                for a in range(len(eligible[k][1])):
                    value = best[k][a] + (level - k - 1) * skip
                    if value > score and fits(k, a, level, b):
                        score, link = value, (k, a)
            scores.append(score + float(np.log(max(mass[b], 1e-300))))
            links.append(link)
        best.append(scores)
        back.append(links)
    end, finish = levels * skip, None
    for level in range(levels):
        for b, score in enumerate(best[level]):
            if score + (levels - level - 1) * skip > end:
                end, finish = score + (levels - level - 1) * skip, (level, b)
    chosen = {}
    while finish is not None:
        chosen[finish[0]] = finish[1]
        finish = back[finish[0]][finish[1]]
    findings = []
    for level, (xy, mass) in enumerate(eligible):
        if level in chosen:
            findings.append(PeakFinding(xy[chosen[level]], float(mass[chosen[level]])))
        else:
            findings.append(PeakFinding(np.array([np.nan, np.nan]), float(options[level][1][0])))
    return findings
