"""Figures of a locator on a dataset split: centre error in mm, identification, misses."""

from __future__ import annotations

import numpy as np

from vertseg_tf.locate.heatmaps import SEGMENTED_LEVELS, channel_levels

__all__ = ["evaluate_locator", "found_centers", "locator_figures"]


def _identified(found_xy, label_index, truth_xy) -> bool:
    """The nearest true centre is the same level and closer than half the local spacing
    (the mean distance from the true centre to its annotated neighbours)."""
    present = np.flatnonzero(np.isfinite(truth_xy[:, 0]))
    distances = np.linalg.norm(truth_xy[present] - found_xy, axis=1)
    if present[int(np.argmin(distances))] != label_index:
        return False
    neighbours = [j for j in (label_index - 1, label_index + 1) if j in set(present)]
    if not neighbours:
        return True
    spacing = np.mean([np.linalg.norm(truth_xy[j] - truth_xy[label_index]) for j in neighbours])
    return bool(np.linalg.norm(found_xy - truth_xy[label_index]) < spacing / 2)


def locator_figures(found, truth, spacing_mm, levels=None) -> dict:
    """Per-level and overall figures from found and true centres.

    Args:
        found: (F, L, 2) found centres in pixels per film, NaN where a level was missing.
        truth: (F, L, 2) annotated centres, NaN where a level is not annotated.
        spacing_mm: (F,) pixel spacing per film.
        levels: the L level names (default `channel_levels`).

    Returns:
        {"levels": {label: {"n", "found", "missed", "false", "identified", "median_mm",
        "mean_mm", "p95_mm"}}, "all": the same over every level}; when `levels` go beyond
        `SEGMENTED_LEVELS`, also "segmented": the same over C3-C7 alone.
    """
    found, truth = np.asarray(found, float), np.asarray(truth, float)
    spacing = np.asarray(spacing_mm, float)[:, None]
    has_truth, has_found = np.isfinite(truth[..., 0]), np.isfinite(found[..., 0])
    errors = np.linalg.norm(found - truth, axis=-1) * spacing
    identified = np.zeros(has_truth.shape, bool)
    for f, l in zip(*np.nonzero(has_truth & has_found)):
        identified[f, l] = _identified(found[f, l], l, truth[f])

    def summary(columns) -> dict:
        hit = (has_truth & has_found)[:, columns]
        values = errors[:, columns][hit]
        n = int(has_truth[:, columns].sum())
        return {
            "n": n,
            "found": int(hit.sum()),
            "missed": int((has_truth & ~has_found)[:, columns].sum()),
            "false": int((~has_truth & has_found)[:, columns].sum()),
            "identified": int(identified[:, columns].sum()),
            "identification_rate": float(identified[:, columns].sum() / n) if n else None,
            "median_mm": float(np.median(values)) if len(values) else None,
            "mean_mm": float(np.mean(values)) if len(values) else None,
            "p95_mm": float(np.percentile(values, 95)) if len(values) else None,
        }

    levels = channel_levels(truth.shape[1]) if levels is None else levels
    figures = {"levels": {label: summary([k]) for k, label in enumerate(levels)},
               "all": summary(list(range(len(levels))))}
    segmented = [k for k, label in enumerate(levels) if label in SEGMENTED_LEVELS]
    if len(segmented) < len(levels):
        figures["segmented"] = summary(segmented)
    return figures


def found_centers(located, levels=None) -> np.ndarray:
    """(L, 2) centres of a locator's `LocatedLevel`s, NaN where a level is missing; with
    `levels`, one row per level named there (NaN for one the locator does not report)."""
    centers = {level.label: level.center for level in located if level.found}
    labels = [level.label for level in located] if levels is None else levels
    return np.array([centers.get(label, [np.nan, np.nan]) for label in labels],
                    dtype=np.float64).reshape(-1, 2)


def evaluate_locator(locator, dataset, split: str = "test", limit: int | None = None) -> dict:
    """Run `locator` on every film of `split` of a loaded native dataset; `locator_figures`
    plus "films" and "seconds_per_film"."""
    import time

    from vertseg_tf.data.images import read_image
    from vertseg_tf.locate.heatmaps import level_centers

    records = dataset.split(split)[:limit]
    found, truth, spacing, levels = [], [], [], None
    started = time.monotonic()
    for record in records:
        image, _ = read_image(dataset.image_path(record))
        located = locator.locate(image)
        levels = [level.label for level in located]
        found.append(found_centers(located))
        truth.append(level_centers(record, levels))
        spacing.append((record.pixel_spacing_mm or (1.0, 1.0))[0])
    seconds = time.monotonic() - started
    figures = locator_figures(np.array(found), np.array(truth), spacing, levels)
    return {**figures, "films": len(records), "split": split,
            "seconds_per_film": seconds / max(1, len(records))}
