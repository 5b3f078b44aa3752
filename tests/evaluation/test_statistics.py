import math

import numpy as np
import pytest
from scipy import stats

from vertseg_tf.errors import ConfigError
from vertseg_tf.evaluation.records import VertebraResult, read_records_csv, write_records_csv
from vertseg_tf.evaluation.statistics import (
    hard_subset,
    ordered_methods,
    paired_t_test,
    paper_comparisons,
    summarize,
    summarize_metric,
)


def result(method, index, error, accuracy=95.0, dice=0.9, conditions=()):
    return VertebraResult(
        method, f"img_{index // 5}", f"C{3 + index % 5}", conditions, accuracy, dice, error
    )


def test_summary_leaves_infinite_errors_out_of_mean_and_std_and_counts_them():
    summary = summarize_metric([1.0, 2.0, 6.0, math.inf])
    assert summary.n == 4
    assert summary.n_failed_empty == 1
    assert summary.mean == pytest.approx(3.0, abs=1e-12)
    # sample std of 1, 2, 6: deviations -2, -1, 3 -> (4 + 1 + 9) / 2 = 7
    assert summary.std == pytest.approx(math.sqrt(7.0), abs=1e-12)
    assert summary.median == pytest.approx(4.0, abs=1e-12)  # (2 + 6) / 2, inf sorts last


def test_summarize_per_method_with_fit_failure_percent():
    records = [result("UNet", i, e) for i, e in enumerate([0.5, 2.5, math.inf, 1.0])]
    records += [result("ASM-G", i, e) for i, e in enumerate([3.0, 2.5, 1.0, 1.0])]
    summary = summarize(records)
    assert list(summary) == ["ASM-G", "UNet"]
    assert summary["UNet"].fit_failure_percent == pytest.approx(50.0, abs=1e-12)
    assert summary["ASM-G"].fit_failure_percent == pytest.approx(50.0, abs=1e-12)
    assert summary["UNet"].metrics["error"].n_failed_empty == 1
    assert summary["UNet"].metrics["error"].mean == pytest.approx(4.0 / 3.0, abs=1e-12)


def test_paired_t_test_matches_scipy_and_the_formula():
    rng = np.random.default_rng(7)
    a = rng.normal(1.0, 0.3, 12)
    b = a - rng.normal(0.1, 0.2, 12)
    records = [result("UNet", i, float(v)) for i, v in enumerate(a)]
    # UNet-S records in a different order: pairing must go by (image_id, label).
    records += [result("UNet-S", i, float(b[i])) for i in reversed(range(12))]
    test = paired_t_test(records, "UNet", "UNet-S", "error")
    reference = stats.ttest_rel(a, b)
    assert test.n_pairs == 12 and test.n_dropped == 0
    assert test.t_statistic == pytest.approx(reference.statistic, abs=1e-9)
    assert test.p_value == pytest.approx(reference.pvalue, abs=1e-12)
    d = a - b
    assert test.t_statistic == pytest.approx(d.mean() / (d.std(ddof=1) / math.sqrt(12)), abs=1e-9)
    assert test.mean_difference == pytest.approx(d.mean(), abs=1e-12)


def test_paired_t_test_drops_pairs_with_infinite_values_and_unpaired_vertebrae():
    a = [1.0, 2.0, math.inf, 1.5, 1.2, 9.9]
    b = [0.8, 1.9, 1.0, math.inf, 1.0]
    records = [result("UNet", i, v) for i, v in enumerate(a)]
    records += [result("ASM-G", i, v) for i, v in enumerate(b)]
    test = paired_t_test(records, "UNet", "ASM-G", "error")
    assert test.n_pairs == 3 and test.n_dropped == 2
    reference = stats.ttest_rel([1.0, 2.0, 1.2], [0.8, 1.9, 1.0])
    assert test.p_value == pytest.approx(reference.pvalue, abs=1e-12)
    with pytest.raises(ConfigError):
        paired_t_test(records, "UNet", "UNet-S", "error")
    with pytest.raises(ConfigError):
        paired_t_test(records, "UNet", "ASM-G", "hausdorff")


def test_paper_comparisons_cover_present_methods_only():
    records = [
        result(m, i, 1.0 + i * 0.1 * k + k)
        for k, m in enumerate(["UNet", "UNet-S", "ASM-M"])
        for i in range(4)
    ]
    pairs = {(t.method_a, t.method_b) for t in paper_comparisons(records)}
    assert pairs == {("UNet", "UNet-S"), ("UNet", "ASM-M"), ("UNet-S", "ASM-M")}
    assert ordered_methods(["x", "UNet-S", "ASM-RF"]) == ["ASM-RF", "UNet-S", "x"]


def test_hard_subset_keeps_only_hard_vertebrae():
    records = [
        result("UNet", 0, 1.0, conditions=("implant",)),
        result("UNet", 1, 1.0, conditions=()),
        result("UNet", 2, 1.0, conditions=("unlisted",)),
        result("UNet", 3, 1.0, conditions=("osteoporosis", "fracture")),
    ]
    assert [r.label for r in hard_subset(records)] == ["C3", "C6"]


def test_records_csv_round_trip(tmp_path):
    records = [
        result("UNet-S", 0, math.inf, 97.25, 0.0, ("fracture", "implant")),
        result("ASM-G", 1, 1.0 / 3.0),
    ]
    path = write_records_csv(records, tmp_path / "per_vertebra.csv")
    assert read_records_csv(path) == records
    assert [p.name for p in tmp_path.iterdir()] == ["per_vertebra.csv"]
