import json

import numpy as np
import pytest
from scipy import stats

from benchmarks.shape_study import BASELINE, VARIANTS, ablation_table, curve_table


def run_row(errors, hard=np.nan, failure=0.0):
    return {"error_mean": float(np.mean(errors)), "hard_error_mean": hard,
            "fit_failure_percent": failure,
            "errors": {f"img/{k}": e for k, e in enumerate(errors)}}


UNET = {0: [1.0, 2.0, 3.0], 1: [2.0, 2.5, 3.5]}
UNET_S = {0: [0.5, 1.5, 3.5], 1: [2.5, 3.0, 3.2]}


def test_curve_table_gives_the_gap_per_seed_and_whether_its_sign_holds():
    runs = {}
    for seed in (0, 1):
        runs[f"w=0 (UNet)|{seed}|4"] = run_row(UNET[seed], hard=2.0 + seed)
        runs[f"w=1 (paper)|{seed}|4"] = run_row(UNET_S[seed], hard=1.0)
    table = curve_table({"seeds": [0, 1], "runs": runs}, [2, 4])
    lines = table.splitlines()
    assert len(lines) == 3  # epoch 2 is not measured yet: no row
    unet_means = [np.mean(UNET[0]), np.mean(UNET[1])]
    assert f"| 4 | {np.mean(unet_means):.3f} ± {np.std(unet_means, ddof=1):.3f} |" in lines[2]
    assert "| 2.500 ± 0.707 | 1.000 ± 0.000 |" in lines[2]  # the hard-case means
    p0 = stats.ttest_rel(UNET[0], UNET_S[0]).pvalue
    assert f"+0.167 ({p0:.2g})" in lines[2] and "-0.233" in lines[2]
    averaged = [np.mean([UNET[0], UNET[1]], axis=0), np.mean([UNET_S[0], UNET_S[1]], axis=0)]
    pooled = stats.ttest_rel(*averaged).pvalue
    gap = np.mean(averaged[0] - averaged[1])
    assert np.isfinite(pooled) and gap != 0
    assert lines[2].endswith(f"| no | {gap:+.3f} ({pooled:.2g}) |")


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


class FakeTraining:
    """Stands in for `train` and `_evaluate`: records each call and writes the run's config,
    so the study's bookkeeping (resume, skip, reuse across modes) is what is tested."""

    def __init__(self):
        self.calls = []

    def train(self, config, dataset_dir, run_dir, *, resume, overwrite, cache_dir):
        config_file = run_dir / "config.json"
        assert resume == config_file.is_file()
        if resume:
            assert json.loads(config_file.read_text())["epochs"] < config.epochs
        assert not overwrite
        run_dir.mkdir(parents=True, exist_ok=True)
        config_file.write_text(json.dumps({"epochs": config.epochs, "seed": config.seed}))
        self.calls.append((run_dir.name, config.epochs, resume, config))

    @staticmethod
    def evaluate(run_dir, patches):
        recorded = json.loads((run_dir / "config.json").read_text())
        errors = [1.0 / recorded["epochs"] + 0.01 * (recorded["seed"] + k) for k in range(3)]
        return {**run_row(errors, hard=errors[0]), "n_vertebrae": 3, "n_hard": 1}


@pytest.fixture
def fake_training(monkeypatch, tmp_path):
    import vertseg_tf.data.dataset
    import vertseg_tf.training
    from benchmarks import shape_study
    from vertseg_tf.data.patches import PatchSet

    fake = FakeTraining()
    monkeypatch.setattr(vertseg_tf.training, "train", fake.train)
    monkeypatch.setattr(vertseg_tf.training, "resolve_dataset",
                        lambda dataset, config, hard_share: tmp_path / "data")
    monkeypatch.setattr(vertseg_tf.data.dataset, "load_dataset", lambda path: None)
    monkeypatch.setattr(PatchSet, "from_dataset", classmethod(lambda cls, *a, **k: None))
    monkeypatch.setattr(shape_study, "_evaluate", fake.evaluate)
    return fake


def test_curve_resumes_each_seed_through_the_counts_and_a_rerun_trains_nothing(
    fake_training, tmp_path
):
    from benchmarks.shape_study import run

    out = tmp_path / "study"
    run("curve", out, seeds=2, epochs=(4, 2), max_train_patches=100, log=lambda line: None)
    assert [call[:3] for call in fake_training.calls] == [
        (f"{name}-seed{seed}", count, count == 4)
        for name in ("w-0--unet", "w-1--paper") for seed in (0, 1) for count in (2, 4)
    ]
    configs = [call[3] for call in fake_training.calls]
    assert {(c.method, c.seed) for c in configs} == {
        ("unet", 0), ("unet", 1), ("unet-s", 0), ("unet-s", 1)}
    assert {(c.model_selection, c.lr_schedule, c.max_train_patches) for c in configs} == {
        ("last", "constant", 100)}
    assert all(c.shape_weight == 1.0 for c in configs if c.method == "unet-s")
    table = (out / "curve.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in table[2:]] == ["| 2", "| 4"]

    fake_training.calls.clear()
    run("curve", out, seeds=2, epochs=(2, 4), max_train_patches=100, log=lambda line: None)
    assert fake_training.calls == []
    run("curve", out, seeds=2, epochs=(2, 4, 6), max_train_patches=100, log=lambda line: None)
    assert [call[1:3] for call in fake_training.calls] == [(6, True)] * 4


def test_ablation_in_the_curves_folder_reuses_its_runs_at_that_count(fake_training, tmp_path):
    from benchmarks.shape_study import run

    out = tmp_path / "study"
    run("curve", out, seeds=2, epochs=(2, 4), log=lambda line: None)
    fake_training.calls.clear()
    run("ablation", out, seeds=2, epochs=(4,), variants=[BASELINE, "w=1 (paper)", "w=3"],
        log=lambda line: None)
    assert [call[:3] for call in fake_training.calls] == [("w-3-seed0", 4, False),
                                                         ("w-3-seed1", 4, False)]
    assert {call[3].shape_weight for call in fake_training.calls} == {3.0}
    rows = (out / "ablation.md").read_text().splitlines()[2:]
    assert [line.split(" | ")[0] for line in rows] == [f"| {BASELINE}", "| w=1 (paper)", "| w=3"]
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1] and results["ablation_epochs"] == [4]


def test_ablation_runs_the_variants_in_the_order_given(fake_training, tmp_path):
    from benchmarks.shape_study import run

    run("ablation", tmp_path / "study", seeds=1, epochs=(2,),
        variants=["w=3", BASELINE, "w=0.1"], log=lambda line: None)
    assert [call[0] for call in fake_training.calls] == ["w-3-seed0", "w-0--unet-seed0",
                                                         "w-0-1-seed0"]
