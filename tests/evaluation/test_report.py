import csv
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.image import imread
from scipy import stats

from vertseg_tf.errors import ConfigError
from vertseg_tf.evaluation.metrics import contour_to_mask
from vertseg_tf.evaluation.records import VertebraResult, evaluate_patch_set, read_records_csv
from vertseg_tf.evaluation.report import (
    PAPER_TABLE2,
    build_tables,
    ordering_statements,
    select_figure8_cases,
    write_report,
)

SIZE = 16
METHODS = ("ASM-RF", "ASM-M", "ASM-G", "UNet", "UNet-S")
TABLES = ("table1_masks", "table2_shape", "table3_hard", "paired_tests")
FIGURES = (
    "figure6_error_cdf.png",
    "figure7_boxplots.png",
    "figure8_qualitative.png",
    "figure9_hard_cases.png",
)


def square(x0, y0, side):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    if side:
        mask[y0 : y0 + side, x0 : x0 + side] = 1
    return mask


def outline(x0, y0, side):
    lo_x, lo_y, hi_x, hi_y = x0 - 0.5, y0 - 0.5, x0 + side - 0.5, y0 + side - 0.5
    return np.array([(lo_x, lo_y), (hi_x, lo_y), (hi_x, hi_y), (lo_x, hi_y)])


@pytest.fixture(scope="module")
def synthetic():
    """12 vertebrae (3 images x C3-C6), squares as truth, each method a noisy copy.

    The shift per vertebra grows with the method's index, so ASMs err more than networks;
    ASM-RF's first prediction is empty. No vertebra has an artefact.
    """
    rng = np.random.default_rng(0)
    n = 12
    image_ids = [f"img_{k // 4}" for k in range(n)]
    labels = [f"C{3 + k % 4}" for k in range(n)]
    conditions = [()] * n
    conditions[1] = ("implant",)
    conditions[5] = ("fracture", "osteoporosis")
    conditions[9] = ("degenerative",)
    corners = [(int(rng.integers(3, 6)), int(rng.integers(3, 6))) for _ in range(n)]
    gt_masks = np.stack([square(x, y, 7) for x, y in corners])
    gt_contours = [outline(x, y, 7) for x, y in corners]
    images = rng.normal(0.2, 0.05, (n, SIZE, SIZE)) + 0.6 * gt_masks
    mask_predictions, contour_predictions = {}, {}
    for m, method in enumerate(METHODS):
        shift = 4 - m
        moves = [(int(rng.integers(0, shift + 1)), -int(rng.integers(0, 2))) for _ in range(n)]
        if method in ("ASM-M", "ASM-G"):  # ASMs predict contours
            contour_predictions[method] = [
                outline(x + dx, y + dy, 7) for (x, y), (dx, dy) in zip(corners, moves)
            ]
            continue
        masks = np.stack([square(x + dx, y + dy, 7) for (x, y), (dx, dy) in zip(corners, moves)])
        if method == "ASM-RF":
            masks[0] = 0
        mask_predictions[method] = masks
    patches = SimpleNamespace(
        images=images,
        masks=gt_masks,
        contours=gt_contours,
        image_ids=image_ids,
        labels=labels,
        conditions=conditions,
    )
    records, samples = evaluate_patch_set(patches, mask_predictions, contour_predictions)
    # The ASM contours run along pixel edges, so their rasterised masks are the squares.
    asm_g = next(p.masks for p in samples.predictions if p.method == "ASM-G")
    np.testing.assert_array_equal(
        asm_g[3], contour_to_mask(contour_predictions["ASM-G"][3], (SIZE, SIZE))
    )
    assert asm_g[3].sum() == 49
    return records, samples


def read_csv(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def assert_png_has_content(path):
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 10 and pixels.shape[1] > 10
    background = pixels[0, 0]
    assert np.any(np.abs(pixels - background).sum(axis=-1) > 0.1)


def test_report_writes_every_table_and_figure(synthetic, tmp_path):
    records, samples = synthetic
    report = write_report(
        records,
        tmp_path / "report",
        title="Synthetic check",
        samples=samples,
        command_line="vertseg-tf eval --dataset d --out report",
    )
    folder = tmp_path / "report"
    assert report == folder / "report.md"
    for name in TABLES:
        assert (folder / f"{name}.md").read_text().startswith("| ")
        assert len(read_csv(folder / f"{name}.csv")) > 0
    for name in FIGURES:
        assert_png_has_content(folder / name)
    assert read_records_csv(folder / "per_vertebra.csv") == records
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no staging left behind

    text = report.read_text()
    assert "Synthetic check" in text and "vertseg-tf eval --dataset d --out report" in text
    for name in (*TABLES, *FIGURES):
        assert f"({name}" in text
    assert f"{PAPER_TABLE2['UNet-S'][1]:.3f}" in text  # the paper's 0.999 beside ours
    assert "artefact: no such vertebra in this test set" in text
    for statement in ordering_statements(records):
        assert statement in text


def test_table_rows_follow_paper_order_and_numbers(synthetic):
    records, _ = synthetic
    tables = build_tables(records)
    assert [row[0] for row in tables["table1_masks"].rows] == list(METHODS)
    unet_errors = [r.error for r in records if r.method == "UNet"]
    row = next(r for r in tables["table2_shape"].rows if r[0] == "UNet")
    assert row[3] == pytest.approx(np.mean(unet_errors), abs=1e-12)
    asm_rf = next(r for r in tables["table2_shape"].rows if r[0] == "ASM-RF")
    assert asm_rf[-1] == 1  # the empty prediction, left out of mean and std


def test_hard_subset_table_contains_only_hard_vertebrae(synthetic, tmp_path):
    records, samples = synthetic
    write_report(records, tmp_path / "r", title="t", samples=samples)
    rows = read_csv(tmp_path / "r" / "table3_hard.csv")
    assert [r["Method"] for r in rows] == ["UNet", "UNet-S"]
    for row in rows:
        hard = [r for r in records if r.method == row["Method"] and r.hard]
        assert int(row["n hard"]) == len(hard) == 3
        assert float(row["pA mean"]) == pytest.approx(
            np.mean([r.pixel_accuracy for r in hard]), abs=1e-9
        )
        assert float(row["Error mean"]) == pytest.approx(np.mean([r.error for r in hard]), abs=1e-9)


def test_figure8_cases_by_condition_and_worst_error(synthetic):
    records, samples = synthetic
    cases = select_figure8_cases(records, samples)
    assert cases["implant"] == 1 and cases["fracture"] == 5 and cases["artefact"] is None
    assert not any(samples.conditions[cases["easy"]])
    assert cases["worst failure"] == 0  # ASM-RF's empty prediction


def test_report_with_a_subset_of_methods_and_no_samples(synthetic, tmp_path):
    records, _ = synthetic
    subset = [r for r in records if r.method in ("ASM-G", "UNet")]
    write_report(subset, tmp_path / "r", title="subset")
    with pytest.raises(ConfigError, match="--overwrite"):
        write_report(subset, tmp_path / "r", title="subset, refused")
    write_report(subset, tmp_path / "r", title="subset, again", overwrite=True)
    folder = tmp_path / "r"
    for name in FIGURES:
        assert_png_has_content(folder / name)
    text = (folder / "report.md").read_text()
    assert "subset, again" in text
    assert "UNet < ASM-G in mean point-to-curve error" in text
    assert "UNet-S" not in (folder / "table1_masks.md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_records_follow_methods_and_patches(synthetic):
    records, samples = synthetic
    assert len(records) == len(METHODS) * len(samples.images)
    assert {r.method for r in records} == set(METHODS)


def test_report_without_results_raises(tmp_path):
    with pytest.raises(ConfigError):
        write_report([], tmp_path / "r", title="nothing")
    assert list(tmp_path.iterdir()) == []


def test_evaluation_imports_no_tensorflow():
    code = (
        "import sys, vertseg_tf.evaluation.report, vertseg_tf.evaluation.statistics; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def plain_result(method, k, error, conditions=()):
    return VertebraResult(method, f"img_{k}", "C3", conditions, 90.0, 0.8, error)


def test_ordering_statements_say_where_the_paper_ordering_fails():
    unet = [1.0, 1.4, 1.2, 1.9]
    asm_g = [0.5, 0.9, 1.1, 1.0]  # the ASM beats the network here
    records = [plain_result("UNet", k, e) for k, e in enumerate(unet)]
    records += [plain_result("ASM-G", k, e) for k, e in enumerate(asm_g)]
    (statement,) = ordering_statements(records)
    p = stats.ttest_rel(unet, asm_g).pvalue
    assert statement.startswith("UNet < ASM-G in mean point-to-curve error: does NOT match")
    assert f"{np.mean(unet):.3f} vs {np.mean(asm_g):.3f} px" in statement
    assert f"p = {p:.4f} over 4 vertebrae" in statement


def test_ordering_cannot_be_checked_when_every_prediction_is_empty():
    records = [plain_result("UNet", k, math.inf) for k in range(3)]
    records += [plain_result("ASM-G", k, 1.0 + k) for k in range(3)]
    (statement,) = ordering_statements(records)
    assert "cannot be checked, every prediction of UNet is empty" in statement
