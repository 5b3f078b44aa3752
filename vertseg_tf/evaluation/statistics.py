"""Summary statistics and paired t-tests over per-vertebra results (the paper's Tables 1-3).

Conventions:

- Median over all vertebrae of a method; an empty prediction's infinite error sorts last, as
  the worst result it is.
- Mean and std (sample std, ddof=1, as MATLAB's `std`) over the finite values only; the number
  of infinite errors left out is reported as `n_failed_empty`.
- Paired t-tests (`scipy.stats.ttest_rel`, two-sided) compare two methods on the vertebrae both
  were evaluated on, paired by (image_id, label); a pair with an infinite value is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from vertseg_tf.errors import ConfigError
from vertseg_tf.evaluation.metrics import FIT_FAILURE_THRESHOLD, fit_failure_rate
from vertseg_tf.evaluation.records import VertebraResult

__all__ = [
    "ASMS",
    "METHOD_ORDER",
    "METRICS",
    "NETWORKS",
    "MethodSummary",
    "MetricSummary",
    "PairedTest",
    "hard_subset",
    "ordered_methods",
    "paired_t_test",
    "paper_comparisons",
    "summarize",
    "summarize_metric",
]

METHOD_ORDER = ("ASM-RF", "ASM-M", "ASM-G", "UNet", "UNet-S")
"""The paper's table order; other method names follow, alphabetically."""
NETWORKS = ("UNet", "UNet-S")
ASMS = ("ASM-RF", "ASM-M", "ASM-G")
METRICS = ("pixel_accuracy", "dice", "error")
"""The `VertebraResult` fields the statistics cover."""


@dataclass(frozen=True)
class MetricSummary:
    """Median, mean and std of one metric of one method.

    Args:
        n: number of vertebrae.
        median: median over all n (infinite values included, they sort last).
        mean: mean over the finite values (NaN when there are none).
        std: sample std (ddof=1) over the finite values (NaN with fewer than two).
        n_failed_empty: number of infinite values (empty predictions) left out of mean and std.
    """

    n: int
    median: float
    mean: float
    std: float
    n_failed_empty: int


@dataclass(frozen=True)
class MethodSummary:
    """Everything Tables 1 and 2 report for one method.

    Args:
        method: the method's name.
        metrics: `MetricSummary` per name in `METRICS`.
        fit_failure_percent: share of vertebrae with error > `threshold`, in percent.
        threshold: the fit failure threshold in pixels.
    """

    method: str
    metrics: dict[str, MetricSummary]
    fit_failure_percent: float
    threshold: float


@dataclass(frozen=True)
class PairedTest:
    """A two-sided paired t-test of one metric between two methods on the same vertebrae.

    Args:
        method_a: first method.
        method_b: second method.
        metric: the metric name.
        n_pairs: pairs used.
        n_dropped: pairs dropped because a value was infinite.
        mean_difference: mean of (a - b) over the pairs.
        t_statistic: t of (a - b); NaN with fewer than two pairs or zero variance.
        p_value: two-sided p-value; NaN when t is.
    """

    method_a: str
    method_b: str
    metric: str
    n_pairs: int
    n_dropped: int
    mean_difference: float
    t_statistic: float
    p_value: float


def ordered_methods(methods: Iterable[str]) -> list[str]:
    """The distinct `methods` in the paper's table order (unknown names last, alphabetically).

    Example:
        >>> ordered_methods(["UNet-S", "custom", "ASM-G", "UNet"])
        ['ASM-G', 'UNet', 'UNet-S', 'custom']
    """
    present = set(methods)
    known = [m for m in METHOD_ORDER if m in present]
    return known + sorted(present - set(METHOD_ORDER))


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


def summarize_metric(values) -> MetricSummary:
    """Median, mean and std of one metric's values (see the module's conventions).

    Args:
        values: (N,) values; `inf` marks an empty prediction's error.

    Returns:
        The `MetricSummary`.

    Example:
        >>> summarize_metric([1.0, 3.0, float("inf")]).mean
        2.0
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ConfigError("summarize_metric needs at least one value")
    finite = values[np.isfinite(values)]
    return MetricSummary(
        n=int(values.size),
        median=float(np.median(values)),
        mean=float(finite.mean()) if finite.size else math.nan,
        std=float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
        n_failed_empty=int(values.size - finite.size),
    )


def summarize(
    records: Sequence[VertebraResult], threshold: float = FIT_FAILURE_THRESHOLD
) -> dict[str, MethodSummary]:
    """Per-method summaries of every metric and the fit failure rate (Tables 1 and 2).

    Args:
        records: per-vertebra results of any number of methods.
        threshold: fit failure threshold in pixels.

    Returns:
        `MethodSummary` per method, in table order.

    Example:
        >>> summarize(records)["UNet-S"].metrics["error"].median  # doctest: +SKIP
    """
    summaries = {}
    for method in ordered_methods(r.method for r in records):
        mine = [r for r in records if r.method == method]
        summaries[method] = MethodSummary(
            method=method,
            metrics={m: summarize_metric([getattr(r, m) for r in mine]) for m in METRICS},
            fit_failure_percent=100.0 * fit_failure_rate([r.error for r in mine], threshold),
            threshold=threshold,
        )
    return summaries


def paired_t_test(
    records: Sequence[VertebraResult], method_a: str, method_b: str, metric: str
) -> PairedTest:
    """Paired two-sided t-test of `metric` between two methods on their common vertebrae.

    Args:
        records: per-vertebra results containing both methods.
        method_a: first method (the difference is a - b).
        method_b: second method.
        metric: one of `METRICS`.

    Returns:
        The `PairedTest`.

    Example:
        >>> paired_t_test(records, "UNet", "UNet-S", "error").p_value  # doctest: +SKIP
    """
    _check_metric(metric)
    by_key = {}
    for method in (method_a, method_b):
        values = {r.key: getattr(r, metric) for r in records if r.method == method}
        if not values:
            raise ConfigError(f"no results for method {method!r}")
        by_key[method] = values
    common = sorted(set(by_key[method_a]) & set(by_key[method_b]))
    a = np.array([by_key[method_a][k] for k in common], dtype=np.float64)
    b = np.array([by_key[method_b][k] for k in common], dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    difference = a - b
    if a.size >= 2 and np.ptp(difference) > 0:
        result = stats.ttest_rel(a, b)
        t_statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        t_statistic = p_value = math.nan
    return PairedTest(
        method_a=method_a,
        method_b=method_b,
        metric=metric,
        n_pairs=int(a.size),
        n_dropped=int(keep.size - a.size),
        mean_difference=float(difference.mean()) if a.size else math.nan,
        t_statistic=t_statistic,
        p_value=p_value,
    )


def paper_comparisons(records: Sequence[VertebraResult]) -> list[PairedTest]:
    """The paper's tests, for the methods present: UNet vs UNet-S, each network vs each ASM.

    Every metric in `METRICS` is tested for every pair.

    Args:
        records: per-vertebra results.

    Returns:
        The tests: UNet vs UNet-S first, then network by network, ASM by ASM.

    Example:
        >>> [t.p_value for t in paper_comparisons(records) if t.metric == "error"]  # doctest: +SKIP
    """
    present = {r.method for r in records}
    pairs = []
    if set(NETWORKS) <= present:
        pairs.append(NETWORKS)
    pairs += [(n, a) for n in NETWORKS if n in present for a in ASMS if a in present]
    return [paired_t_test(records, a, b, m) for a, b in pairs for m in METRICS]


def hard_subset(records: Sequence[VertebraResult]) -> list[VertebraResult]:
    """The results on hard vertebrae (any of `HARD_CONDITIONS`), the paper's Table 3 subset.

    Example:
        >>> all(r.hard for r in hard_subset(records))  # doctest: +SKIP
        True
    """
    return [r for r in records if r.hard]
