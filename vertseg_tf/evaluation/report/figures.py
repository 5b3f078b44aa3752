"""The report's figures: Figures 6-9 (error CDF, box plots, qualitative overlays, hard cases).

Figures use matplotlib's Agg canvas through `Figure` objects; pyplot and the global backend
are left alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from vertseg_tf.atomic import atomic_path
from vertseg_tf.data.dataset import HARD_CONDITIONS
from vertseg_tf.evaluation.metrics import FIT_FAILURE_THRESHOLD
from vertseg_tf.evaluation.records import QualitativeSamples, VertebraResult
from vertseg_tf.evaluation.statistics import METRICS, NETWORKS, ordered_methods

__all__ = [
    "FIGURE8_CATEGORIES",
    "figure6_error_cdf",
    "figure7_boxplots",
    "figure8_qualitative",
    "figure9_hard_cases",
    "note_figure",
    "overlay",
    "select_figure8_cases",
]

FIGURE8_CATEGORIES = ("easy", "implant", "fracture", "artefact", "worst failure")


_METRIC_TITLES = {
    "pixel_accuracy": "Pixel accuracy (%)",
    "dice": "Dice",
    "error": "Point-to-curve error (px)",
}


_OVERLAY_COLOURS = {"tp": (0.0, 0.8, 0.0), "fp": (0.0, 0.3, 1.0), "fn": (1.0, 0.0, 0.0)}


_OVERLAY_ALPHA = 0.45


_CDF_MAX_ERROR = 5.0


_FIGURE9_CASES = 4


def _save_figure(figure: Figure, path: Path) -> None:
    """Write a PNG through a temporary file in the same folder and a rename."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")


def _method_colours(methods: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {m: palette(i % 10) for i, m in enumerate(methods)}


def figure6_error_cdf(records, methods, path: Path) -> None:
    figure = Figure(figsize=(6.0, 4.2))
    axes = figure.add_subplot()
    colours = _method_colours(methods)
    grid = np.linspace(0.0, _CDF_MAX_ERROR, 501)
    for method in methods:
        errors = np.sort([r.error for r in records if r.method == method])
        share = np.searchsorted(errors, grid, side="right") / len(errors)
        axes.plot(grid, 100.0 * share, label=method, color=colours[method], linewidth=1.8)
    axes.axvline(FIT_FAILURE_THRESHOLD, color="0.5", linestyle=":", linewidth=1)
    axes.set_xlim(0.0, _CDF_MAX_ERROR)
    axes.set_ylim(0.0, 100.0)
    axes.set_xlabel("Point-to-curve error (pixels)")
    axes.set_ylabel("Vertebrae with error <= x (%)")
    axes.set_title("Figure 6: cumulative distribution of point-to-curve errors")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    _save_figure(figure, path)


def figure7_boxplots(records, methods, path: Path) -> None:
    figure = Figure(figsize=(4.0 * len(METRICS), 4.2))
    for k, metric in enumerate(METRICS):
        axes = figure.add_subplot(1, len(METRICS), k + 1)
        data = []
        for method in methods:
            values = np.array([getattr(r, metric) for r in records if r.method == method])
            data.append(values[np.isfinite(values)])
        axes.boxplot(data, tick_labels=methods)
        axes.set_title(_METRIC_TITLES[metric])
        axes.tick_params(axis="x", labelrotation=30)
        axes.grid(axis="y", alpha=0.3)
    figure.suptitle("Figure 7: box plots (empty predictions left out of the error panel)")
    _save_figure(figure, path)


def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return np.repeat(scaled[..., None], 3, axis=-1)


def overlay(image: np.ndarray, gt_mask: np.ndarray, pred_mask: np.ndarray) -> np.ndarray:
    """RGB overlay of a prediction on a patch: true positive green, false positive blue, false
    negative red, blended over the min-max scaled grey image.

    Args:
        image: (H, W) patch image.
        gt_mask: (H, W) ground-truth mask.
        pred_mask: (H, W) predicted mask.

    Returns:
        (H, W, 3) float64 RGB in [0, 1].

    Example:
        >>> overlay(np.zeros((4, 4)), np.ones((4, 4)), np.zeros((4, 4)))[0, 0]  # missed: red
        array([0.45, 0.  , 0.  ])
    """
    rgb = _grey(image)
    gt = np.asarray(gt_mask) != 0
    pred = np.asarray(pred_mask) != 0
    for name, where in (("tp", gt & pred), ("fp", ~gt & pred), ("fn", gt & ~pred)):
        colour = np.array(_OVERLAY_COLOURS[name])
        rgb[where] = (1.0 - _OVERLAY_ALPHA) * rgb[where] + _OVERLAY_ALPHA * colour
    return rgb


def _case_scores(records, samples: QualitativeSamples, methods) -> np.ndarray:
    """Per patch: mean error over the methods, an empty prediction counted as the patch size."""
    cap = float(max(np.asarray(samples.images).shape[1:]))
    errors = _error_lookup(records)
    scores = np.full(len(samples.images), np.nan)
    for k, key in enumerate(zip(samples.image_ids, samples.labels)):
        key = (str(key[0]), str(key[1]))
        values = [errors[(m, key)] for m in methods if (m, key) in errors]
        if values:
            scores[k] = float(np.mean(np.minimum(values, cap)))
    return scores


def select_figure8_cases(
    records: Sequence[VertebraResult], samples: QualitativeSamples
) -> dict[str, int | None]:
    """Patch index per `FIGURE8_CATEGORIES` entry (None when the test set has no such case).

    easy: the healthy vertebra with the lowest mean error over the methods; implant, fracture,
    artefact: the vertebra with that condition whose mean error is the median of its group
    (a typical case); worst failure: the highest mean error (an empty prediction counts as an
    error of the patch size).

    Args:
        records: per-vertebra results (their errors rank the cases).
        samples: the patches and the methods whose errors are averaged.

    Returns:
        Category -> patch index into `samples`, or None.

    Example:
        >>> select_figure8_cases(records, samples)["worst failure"]  # doctest: +SKIP
    """
    methods = [p.method for p in samples.predictions]
    scores = _case_scores(records, samples, methods)
    scored = ~np.isnan(scores)
    hard = np.array([any(c in HARD_CONDITIONS for c in cs) for cs in samples.conditions])
    chosen: dict[str, int | None] = {}
    easy = np.flatnonzero(scored & ~hard)
    chosen["easy"] = int(easy[np.argmin(scores[easy])]) if easy.size else None
    for condition in ("implant", "fracture", "artefact"):
        group = np.flatnonzero(scored & np.array([condition in cs for cs in samples.conditions]))
        if group.size:
            ordered = group[np.argsort(scores[group], kind="stable")]
            chosen[condition] = int(ordered[(len(ordered) - 1) // 2])
        else:
            chosen[condition] = None
    chosen["worst failure"] = int(np.nanargmax(scores)) if scored.any() else None
    return chosen


def _error_lookup(records) -> dict:
    return {(r.method, r.key): r.error for r in records}


def _show(axes, rgb, title, contour=None) -> None:
    axes.imshow(rgb, interpolation="nearest")
    if contour is not None:
        closed = np.vstack([contour, contour[:1]])
        axes.plot(closed[:, 0], closed[:, 1], color="yellow", linewidth=1.0)
    axes.set_title(title, fontsize=8)
    axes.set_xticks([])
    axes.set_yticks([])


def note_figure(path: Path, title: str, note: str) -> None:
    figure = Figure(figsize=(6.0, 1.6))
    axes = figure.add_subplot()
    axes.axis("off")
    axes.text(0.5, 0.6, title, ha="center", va="center", fontsize=11, weight="bold")
    axes.text(0.5, 0.25, note, ha="center", va="center", fontsize=9, wrap=True)
    _save_figure(figure, path)


def figure8_qualitative(records, samples, path: Path) -> dict[str, int | None]:
    cases = select_figure8_cases(records, samples)
    by_method = {p.method: p for p in samples.predictions}
    predictions = [by_method[m] for m in ordered_methods(by_method)]
    errors = _error_lookup(records)
    columns = 2 + len(predictions)
    figure = Figure(figsize=(1.6 * columns, 1.75 * len(cases) + 0.5))
    for row, (category, k) in enumerate(cases.items()):
        if k is None:
            axes = figure.add_subplot(len(cases), 1, row + 1)
            axes.axis("off")
            axes.text(
                0.5,
                0.5,
                f"{category}: no such vertebra in this test set",
                ha="center",
                va="center",
                fontsize=9,
            )
            continue
        key = (str(samples.image_ids[k]), str(samples.labels[k]))
        first = figure.add_subplot(len(cases), columns, row * columns + 1)
        _show(first, _grey(samples.images[k]), f"{category}\n{key[0]} {key[1]}")
        _show(
            figure.add_subplot(len(cases), columns, row * columns + 2),
            overlay(samples.images[k], samples.gt_masks[k], samples.gt_masks[k]),
            "ground truth",
            np.asarray(samples.gt_contours[k]),
        )
        for c, prediction in enumerate(predictions):
            error = errors.get((prediction.method, key), math.nan)
            _show(
                figure.add_subplot(len(cases), columns, row * columns + 3 + c),
                overlay(samples.images[k], samples.gt_masks[k], prediction.masks[k]),
                f"{prediction.method}\nerror {error:.2f} px",
            )
    figure.suptitle(
        "Figure 8: true positive (green), false positive (blue), false negative (red)", fontsize=10
    )
    _save_figure(figure, path)
    return cases


def figure9_hard_cases(records, samples, path: Path) -> list[int]:
    """Hard vertebrae where the two networks' errors differ most (either direction)."""
    masks = {p.method: p.masks for p in samples.predictions}
    title = "Figure 9: hard cases, UNet vs UNet-S"
    if not set(NETWORKS) <= set(masks):
        note_figure(path, title, "needs predictions of both UNet and UNet-S")
        return []
    errors = _error_lookup(records)
    cap = float(max(np.asarray(samples.images).shape[1:]))
    candidates = []
    for k, (image_id, label, conditions) in enumerate(
        zip(samples.image_ids, samples.labels, samples.conditions)
    ):
        key = (str(image_id), str(label))
        if any(c in HARD_CONDITIONS for c in conditions) and all(
            (m, key) in errors for m in NETWORKS
        ):
            gap = abs(min(errors[("UNet", key)], cap) - min(errors[("UNet-S", key)], cap))
            candidates.append((gap, k))
    chosen = [k for _, k in sorted(candidates, key=lambda item: -item[0])[:_FIGURE9_CASES]]
    if not chosen:
        note_figure(path, title, "no hard vertebra (any clinical condition) in this test set")
        return []
    figure = Figure(figsize=(1.9 * 4, 1.9 * len(chosen) + 0.5))
    for row, k in enumerate(chosen):
        key = (str(samples.image_ids[k]), str(samples.labels[k]))
        conditions = ", ".join(samples.conditions[k])
        _show(
            figure.add_subplot(len(chosen), 4, 4 * row + 1),
            _grey(samples.images[k]),
            f"original\n{key[0]} {key[1]} ({conditions})",
        )
        _show(
            figure.add_subplot(len(chosen), 4, 4 * row + 2),
            overlay(samples.images[k], samples.gt_masks[k], samples.gt_masks[k]),
            "ground truth",
            np.asarray(samples.gt_contours[k]),
        )
        for c, method in enumerate(NETWORKS):
            _show(
                figure.add_subplot(len(chosen), 4, 4 * row + 3 + c),
                overlay(samples.images[k], samples.gt_masks[k], masks[method][k]),
                f"{method}\nerror {errors[(method, key)]:.2f} px",
            )
    figure.suptitle(title, fontsize=10)
    _save_figure(figure, path)
    return chosen
