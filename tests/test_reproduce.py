import csv
import json

import numpy as np
import pytest

from vertseg_tf.cli import main
from vertseg_tf.data.synthetic import generate
from vertseg_tf.errors import ConfigError
from vertseg_tf.reproduce import METHOD_NAMES, reproduce

TABLES = ("table1_masks", "table2_shape", "table3_hard", "paired_tests")
FIGURES = ("figure6_error_cdf", "figure7_boxplots", "figure8_qualitative", "figure9_hard_cases")


@pytest.mark.slow
def test_smoke_reproduction_writes_every_table_and_figure_and_resumes(tmp_path, monkeypatch):
    import cv2

    monkeypatch.setenv("VERTSEG_TF_CACHE", str(tmp_path / "cache"))
    dataset = tmp_path / "hard"
    # Every image carries a condition, so Table 3 and Figure 9 have hard cases to show.
    generate(8, 0, dataset, size="small", hard_fraction=1.0, progress=False)
    out = tmp_path / "smoke"
    assert (
        main(["reproduce", "--preset", "smoke", "--dataset", str(dataset), "--out", str(out)]) == 0
    )

    report = out / "report"
    for table in TABLES:
        assert (report / f"{table}.md").read_text().count("|") > 0
        assert len((report / f"{table}.csv").read_text().splitlines()) >= 2
    for figure in FIGURES:
        image = cv2.imread(str(report / f"{figure}.png"), cv2.IMREAD_GRAYSCALE)
        assert image is not None and image.size > 0
        assert np.ptp(image) > 0, f"{figure} is blank"
    methods = {
        line.split(",")[0] for line in (report / "per_vertebra.csv").read_text().splitlines()[1:]
    }
    assert methods == set(METHOD_NAMES.values())

    state = json.loads((out / "reproduce.json").read_text())
    assert all(step["done"] for step in state["steps"].values())
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    lines = []
    reproduce("smoke", out, dataset=dataset, log=lines.append)
    assert len(lines) == len(state["steps"]) and all("skipped" in line for line in lines)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps

    with pytest.raises(ConfigError, match="choose another --out"):
        reproduce("demo", out, dataset=dataset, log=lines.append)


@pytest.mark.slow
def test_automatic_reproduction_adds_the_locator_and_clicked_against_located_tables(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("VERTSEG_TF_CACHE", str(tmp_path / "cache"))
    dataset = tmp_path / "v2"
    generate(6, 2, dataset, size="small", version=2, split_ratio=(2, 1), progress=False)
    out = tmp_path / "auto"
    assert main(["reproduce", "--preset", "smoke", "--dataset", str(dataset), "--out", str(out),
                 "--automatic"]) == 0
    report = out / "report"
    text = (report / "report.md").read_text()
    assert "## Automatic mode" in text and "Table 1" in text
    images = [image for image in json.loads((dataset / "dataset.json").read_text())["images"]
              if image["split"] == "test"]
    figures = json.loads((report / "locator.json").read_text())
    # the shipped locator looks for C2-T1; C3-C7 are also summed apart
    assert figures["all"]["n"] == sum(len(image["vertebrae"]) + len(image["level_centers"])
                                      for image in images)
    assert figures["segmented"]["n"] == 5 * len(images)
    with (report / "automatic_segmentation.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(row["network"], row["centres"]) for row in rows} == {
        (name, centres) for name in ("UNet", "UNet-S") for centres in ("clicked", "located")}
    assert {row["n"] for row in rows if row["vertebrae"] == "all"} == {str(5 * len(images))}
    assert "evaluate+automatic" in json.loads((out / "reproduce.json").read_text())["steps"]


@pytest.mark.slow
def test_smoke_reproduction_over_two_seeds_writes_per_seed_and_aggregated_tables(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("VERTSEG_TF_CACHE", str(tmp_path / "cache"))
    dataset = tmp_path / "data"
    generate(8, 0, dataset, size="small", hard_fraction=1.0, progress=False)
    out = tmp_path / "seeds"
    arguments = ["reproduce", "--preset", "smoke", "--dataset", str(dataset), "--out", str(out),
                 "--seeds", "2", "--model-selection", "best"]
    assert main(arguments) == 0

    for seed in (0, 1):
        assert (out / "runs" / f"seed-{seed}" / "unet-s" / "model.keras").is_file()
        assert (out / "seeds" / f"seed-{seed}" / "table2_shape.csv").is_file()
    assert not (out / "runs" / "seed-1" / "asm-g").exists()  # the ASMs are fitted once
    report = out / "report"
    text = (report / "seeds.md").read_text()
    assert "over 2 seeds" in text and "model_selection = best" in text
    assert "UNet-S <= UNet in mean point-to-curve error over 2 seeds" in text
    with open(report / "table_per_seed.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert sorted({row["Seed"] for row in rows}) == ["0", "1"]
    assert {row["Method"] for row in rows} == set(METHOD_NAMES.values())
    with open(report / "table_seeds_mean.csv", newline="") as stream:
        means = {row["Method"]: row for row in csv.DictReader(stream)}
    seed_errors = [float(next(r for r in rows if r["Seed"] == s and r["Method"] == "UNet")
                         ["Error mean (px)"]) for s in ("0", "1")]
    assert float(means["UNet"]["Error mean (px)"]) == pytest.approx(np.mean(seed_errors))
    assert means["ASM-G"]["sd over seeds"] in ("0.0", "")  # the same ASM in both seeds

    lines = []
    reproduce("smoke", out, dataset=dataset, seeds=2, model_selection="best", log=lines.append)
    assert all("skipped" in line for line in lines)
    with pytest.raises(ConfigError, match="choose another --out"):
        reproduce("smoke", out, dataset=dataset, seeds=3, log=lines.append)


def test_a_folder_of_one_generator_version_is_not_reused_for_another(tmp_path):
    from vertseg_tf.reproduce import STATE_FILE

    out = tmp_path / "demo"
    out.mkdir()
    recorded = {"preset": "smoke", "dataset": None, "generator_version": 1, "hard_share": None,
                "steps": {}}
    (out / STATE_FILE).write_text(json.dumps(recorded), encoding="utf-8")
    with pytest.raises(ConfigError, match="generator_version"):
        reproduce("smoke", out, generator_version=2, log=lambda line: None)
    assert sorted(p.name for p in out.iterdir()) == [STATE_FILE]


def test_the_demo_asks_for_half_hard_test_vertebrae_and_a_folder_records_it(tmp_path):
    from vertseg_tf.reproduce import REPRODUCE_PRESETS, STATE_FILE

    assert REPRODUCE_PRESETS["demo"].hard_share == 0.5
    out = tmp_path / "demo"
    out.mkdir()
    recorded = {"preset": "demo", "dataset": None, "generator_version": 2, "hard_share": None,
                "steps": {}}
    (out / STATE_FILE).write_text(json.dumps(recorded), encoding="utf-8")
    with pytest.raises(ConfigError, match="'hard_share': 0.5"):
        reproduce("demo", out, log=lambda line: None)


def test_the_demo_on_generator_v1_asks_for_no_hard_share(tmp_path):
    """Version 1 has no hard-share option: the demo's 0.5 must not reach its generator."""
    from vertseg_tf.reproduce import STATE_FILE

    out = tmp_path / "demo-v1"
    out.mkdir()
    # A folder of other settings, so that the refusal shows what this call asks for.
    recorded = {"preset": "demo", "dataset": None, "generator_version": 1, "hard_share": 0.5,
                "model_selection": "best", "steps": {}}
    (out / STATE_FILE).write_text(json.dumps(recorded), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not \{.*'generator_version': 1, 'hard_share': None"):
        reproduce("demo", out, generator_version=1, log=lambda line: None)
