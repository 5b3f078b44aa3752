"""Validation of the clinical read-outs against the synthetic generator's truth.

The truth is computed from the generator's own six points with the same functions
(`vertseg_tf.morphometry.records.truth_column`), so the errors here are those of the
six-point *placement* on an outline: ground-truth outlines give the method's own error,
predicted outlines the end-to-end error.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vertseg_tf.morphometry import ColumnMeasurement

__all__ = ["ERROR_KINDS", "compare_columns", "format_validation_table", "slip_agreement",
           "summarise"]

ERROR_KINDS = (
    ("height_mm", "height Ha/Hm/Hp (mm)"),
    ("endplate_angle_deg", "endplate angle (deg)"),
    ("segmental_angle_deg", "segmental angle (deg)"),
    ("lordosis_deg", "C3-C7 lordosis, Cobb (deg)"),
    ("posterior_tangent_deg", "C3-C7 posterior tangent (deg)"),
    ("listhesis_mm", "listhesis (mm)"),
)


def _pairs(truth: ColumnMeasurement, measured: ColumnMeasurement):
    by_label = {v.label: v for v in measured.vertebrae}
    return [(t, by_label[t.label]) for t in truth.vertebrae if t.label in by_label]


def compare_columns(pairs: Iterable[tuple[ColumnMeasurement, ColumnMeasurement]]) -> dict:
    """Absolute errors and grades of measured columns against their truth columns.

    Args:
        pairs: `(truth, measured)` per image; vertebrae are matched by label, a vertebra the
            measurement lacks is counted in `missing`.

    Returns:
        A dict: one list of absolute errors per `ERROR_KINDS` key (lengths in the columns'
        unit), `true_grades` and `measured_grades` (matched vertebrae), `missing`.
    """
    errors = {key: [] for key, _ in ERROR_KINDS}
    true_grades, measured_grades, missing = [], [], 0
    for truth, measured in pairs:
        matched = _pairs(truth, measured)
        missing += len(truth.vertebrae) - len(matched)
        for true, ours in matched:
            errors["height_mm"] += [abs(ours.ha - true.ha), abs(ours.hm - true.hm),
                                    abs(ours.hp - true.hp)]
            errors["endplate_angle_deg"] += [
                abs(ours.superior_endplate_deg - true.superior_endplate_deg),
                abs(ours.inferior_endplate_deg - true.inferior_endplate_deg)]
            true_grades.append(true.genant_grade)
            measured_grades.append(ours.genant_grade)
        segments = {(s.upper, s.lower): s for s in measured.segments}
        for true in truth.segments:
            ours = segments.get((true.upper, true.lower))
            if ours is not None:
                errors["segmental_angle_deg"].append(
                    abs(ours.segmental_angle_deg - true.segmental_angle_deg))
                errors["listhesis_mm"].append(abs(ours.listhesis - true.listhesis))
        if truth.lordosis_c3_c7_deg is not None and measured.lordosis_c3_c7_deg is not None:
            errors["lordosis_deg"].append(
                abs(measured.lordosis_c3_c7_deg - truth.lordosis_c3_c7_deg))
            errors["posterior_tangent_deg"].append(
                abs(measured.posterior_tangent_c3_c7_deg - truth.posterior_tangent_c3_c7_deg))
    return {**errors, "true_grades": true_grades, "measured_grades": measured_grades,
            "missing": missing}


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def summarise(compared: dict) -> dict:
    """Median, 90th percentile and count of every error kind; Cohen's kappa of the Genant
    grade (unweighted and linearly weighted, scikit-learn); sensitivity and specificity of
    grade >= 2."""
    from sklearn.metrics import cohen_kappa_score

    summary = {}
    for key, _ in ERROR_KINDS:
        values = np.asarray(compared[key], dtype=np.float64)
        summary[key] = {
            "median": float(np.median(values)) if len(values) else None,
            "p90": float(np.percentile(values, 90)) if len(values) else None,
            "n": len(values),
        }
    true = np.asarray(compared["true_grades"], dtype=int)
    measured = np.asarray(compared["measured_grades"], dtype=int)
    labels = [0, 1, 2, 3]
    agree = len(true) and len(np.union1d(true, measured)) > 1
    summary["kappa"] = float(cohen_kappa_score(true, measured, labels=labels)) if agree else None
    summary["kappa_linear"] = (float(cohen_kappa_score(true, measured, labels=labels,
                                                       weights="linear")) if agree else None)
    positive, predicted = true >= 2, measured >= 2
    summary["sensitivity_grade2"] = _rate(int((positive & predicted).sum()), int(positive.sum()))
    summary["specificity_grade2"] = _rate(int((~positive & ~predicted).sum()),
                                          int((~positive).sum()))
    summary["grade_counts_true"] = [int((true == g).sum()) for g in labels]
    summary["grade_counts_measured"] = [int((measured == g).sum()) for g in labels]
    summary["vertebrae"] = len(true)
    summary["missing"] = int(compared["missing"])
    return summary


def _cell(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_validation_table(summaries: dict[str, dict]) -> str:
    """A Markdown table, one column per outline source (e.g. "ground truth", "UNet-S"):
    median (90th percentile) of each error, kappa, sensitivity and specificity."""
    names = list(summaries)
    lines = ["| read-out | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for key, title in ERROR_KINDS:
        cells = [f"{_cell(s[key]['median'])} ({_cell(s[key]['p90'])})"
                 for s in summaries.values()]
        lines.append(f"| {title}, median (p90) | " + " | ".join(cells) + " |")
    rows = (("Genant grade, Cohen's kappa", "kappa"),
            ("Genant grade, linear-weighted kappa", "kappa_linear"),
            ("grade >= 2, sensitivity", "sensitivity_grade2"),
            ("grade >= 2, specificity", "specificity_grade2"))
    for title, key in rows:
        lines.append(f"| {title} | " + " | ".join(_cell(s[key], 3) for s in summaries.values())
                     + " |")
    counts = [f"{s['vertebrae']} ({s['grade_counts_true'][2] + s['grade_counts_true'][3]} "
              f"with grade >= 2, {s['missing']} not measured)" for s in summaries.values()]
    lines.append("| vertebrae | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def slip_agreement(slips: Iterable[tuple[float, float]]) -> dict:
    """How the listhesis read from the true six points follows the slip the generator applied.

    Args:
        slips: `(applied_slip_mm, listhesis_mm)` per segment (the upper level's stored
            `listhesis_mm` and the segment's listhesis from the truth column).

    Returns:
        For the slipped segments: their count, the median |listhesis - slip| and how many
        have the slip's sign; for the others: the median |listhesis|.
    """
    pairs = np.asarray(list(slips), dtype=np.float64).reshape(-1, 2)
    slipped, still = pairs[pairs[:, 0] != 0], pairs[pairs[:, 0] == 0]
    return {
        "slipped_segments": len(slipped),
        "median_abs_difference_mm": (float(np.median(np.abs(slipped[:, 1] - slipped[:, 0])))
                                     if len(slipped) else None),
        "same_sign": int((np.sign(slipped[:, 0]) == np.sign(slipped[:, 1])).sum()),
        "unslipped_segments": len(still),
        "unslipped_median_abs_mm": float(np.median(np.abs(still[:, 1]))) if len(still) else None,
    }
