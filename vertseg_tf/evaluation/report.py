"""The evaluation report: the paper's Tables 1-3 and Figures 6-9 from per-vertebra results.

`write_report` turns a list of `VertebraResult` (any subset of the paper's five methods, plus
any others) into a folder:

```
report.md                  the report, numbers in the text, the paper's values beside ours
per_vertebra.csv           every method x vertebra result
table1_masks.{md,csv}      pixel accuracy and Dice: median, mean, std, p-value
table2_shape.{md,csv}      point-to-curve error: median, mean, std, p-value; fit failure %
table3_hard.{md,csv}       the hard-case subset (any clinical condition), UNet vs UNet-S
paired_tests.{md,csv}      every paired t-test (UNet vs UNet-S, each network vs each ASM)
figure6_error_cdf.png      cumulative distribution of point-to-curve errors
figure7_boxplots.png       box plots of the three metrics
figure8_qualitative.png    overlays for an easy case, an implant, a fracture, an artefact
                           and the worst failure, every method side by side (needs samples)
figure9_hard_cases.png     hard cases, UNet vs UNet-S (needs samples)
```

The folder is built under a temporary name beside `out_dir` and renamed when complete, so a
report is never half written. Figures use matplotlib's Agg canvas through `Figure` objects;
pyplot and the global backend are left alone.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from vertseg_tf import __version__
from vertseg_tf.atomic import atomic_dir, atomic_path, require_new_folder, write_text_atomic
from vertseg_tf.data.dataset import HARD_CONDITIONS
from vertseg_tf.errors import ConfigError
from vertseg_tf.evaluation.metrics import FIT_FAILURE_THRESHOLD
from vertseg_tf.evaluation.records import (
    PredictionSet,
    QualitativeSamples,
    VertebraResult,
    write_records_csv,
)
from vertseg_tf.evaluation.statistics import (
    ASMS,
    METRICS,
    NETWORKS,
    MethodSummary,
    hard_subset,
    ordered_methods,
    paired_t_test,
    paper_comparisons,
    summarize,
)

__all__ = [
    "FIGURE8_CATEGORIES",
    "PAPER_HARD_VERTEBRAE",
    "PAPER_TABLE1",
    "PAPER_TABLE1_P_VALUES",
    "PAPER_TABLE2",
    "PAPER_TABLE2_P_VALUE",
    "PAPER_TABLE3",
    "PAPER_TEST_VERTEBRAE",
    "PredictionSet",
    "QualitativeSamples",
    "Table",
    "build_tables",
    "ordering_statements",
    "overlay",
    "select_figure8_cases",
    "write_report",
]

# The paper's published numbers (Al Arif, Knapp, Slabaugh 2017), for comparison only.
PAPER_TEST_VERTEBRAE = 792
PAPER_HARD_VERTEBRAE = 52
PAPER_TABLE1 = {
    # method: {metric: (median, mean, std)}; pixel accuracy in percent.
    "ASM-RF": {"pixel_accuracy": (95.09, 90.77, 8.98), "dice": (0.881, 0.774, 0.220)},
    "ASM-M": {"pixel_accuracy": (95.09, 93.48, 4.92), "dice": (0.900, 0.877, 0.073)},
    "ASM-G": {"pixel_accuracy": (95.34, 93.75, 4.48), "dice": (0.906, 0.883, 0.066)},
    "UNet": {"pixel_accuracy": (97.71, 96.69, 3.04), "dice": (0.952, 0.938, 0.048)},
    "UNet-S": {"pixel_accuracy": (97.92, 97.01, 2.79), "dice": (0.957, 0.944, 0.044)},
}
PAPER_TABLE1_P_VALUES = {"pixel_accuracy": 7.17e-13, "dice": 7.76e-13}
"""The paper's paired t-test p-values, UNet vs UNet-S."""
PAPER_TABLE2 = {
    # method: (error median, error mean, error std in pixels, fit failure percent)
    "ASM-RF": (1.82, 2.59, 1.85, 43.43),
    "ASM-M": (1.54, 1.88, 1.05, 32.70),
    "ASM-G": (1.38, 1.73, 0.99, 26.89),
    "UNet": (0.77, 1.11, 1.29, 8.59),
    "UNet-S": (0.78, 0.999, 0.67, 6.06),
}
PAPER_TABLE2_P_VALUE = 0.0043
"""The paper's paired t-test p-value of the point-to-curve error, UNet vs UNet-S."""
PAPER_TABLE3 = {
    # method: (pixel accuracy percent, Dice, point-to-curve error), means over the hard subset.
    "UNet": (94.01, 0.91, 1.61),
    "UNet-S": (95.21, 0.93, 1.24),
}

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


@dataclass(frozen=True)
class Table:
    """A report table: written as `<name>.md` and `<name>.csv`.

    Args:
        name: file stem, e.g. "table1_masks".
        caption: one line saying what the table shows.
        header: column names.
        rows: cells; floats are formatted with `digits` in Markdown and in full in the CSV.
        digits: per column, how Markdown shows a float: decimals (int), "p" (a p-value),
            "g" (shortest form) or None (the cell as it is).
    """

    name: str
    caption: str
    header: tuple[str, ...]
    rows: list[tuple]
    digits: tuple

    def markdown(self) -> str:
        lines = [
            "| " + " | ".join(self.header) + " |",
            "|" + "|".join("---" for _ in self.header) + "|",
        ]
        for row in self.rows:
            cells = [_format_cell(v, d) for v, d in zip(row, self.digits)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        for row in self.rows:
            writer.writerow(
                ["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row]
            )
        return buffer.getvalue()


def _format_cell(value, digits) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf"
        if digits == "p":
            return _format_p(value)
        if digits == "g":
            return f"{value:g}"
        return f"{value:.{digits}f}"
    return str(value)


def _format_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def _reference_method(methods: Sequence[str]) -> str | None:
    """The method every row is tested against: the shape-aware network, else the plain one."""
    return next((m for m in reversed(NETWORKS) if m in methods), None)


def build_tables(
    records: Sequence[VertebraResult], threshold: float = FIT_FAILURE_THRESHOLD
) -> dict[str, Table]:
    """Tables 1-3 and the table of all paired tests, for the methods present.

    The p-value column of Tables 1 and 2 is the paired t-test of the row's method against
    the reference method (UNet-S when present, else UNet); the reference row has none.

    Args:
        records: per-vertebra results.
        threshold: fit failure threshold in pixels.

    Returns:
        Tables by name: "table1_masks", "table2_shape", "table3_hard", "paired_tests".

    Example:
        >>> print(build_tables(records)["table2_shape"].markdown())  # doctest: +SKIP
    """
    if not records:
        raise ConfigError("no per-vertebra results to report")
    summaries = summarize(records, threshold)
    methods = list(summaries)
    reference = _reference_method(methods)

    def p_against_reference(method, metric):
        if reference is None or method == reference:
            return None
        return paired_t_test(records, method, reference, metric).p_value

    vs = f" (vs {reference})" if reference else ""
    table1_rows = []
    for method, s in summaries.items():
        row = [method, s.metrics["pixel_accuracy"].n]
        for metric in ("pixel_accuracy", "dice"):
            m = s.metrics[metric]
            row += [m.median, m.mean, m.std, p_against_reference(method, metric)]
        table1_rows.append(tuple(row))
    table1 = Table(
        "table1_masks",
        "Table 1: mask prediction, pixel-wise accuracy (%) and Dice similarity coefficient.",
        (
            "Method",
            "n",
            "pA median",
            "pA mean",
            "pA std",
            f"pA p-value{vs}",
            "DSC median",
            "DSC mean",
            "DSC std",
            f"DSC p-value{vs}",
        ),
        table1_rows,
        (None, None, 2, 2, 2, "p", 3, 3, 3, "p"),
    )

    table2_rows = []
    for method, s in summaries.items():
        m = s.metrics["error"]
        table2_rows.append(
            (
                method,
                m.n,
                m.median,
                m.mean,
                m.std,
                p_against_reference(method, "error"),
                s.fit_failure_percent,
                m.n_failed_empty,
            )
        )
    table2 = Table(
        "table2_shape",
        f"Table 2: shape prediction, point-to-curve error (pixels) and fit failure "
        f"(error > {threshold:g} px, %). Mean and std leave out empty predictions "
        f"(counted in the last column).",
        (
            "Method",
            "n",
            "Error median",
            "Error mean",
            "Error std",
            f"Error p-value{vs}",
            "Fit failure (%)",
            "Empty predictions",
        ),
        table2_rows,
        (None, None, 3, 3, 3, "p", 2, None),
    )

    hard = hard_subset(records)
    hard_methods = [m for m in ordered_methods(r.method for r in hard) if m in NETWORKS]
    hard_methods = hard_methods or ordered_methods(r.method for r in hard)
    hard_pool = [r for r in hard if r.method in hard_methods]
    hard_reference = _reference_method(hard_methods)
    table3_rows = []
    for method, s in (summarize(hard_pool, threshold) if hard_pool else {}).items():
        row = [method, s.metrics["error"].n]
        for metric in METRICS:
            p = (
                None
                if hard_reference is None or method == hard_reference
                else paired_t_test(hard_pool, method, hard_reference, metric).p_value
            )
            row += [s.metrics[metric].mean, p]
        table3_rows.append(tuple(row))
    hvs = f" (vs {hard_reference})" if hard_reference else ""
    table3 = Table(
        "table3_hard",
        "Table 3: hard cases (vertebrae with any clinical condition), means; "
        "error mean leaves out empty predictions.",
        (
            "Method",
            "n hard",
            "pA mean",
            f"pA p-value{hvs}",
            "Dice mean",
            f"Dice p-value{hvs}",
            "Error mean",
            f"Error p-value{hvs}",
        ),
        table3_rows,
        (None, None, 2, "p", 3, "p", 3, "p"),
    )

    tests = paper_comparisons(records)
    paired = Table(
        "paired_tests",
        "Paired two-sided t-tests on the same vertebrae (pairs with an infinite value dropped).",
        ("Method A", "Method B", "Metric", "Pairs", "Dropped", "Mean A - B", "t", "p-value"),
        [
            (
                t.method_a,
                t.method_b,
                t.metric,
                t.n_pairs,
                t.n_dropped,
                t.mean_difference,
                t.t_statistic,
                t.p_value,
            )
            for t in tests
        ],
        (None, None, None, None, None, 4, 3, "p"),
    )
    return {t.name: t for t in (table1, table2, table3, paired)}


def ordering_statements(records: Sequence[VertebraResult]) -> list[str]:
    """Plain sentences on whether the paper's ordering (UNet-S <= UNet < ASMs in mean
    point-to-curve error) holds, each with the means and the paired t-test p-value.

    Args:
        records: per-vertebra results.

    Returns:
        One sentence per comparison the present methods allow (none with a single method).

    Example:
        >>> for line in ordering_statements(records): print(line)  # doctest: +SKIP
    """
    summaries = summarize(records)
    present = set(summaries)
    claims = []
    if set(NETWORKS) <= present:
        claims.append(("UNet-S", "UNet", "<="))
    claims += [(n, a, "<") for n in NETWORKS if n in present for a in ASMS if a in present]
    statements = []
    for better, worse, relation in claims:
        mean_better = summaries[better].metrics["error"].mean
        mean_worse = summaries[worse].metrics["error"].mean
        empty = [m for m, mean in ((better, mean_better), (worse, mean_worse)) if math.isnan(mean)]
        if empty:
            statements.append(
                f"{better} {relation} {worse} in mean point-to-curve error: cannot be checked, "
                f"every prediction of {' and '.join(empty)} is empty (fit failure 100 %)."
            )
            continue
        test = paired_t_test(records, better, worse, "error")
        holds = mean_better <= mean_worse if relation == "<=" else mean_better < mean_worse
        significance = (
            "not testable"
            if math.isnan(test.p_value)
            else ("significant" if test.p_value < 0.05 else "not significant") + " at the 5 % level"
        )
        statements.append(
            f"{better} {relation} {worse} in mean point-to-curve error: "
            f"{'matches the paper' if holds else 'does NOT match the paper'} "
            f"({mean_better:.3f} vs {mean_worse:.3f} px; paired t-test p = "
            f"{_format_p(test.p_value)} over {test.n_pairs} vertebrae, {significance})."
        )
    return statements


def _save_figure(figure: Figure, path: Path) -> None:
    """Write a PNG through a temporary file in the same folder and a rename."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")


def _method_colours(methods: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {m: palette(i % 10) for i, m in enumerate(methods)}


def _figure6_error_cdf(records, methods, path: Path) -> None:
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


def _figure7_boxplots(records, methods, path: Path) -> None:
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


def _note_figure(path: Path, title: str, note: str) -> None:
    figure = Figure(figsize=(6.0, 1.6))
    axes = figure.add_subplot()
    axes.axis("off")
    axes.text(0.5, 0.6, title, ha="center", va="center", fontsize=11, weight="bold")
    axes.text(0.5, 0.25, note, ha="center", va="center", fontsize=9, wrap=True)
    _save_figure(figure, path)


def _figure8_qualitative(records, samples, path: Path) -> dict[str, int | None]:
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


def _figure9_hard_cases(records, samples, path: Path) -> list[int]:
    """Hard vertebrae where the two networks' errors differ most (either direction)."""
    masks = {p.method: p.masks for p in samples.predictions}
    title = "Figure 9: hard cases, UNet vs UNet-S"
    if not set(NETWORKS) <= set(masks):
        _note_figure(path, title, "needs predictions of both UNet and UNet-S")
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
        _note_figure(path, title, "no hard vertebra (any clinical condition) in this test set")
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


def _paper_tables() -> dict[str, str]:
    """The paper's Tables 1-3 as Markdown, labelled as its published numbers."""
    p1 = PAPER_TABLE1_P_VALUES
    table1 = Table(
        "paper_table1",
        "",
        (
            "Method",
            "pA median",
            "pA mean",
            "pA std",
            "pA p-value",
            "DSC median",
            "DSC mean",
            "DSC std",
            "DSC p-value",
        ),
        [
            (
                m,
                *v["pixel_accuracy"],
                p1["pixel_accuracy"] if m == "UNet" else None,
                *v["dice"],
                p1["dice"] if m == "UNet" else None,
            )
            for m, v in PAPER_TABLE1.items()
        ],
        (None, "g", "g", "g", "p", "g", "g", "g", "p"),
    )
    table2 = Table(
        "paper_table2",
        "",
        ("Method", "Error median", "Error mean", "Error std", "Error p-value", "Fit failure (%)"),
        [
            (m, med, mean, std, PAPER_TABLE2_P_VALUE if m == "UNet" else None, ff)
            for m, (med, mean, std, ff) in PAPER_TABLE2.items()
        ],
        (None, "g", "g", "g", "p", "g"),
    )
    table3 = Table(
        "paper_table3",
        "",
        ("Method", "pA mean", "Dice mean", "Error mean"),
        [(m, *v) for m, v in PAPER_TABLE3.items()],
        (None, "g", "g", "g"),
    )
    return {
        "table1_masks": (
            f"The paper's published Table 1 ({PAPER_TEST_VERTEBRAE} test vertebrae; its p-values"
            " compare UNet with UNet-S):\n\n" + table1.markdown()
        ),
        "table2_shape": (
            f"The paper's published Table 2 ({PAPER_TEST_VERTEBRAE} test vertebrae; p-value UNet"
            " vs UNet-S):\n\n" + table2.markdown()
        ),
        "table3_hard": (
            f"The paper's published Table 3 ({PAPER_HARD_VERTEBRAE} hard vertebrae):\n\n"
            + table3.markdown()
        ),
    }


def _summary_lines(summaries: dict[str, MethodSummary]) -> list[str]:
    lines = []
    for method, s in summaries.items():
        pa, dsc, err = (s.metrics[m] for m in METRICS)
        lines.append(
            f"- **{method}**: pixel accuracy {pa.mean:.2f} % mean (median {pa.median:.2f} %), "
            f"Dice {dsc.mean:.3f} mean (median {dsc.median:.3f}), point-to-curve error "
            f"{_format_cell(err.mean, 3)} px mean (median {_format_cell(err.median, 3)} px), "
            f"fit failure "
            f"{s.fit_failure_percent:.2f} %, empty predictions {err.n_failed_empty} of {err.n}."
        )
    return lines


def _hard_case_lines(records, threshold) -> list[str]:
    hard = [r for r in hard_subset(records) if r.method in NETWORKS]
    if not hard:
        return ["No hard vertebra (any clinical condition) was evaluated by UNet or UNet-S."]
    summaries = summarize(hard, threshold)
    lines = [
        f"On the hard vertebrae (Table 3), {method}: pixel accuracy "
        f"{s.metrics['pixel_accuracy'].mean:.2f} %, Dice {s.metrics['dice'].mean:.3f}, "
        f"point-to-curve error {_format_cell(s.metrics['error'].mean, 3)} px (means)."
        for method, s in summaries.items()
    ]
    if set(NETWORKS) <= set(summaries):
        unet, unet_s = (summaries[m].metrics["error"].mean for m in NETWORKS)
        paper_unet, paper_unet_s = (PAPER_TABLE3[m][2] for m in NETWORKS)
        if unet > 0 and not math.isnan(unet_s):
            lines.append(
                f"UNet-S changes the hard-case mean error by {100 * (unet_s - unet) / unet:+.1f} %"
                f" relative to UNet (paper: {100 * (paper_unet_s - paper_unet) / paper_unet:+.1f}"
                " %)."
            )
    return lines


def _compose_markdown(
    records, tables, figure_notes, *, title, command_line, paper_reference, threshold, notes=()
) -> str:
    summaries = summarize(records, threshold)
    methods = list(summaries)
    vertebrae = {r.key for r in records}
    hard = {r.key for r in records if r.hard}
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"# {title}", "", f"Generated by vertseg-tf {__version__} on {when}."]
    if command_line:
        out += ["", "Command:", "", "```bash", command_line, "```"]
    if notes:
        out += ["", *(f"- {note}" for note in notes)]
    out += [
        "",
        "## Summary",
        "",
        (
            f"{len(vertebrae)} test vertebrae ({len(hard)} hard cases with a clinical condition), "
            f"methods: {', '.join(methods)}. Every result is in [per_vertebra.csv](per_vertebra.csv)."
        ),
        "",
        *_summary_lines(summaries),
        "",
        " ".join(_hard_case_lines(records, threshold)),
        "",
        "## Does the paper's ordering hold?",
        "",
        "The paper finds UNet-S <= UNet < ASMs in point-to-curve error.",
        "",
    ]
    statements = ordering_statements(records)
    out += [f"- {s}" for s in statements] or [
        "- Fewer than two comparable methods: nothing to check."
    ]
    sections = (
        ("table1_masks", "Table 1: mask prediction"),
        ("table2_shape", "Table 2: shape prediction"),
        ("table3_hard", "Table 3: hard cases"),
        ("paired_tests", "Paired t-tests"),
    )
    paper = _paper_tables() if paper_reference else {}
    for name, heading in sections:
        table = tables[name]
        out += ["", f"## {heading}", "", table.caption, ""]
        out += [table.markdown() if table.rows else "No rows: no such vertebrae or methods.\n"]
        out += [f"CSV: [{name}.csv]({name}.csv)"]
        if name in paper:
            out += ["", paper[name]]
    figures = (
        (
            "figure6_error_cdf.png",
            (
                "Figure 6: cumulative distribution of point-to-curve errors "
                f"(the dotted line is the {threshold:g} px fit failure threshold; empty predictions "
                "never reach the curve)."
            ),
        ),
        (
            "figure7_boxplots.png",
            "Figure 7: box plots of pixel accuracy, Dice and point-to-curve error.",
        ),
        (
            "figure8_qualitative.png",
            (
                "Figure 8: qualitative results, true positive green, "
                "false positive blue, false negative red."
            ),
        ),
        ("figure9_hard_cases.png", "Figure 9: hard cases, UNet vs UNet-S."),
    )
    out += ["", "## Figures"]
    for file, caption in figures:
        out += ["", f"![{caption}]({file})", "", caption]
        if file in figure_notes:
            out += ["", figure_notes[file]]
    out += [
        "",
        "## Conventions",
        "",
        (
            "- Metrics are computed per vertebra on the 64x64 test patches; ASM contours are "
            "rasterised like the ground truth (filled at pixel centres)."
        ),
        "- Pixel accuracy is in percent (Eq. 7); Dice of two empty masks is 1 (Eq. 6).",
        (
            "- Point-to-curve error: mean exact distance from the predicted mask's marching-squares "
            "contour (level 0.5, all components) to the ground-truth outline, in patch pixels. An "
            "empty prediction has an infinite error: it counts as a fit failure and in the median, "
            "and is left out of the mean and std (counted as 'empty predictions')."
        ),
        f"- Fit failure: error > {threshold:g} px. Std is the sample std (ddof = 1).",
        (
            "- Paired t-tests (two-sided, scipy.stats.ttest_rel) pair the methods on (image, "
            "vertebra); pairs with an infinite value are dropped."
        ),
    ]
    if paper_reference:
        out += [
            (
                "- The paper's numbers are its published values (Al Arif, Knapp, Slabaugh 2017, "
                f"{PAPER_TEST_VERTEBRAE} test vertebrae of real radiographs), shown for reference; "
                "ours come from the data this report was run on."
            ),
        ]
    return "\n".join(out) + "\n"


def _figure_notes(samples, written_cases, hard_cases) -> dict[str, str]:
    notes = {}
    if samples is None:
        text = "Not drawn: the report was written without patch images and predicted masks."
        return {"figure8_qualitative.png": text, "figure9_hard_cases.png": text}
    rows = []
    for category, k in written_cases.items():
        if k is None:
            rows.append(f"{category}: no such vertebra in this test set")
        else:
            rows.append(f"{category}: {samples.image_ids[k]} {samples.labels[k]}")
    notes["figure8_qualitative.png"] = "Rows: " + "; ".join(rows) + "."
    if hard_cases:
        shown = ", ".join(f"{samples.image_ids[k]} {samples.labels[k]}" for k in hard_cases)
        notes["figure9_hard_cases.png"] = (
            f"The hard vertebrae where the two networks' errors differ most: {shown}."
        )
    else:
        notes["figure9_hard_cases.png"] = (
            "Not drawn: it needs hard vertebrae and predictions of both UNet and UNet-S."
        )
    return notes


def write_report(
    records: Sequence[VertebraResult],
    out_dir,
    *,
    title: str,
    samples: QualitativeSamples | None = None,
    command_line: str | None = None,
    paper_reference: bool = True,
    threshold: float = FIT_FAILURE_THRESHOLD,
    notes: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Write the full evaluation report folder (see the module docstring for its files).

    The folder is built under a temporary name and renamed into place when complete. An
    existing non-empty `out_dir` is replaced only with `overwrite`; otherwise it is refused
    before anything is written.

    Args:
        records: per-vertebra results of any subset of methods.
        out_dir: the report folder to create.
        title: the report's heading.
        samples: patch images and every method's masks, for Figures 8 and 9; without them
            those figures show a note instead.
        command_line: the command that produced the results, quoted in the report.
        paper_reference: show the paper's published Tables 1-3 beside ours.
        threshold: fit failure threshold in pixels.
        notes: lines listed under the command (how the models were trained and chosen).
        overwrite: replace an existing non-empty `out_dir`.

    Returns:
        The path of `report.md`.

    Raises:
        ConfigError: `out_dir` is not empty and `overwrite` is False, or not writable.

    Example:
        >>> write_report(records, "runs/report", title="vertseg-tf demo", samples=samples)  # doctest: +SKIP
    """
    out_dir = require_new_folder(out_dir, overwrite=overwrite)
    records = list(records)
    tables = build_tables(records, threshold)
    methods = ordered_methods(r.method for r in records)
    with atomic_dir(out_dir, replace=overwrite) as staging:
        write_records_csv(records, staging / "per_vertebra.csv")
        for table in tables.values():
            write_text_atomic(table.markdown(), staging / f"{table.name}.md")
            write_text_atomic(table.csv(), staging / f"{table.name}.csv")
        _figure6_error_cdf(records, methods, staging / "figure6_error_cdf.png")
        _figure7_boxplots(records, methods, staging / "figure7_boxplots.png")
        cases, hard_cases = {}, []
        if samples is None:
            note = "needs the patch images and predicted masks (samples)"
            _note_figure(staging / "figure8_qualitative.png", "Figure 8: qualitative results", note)
            _note_figure(staging / "figure9_hard_cases.png", "Figure 9: hard cases", note)
        else:
            cases = _figure8_qualitative(records, samples, staging / "figure8_qualitative.png")
            hard_cases = _figure9_hard_cases(records, samples, staging / "figure9_hard_cases.png")
        markdown = _compose_markdown(
            records,
            tables,
            _figure_notes(samples, cases, hard_cases),
            title=title,
            command_line=command_line,
            paper_reference=paper_reference,
            threshold=threshold,
            notes=notes,
        )
        write_text_atomic(markdown, staging / "report.md")
    return out_dir / "report.md"
