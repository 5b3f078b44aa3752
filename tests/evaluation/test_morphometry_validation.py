import numpy as np
import pytest

from vertseg_tf.evaluation.morphometry import (
    compare_columns,
    format_validation_table,
    slip_agreement,
    summarise,
)
from vertseg_tf.morphometry import measure_column


def column(heights, shift=0.0):
    """A column of boxes 16 mm deep (1 px = 1 mm) with the given heights, C3 moved by shift."""
    outlines, y = [], 0.0
    for k, height in enumerate(heights):
        x0 = -shift if k == 0 else 0.0
        outlines.append(np.array([[x0, y], [x0 + 16, y], [x0 + 16, y + height],
                                  [x0, y + height]]))
        y += height + 5.0
    return measure_column(["C3", "C4", "C5", "C6", "C7"][: len(heights)], outlines=outlines,
                          facing="left")


def test_errors_of_a_known_perturbation():
    truth = column([12.0, 12.0, 12.0])
    measured = column([12.5, 12.0, 11.0], shift=0.75)
    compared = compare_columns([(truth, measured)])
    np.testing.assert_allclose(sorted(compared["height_mm"]), sorted([0.5] * 3 + [0.0] * 3
                                                                     + [1.0] * 3))
    np.testing.assert_allclose(compared["listhesis_mm"], [0.75, 0.0])
    np.testing.assert_allclose(compared["endplate_angle_deg"], 0.0, atol=1e-9)
    assert compared["missing"] == 0 and compared["lordosis_deg"] == []


def test_kappa_sensitivity_and_specificity_against_a_numpy_reference():
    true = [0, 0, 0, 2, 3, 2, 1, 0]
    measured = [0, 0, 2, 2, 2, 0, 1, 0]
    summary = summarise({"true_grades": true, "measured_grades": measured, "missing": 1,
                         **{key: [] for key in ("height_mm", "endplate_angle_deg",
                                                "segmental_angle_deg", "lordosis_deg",
                                                "posterior_tangent_deg", "listhesis_mm")}})
    table = np.zeros((4, 4))
    for a, b in zip(true, measured):
        table[a, b] += 1
    observed = np.trace(table) / table.sum()
    chance = (table.sum(0) * table.sum(1)).sum() / table.sum() ** 2
    assert summary["kappa"] == pytest.approx((observed - chance) / (1 - chance))
    assert summary["sensitivity_grade2"] == pytest.approx(2 / 3)  # grades 2, 3, 2 -> 2, 2, 0
    assert summary["specificity_grade2"] == pytest.approx(4 / 5)
    assert summary["height_mm"]["median"] is None and summary["missing"] == 1
    assert "Cohen's kappa" in format_validation_table({"a": summary})


def test_slip_agreement():
    agreement = slip_agreement([(2.0, 2.5), (-3.0, -2.0), (4.0, -0.5), (0.0, 0.25), (0.0, -0.75)])
    assert agreement["slipped_segments"] == 3 and agreement["same_sign"] == 2
    assert agreement["median_abs_difference_mm"] == pytest.approx(1.0)
    assert agreement["unslipped_median_abs_mm"] == pytest.approx(0.5)
