import csv
import math

import numpy as np
import pytest
from scipy import stats

from vertseg_tf.evaluation.records import VertebraResult
from vertseg_tf.evaluation.seeds import (
    average_over_seeds,
    seed_tables,
    seed_verdict,
    write_seed_report,
)


def records_of(method, errors, hard=()):
    """One record per error; vertebra k is img_k/C3, hard when k is in `hard`."""
    return [
        VertebraResult(method, f"img_{k}", "C3", ("fracture",) if k in hard else (),
                       90.0 + k, 0.9, error)
        for k, error in enumerate(errors)
    ]


UNET = {0: [1.0, 2.0, 3.0, 4.0], 1: [2.0, 2.0, 2.0, 6.0]}
UNET_S = {0: [0.5, 1.5, 3.5, 2.0], 1: [1.0, 3.0, 2.5, 3.0]}


def per_seed_records():
    return {seed: records_of("UNet", UNET[seed], hard={3}) + records_of("UNet-S", UNET_S[seed],
                                                                         hard={3})
            for seed in (0, 1)}


def test_averaging_over_seeds_keeps_vertebrae_of_every_seed():
    per_seed = per_seed_records()
    per_seed[1] = per_seed[1][1:]  # UNet on img_0 is missing in seed 1
    averaged = {(r.method, r.image_id): r.error for r in average_over_seeds(per_seed)}
    assert ("UNet", "img_0") not in averaged
    assert averaged[("UNet", "img_3")] == 5.0 and averaged[("UNet-S", "img_0")] == 0.75
    assert math.isinf(average_over_seeds(
        {0: records_of("UNet", [1.0]), 1: records_of("UNet", [math.inf])})[0].error)


def test_verdict_tests_each_seed_and_the_seed_averaged_errors():
    verdict = seed_verdict(per_seed_records())
    for seed in (0, 1):
        expected = stats.ttest_rel(UNET[seed], UNET_S[seed])
        assert verdict.per_seed[seed].p_value == pytest.approx(expected.pvalue, rel=1e-9)
        assert verdict.per_seed[seed].mean_difference == pytest.approx(
            np.mean(np.subtract(UNET[seed], UNET_S[seed])))
    unet_mean = np.mean([UNET[0], UNET[1]], axis=0)
    unet_s_mean = np.mean([UNET_S[0], UNET_S[1]], axis=0)
    assert verdict.pooled.p_value == pytest.approx(
        stats.ttest_rel(unet_mean, unet_s_mean).pvalue, rel=1e-9)
    assert verdict.signs == [1, 1]  # UNet - UNet-S: 0.625 and 0.625 px
    assert "the same in every seed" in verdict.sentence()


def test_a_seed_with_the_other_sign_is_reported():
    per_seed = per_seed_records()
    per_seed[1] = records_of("UNet", UNET_S[1]) + records_of("UNet-S", UNET[1])
    assert seed_verdict(per_seed).signs == [1, -1]
    assert "NOT the same in every seed" in seed_verdict(per_seed).sentence()
    assert seed_verdict({0: records_of("UNet", [1.0, 2.0])}) is None


def test_tables_give_mean_and_sd_over_the_seeds_of_each_seeds_mean():
    tables = seed_tables(per_seed_records())
    header = tables["table_seeds_mean"].header
    row = dict(zip(header, next(r for r in tables["table_seeds_mean"].rows if r[0] == "UNet")))
    seed_means = [np.mean(UNET[0]), np.mean(UNET[1])]  # 2.5 and 3.0
    error_mean_at = header.index("Error mean (px)")
    assert row["Seeds"] == 2
    assert row["Error mean (px)"] == pytest.approx(np.mean(seed_means))
    assert tables["table_seeds_mean"].rows[0][error_mean_at + 1] == pytest.approx(
        np.std(seed_means, ddof=1))
    hard = dict(zip(header, next(r for r in tables["table_seeds_hard"].rows if r[0] == "UNet")))
    assert hard["Error mean (px)"] == pytest.approx(np.mean([4.0, 6.0]))
    per_seed = tables["table_per_seed"]
    assert [(r[0], r[1]) for r in per_seed.rows] == [(0, "UNet"), (0, "UNet-S"), (1, "UNet"),
                                                     (1, "UNet-S")]
    assert per_seed.rows[1][6] == pytest.approx(0.625) and per_seed.rows[0][6] is None


def test_report_folder_holds_the_tables_and_the_verdict(tmp_path):
    path = write_seed_report(per_seed_records(), tmp_path / "report", title="Two seeds",
                             notes=["model_selection = best"], command_line="vertseg-tf x")
    text = path.read_text()
    assert "## Does the paper's ordering hold?" in text and "model_selection = best" in text
    for name in ("table_seeds_mean", "table_seeds_hard", "table_per_seed"):
        with open(tmp_path / "report" / f"{name}.csv", newline="") as stream:
            assert len(list(csv.reader(stream))) >= 3
