"""`vertseg-tf bench`: the JSON report holds every schema key, each a measurement or a reason."""

import json
import math
from datetime import datetime
from pathlib import Path

import pytest

from vertseg_tf import cli
from vertseg_tf.errors import ConfigError

REPOSITORY = Path(__file__).resolve().parents[2]


def _load_report(path: Path) -> dict:
    report = json.loads(path.read_text())
    assert report["format"] == "vertseg-bench/1"
    assert list(report["results"]) == list(report["schema"])
    for key, spec in report["schema"].items():
        assert spec["unit"] and spec["description"], key
    datetime.fromisoformat(report["date"])
    machine = report["machine"]
    assert machine["cpu_model"] and machine["cpu_cores"] >= 1
    assert machine["tensorflow"] and machine["keras"]
    return report


def _measured(report: dict) -> dict:
    measured = {}
    for key, value in report["results"].items():
        if isinstance(value, dict):
            assert isinstance(value["not_measured"], str) and value["not_measured"], key
        else:
            assert isinstance(value, float | int) and math.isfinite(value), key
            measured[key] = value
    return measured


def test_only_one_section_marks_the_others_not_selected(tmp_path, capfd):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--only", "synthetic", "--out", str(out)]) == 0
    report = _load_report(out)
    measured = _measured(report)
    synthetic_keys = [key for key in report["schema"] if key.startswith("synthetic.")]
    assert sorted(measured) == sorted(synthetic_keys)
    assert all(measured[key] > 0 for key in synthetic_keys)
    for key, value in report["results"].items():
        if key not in measured:
            assert value == {"not_measured": "section not selected (--only)"}
    # Rates come from the timed rendering of images of known size, per size.
    details = report["details"]["synthetic"]["results"]
    assert measured["synthetic.full.images_per_cpu_second"] == (
        details["full"]["render_and_png_images_per_cpu_second"]
    )
    printed = capfd.readouterr().out
    assert "synthetic.full.images_per_cpu_second" in printed and f"wrote {out}" in printed


def test_unknown_section_is_one_line_error(tmp_path, capfd):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--only", "synthetic,gpu", "--out", str(out)]) == 1
    error = capfd.readouterr().err.strip()
    assert error.count("\n") == 0 and "gpu" in error and "train_step" in error
    assert not out.exists()


def test_missing_benchmarks_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="source checkout"):
        cli.bench.benchmarks_checkout(tmp_path)


@pytest.mark.slow
def test_quick_suite_writes_every_schema_key(tmp_path, capfd):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--out", str(out)]) == 0
    report = _load_report(out)
    measured = _measured(report)
    results = report["results"]

    # Everything but the train-step variants the quick mode does not time is measured.
    expected_missing = {key for key in report["schema"] if key.startswith("train_step.")
                        and (".demo." in key or ".paper." in key or "_xla_" in key)}
    assert set(report["schema"]) - set(measured) == expected_missing
    assert all(value > 0 for value in measured.values())

    # Ratios are the quotients of the raw figures written beside them.
    smoke = "train_step.smoke."
    assert results[smoke + "ratio_shape_graph_vs_logloss"] == pytest.approx(
        results[smoke + "shape_graph_s_per_step"] / results[smoke + "logloss_s_per_step"],
        rel=1e-12)
    assert results[smoke + "ratio_shape_py_function_vs_logloss"] == pytest.approx(
        results[smoke + "shape_py_function_s_per_step"] / results[smoke + "logloss_s_per_step"],
        rel=1e-12)
    assert results["pipeline.ratio_tfdata_vs_training"] == pytest.approx(
        results["pipeline.tfdata_patches_per_second"]
        / results["pipeline.training_patches_per_second"], rel=1e-12)
    for kind in ("saved_model", "tflite_float32", "tflite_int8"):
        assert results[f"inference.{kind}.ratio_vs_keras"] == pytest.approx(
            results[f"inference.{kind}.patches_per_second"]
            / results["inference.keras.patches_per_second"], rel=1e-12)

    # Medians of real timings: the raw step times differ from one another.
    raw = report["details"]["train_step"]["train_step"]["smoke"]["raw_seconds"]
    assert len({time for times in raw.values() for time in times}) > 1
    # The paper model's 25.9M parameters and optimizer slots cost more memory than smoke's.
    assert results["memory.paper.training_increase_mb"] > results[
        "memory.smoke.training_increase_mb"]
    # 45 patches per vertebra of the quick set's images.
    pipeline = report["details"]["pipeline"]
    assert pipeline["patches"] == 45 * pipeline["vertebrae"]
    printed = capfd.readouterr().out
    assert all(key in printed for key in report["schema"])
