import numpy as np
from scipy import stats

from benchmarks.shape_study import BASELINE, VARIANTS, ablation_table, curve_table


def run_row(errors, hard=np.nan, failure=0.0):
    return {"error_mean": float(np.mean(errors)), "hard_error_mean": hard,
            "fit_failure_percent": failure,
            "errors": {f"img/{k}": e for k, e in enumerate(errors)}}


UNET = {0: [1.0, 2.0, 3.0], 1: [2.0, 2.5, 3.5]}
UNET_S = {0: [0.5, 1.5, 3.5], 1: [2.5, 3.0, 3.0]}


def test_curve_table_gives_the_gap_per_seed_and_whether_its_sign_holds():
    runs = {}
    for seed in (0, 1):
        runs[f"w=0 (UNet)|{seed}|4"] = run_row(UNET[seed])
        runs[f"w=1 (paper)|{seed}|4"] = run_row(UNET_S[seed])
    table = curve_table({"seeds": [0, 1], "runs": runs}, [2, 4])
    lines = table.splitlines()
    assert len(lines) == 3  # epoch 2 is not measured yet: no row
    unet_means = [np.mean(UNET[0]), np.mean(UNET[1])]
    assert f"{np.mean(unet_means):.3f} ± {np.std(unet_means, ddof=1):.3f}" in lines[2]
    p0 = stats.ttest_rel(UNET[0], UNET_S[0]).pvalue
    assert f"+0.167 ({p0:.2g})" in lines[2] and "-0.167" in lines[2]
    assert lines[2].endswith("| no |")


def test_ablation_table_compares_every_variant_with_w_zero_in_each_seed():
    runs = {f"{BASELINE}|0|4": run_row(UNET[0], hard=2.0),
            f"{BASELINE}|1|4": run_row(UNET[1], hard=3.0),
            "w=3|0|4": run_row(UNET_S[0], hard=1.0, failure=10.0),
            "w=3|1|4": run_row(UNET_S[1], hard=2.0, failure=20.0),
            "w=0.1|0|4": run_row(UNET_S[0])}  # seed 1 missing: no row
    lines = ablation_table({"seeds": [0, 1], "runs": runs}, 4).splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == [f"| {BASELINE}", "| w=3"]
    assert "| 1.500 ± 0.707 | 15.00 ± 7.07 |" in lines[3]
    assert lines[2].endswith("| - |")
    assert set(VARIANTS) >= {BASELINE, "w=3", "balanced w", "E per pixel (w=1)"}
