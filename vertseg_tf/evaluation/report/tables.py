"""The report's tables: Tables 1-3 and the paired tests, as Markdown and CSV.

`Table` is a plain record; `build_tables` fills Tables 1-3 and the table of all paired tests
from per-vertebra results, `ordering_statements` says in words whether the paper's ordering
holds.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from vertseg_tf.errors import ConfigError
from vertseg_tf.evaluation.metrics import FIT_FAILURE_THRESHOLD
from vertseg_tf.evaluation.records import VertebraResult
from vertseg_tf.evaluation.statistics import (
    ASMS,
    METRICS,
    NETWORKS,
    hard_subset,
    ordered_methods,
    paired_t_test,
    paper_comparisons,
    summarize,
)

__all__ = ["Table", "build_tables", "format_cell", "format_p", "ordering_statements"]


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
            cells = [format_cell(v, d) for v, d in zip(row, self.digits)]
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


def format_cell(value, digits) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf"
        if digits == "p":
            return format_p(value)
        if digits == "g":
            return f"{value:g}"
        return f"{value:.{digits}f}"
    return str(value)


def format_p(p: float) -> str:
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
    reference = _reference_method(list(summaries))

    def p_against_reference(method, metric):
        if reference is None or method == reference:
            return None
        return paired_t_test(records, method, reference, metric).p_value

    vs = f" (vs {reference})" if reference else ""
    tables = (
        _table1(summaries, p_against_reference, vs),
        _table2(summaries, p_against_reference, vs, threshold),
        _table3(records, threshold),
        _paired_tests_table(records),
    )
    return {table.name: table for table in tables}


def _table1(summaries: dict, p_against_reference, vs: str) -> Table:
    rows = []
    for method, s in summaries.items():
        row = [method, s.metrics["pixel_accuracy"].n]
        for metric in ("pixel_accuracy", "dice"):
            m = s.metrics[metric]
            row += [m.median, m.mean, m.std, p_against_reference(method, metric)]
        rows.append(tuple(row))
    return Table(
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
        rows,
        (None, None, 2, 2, 2, "p", 3, 3, 3, "p"),
    )


def _table2(summaries: dict, p_against_reference, vs: str, threshold: float) -> Table:
    rows = []
    for method, s in summaries.items():
        m = s.metrics["error"]
        rows.append(
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
    return Table(
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
        rows,
        (None, None, 3, 3, 3, "p", 2, None),
    )


def _table3(records: Sequence[VertebraResult], threshold: float) -> Table:
    """The hard subset, networks only when any network is present."""
    hard = hard_subset(records)
    methods = [m for m in ordered_methods(r.method for r in hard) if m in NETWORKS]
    methods = methods or ordered_methods(r.method for r in hard)
    pool = [r for r in hard if r.method in methods]
    reference = _reference_method(methods)
    rows = []
    for method, s in (summarize(pool, threshold) if pool else {}).items():
        row = [method, s.metrics["error"].n]
        for metric in METRICS:
            p = (
                None
                if reference is None or method == reference
                else paired_t_test(pool, method, reference, metric).p_value
            )
            row += [s.metrics[metric].mean, p]
        rows.append(tuple(row))
    vs = f" (vs {reference})" if reference else ""
    return Table(
        "table3_hard",
        "Table 3: hard cases (vertebrae with any clinical condition), means; "
        "error mean leaves out empty predictions.",
        (
            "Method",
            "n hard",
            "pA mean",
            f"pA p-value{vs}",
            "Dice mean",
            f"Dice p-value{vs}",
            "Error mean",
            f"Error p-value{vs}",
        ),
        rows,
        (None, None, 2, "p", 3, "p", 3, "p"),
    )


def _paired_tests_table(records: Sequence[VertebraResult]) -> Table:
    return Table(
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
            for t in paper_comparisons(records)
        ],
        (None, None, None, None, None, 4, 3, "p"),
    )


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
            f"{format_p(test.p_value)} over {test.n_pairs} vertebrae, {significance})."
        )
    return statements
