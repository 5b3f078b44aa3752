"""The automatic mode's evaluation: matching, resampling, located against clicked segmentation."""

import json

import numpy as np
import pytest

from vertseg_tf.channels import predicted_mask
from vertseg_tf.data.dataset import load_dataset
from vertseg_tf.data.patches import PatchSet
from vertseg_tf.data.synthetic import generate
from vertseg_tf.evaluation.automatic import (
    automatic_table,
    evaluate_automatic,
    locator_table,
    match_located,
    resample_into,
)
from vertseg_tf.evaluation.records import evaluate_masks
from vertseg_tf.locate.heatmaps import LOCATED_LEVELS
from vertseg_tf.locate.locator import LocatedLevel


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("automatic") / "v2"
    generate(3, 5, out, size="small", version=2, split_ratio=(1, 2), progress=False)
    return load_dataset(out)


def _predictor(patches):
    """A fixed, non-trivial map from patch intensities to class probabilities."""
    vertebra = 1.0 / (1.0 + np.exp(-4.0 * patches[..., 0]))
    return np.stack([1.0 - vertebra, vertebra], axis=-1).astype(np.float32)


class _TableLocator:
    """Answers each film (known by its pixels) with the given centres per level."""

    source = "table"

    def __init__(self, answers):
        self.answers = answers

    def locate(self, image):
        centers = self.answers[np.asarray(image).tobytes()]
        return [LocatedLevel(label, None if np.isnan(xy[0]) else xy, 0.9)
                for label, xy in zip(LOCATED_LEVELS, centers)]


def _answers(dataset, change=lambda centers: centers):
    from vertseg_tf.data.images import read_image
    from vertseg_tf.locate.heatmaps import level_centers

    answers = {}
    for record in dataset.split("test"):
        image, _ = read_image(dataset.image_path(record))
        answers[image.tobytes()] = change(level_centers(record).copy())
    return answers


def test_located_true_centres_reproduce_the_clicked_evaluation_exactly(dataset):
    evaluation = evaluate_automatic(dataset, _TableLocator(_answers(dataset)),
                                    {"Net": _predictor}, refine=0)
    patches = PatchSet.from_dataset(dataset, "test", False, progress=False)
    reference = evaluate_masks(
        "Net (clicked)", patches.masks, patches.contours,
        predicted_mask(_predictor(patches.x())).astype(np.uint8), patches.image_ids,
        patches.labels, patches.conditions)
    clicked = [r for r in evaluation.records if r.method == "Net (clicked)"]
    located = [r for r in evaluation.records if r.method == "Net (located)"]
    assert clicked == reference
    assert [(r.key, r.dice, r.error) for r in located] == [(r.key, r.dice, r.error)
                                                           for r in clicked]
    assert evaluation.matched["Net"] == {r.key for r in clicked}
    # C2 and T1 are located (and counted) but not segmented.
    segmented = evaluation.figures["segmented"]
    assert segmented["n"] == segmented["found"] == segmented["identified"] == len(patches)
    overall = evaluation.figures["all"]
    annotated = sum(len(r.vertebrae) + len(r.level_centers) for r in dataset.split("test"))
    assert annotated > len(patches)
    assert overall["n"] == overall["found"] == overall["identified"] == annotated
    assert overall["median_mm"] == 0.0


def test_a_missed_level_is_an_empty_mask_and_left_out_of_the_matched_vertebrae(dataset):
    def drop_c5(centers):
        centers[LOCATED_LEVELS.index("C5")] = np.nan
        return centers

    evaluation = evaluate_automatic(dataset, _TableLocator(_answers(dataset, drop_c5)),
                                    {"Net": _predictor}, refine=0)
    films = len(dataset.split("test"))
    located = {r.key: r for r in evaluation.records if r.method == "Net (located)"}
    clicked = {r.key: r for r in evaluation.records if r.method == "Net (clicked)"}
    for key, result in located.items():
        if key[1] == "C5":
            assert result.dice == 0.0 and result.error == float("inf")
            assert key not in evaluation.matched["Net"]
        else:
            assert key in evaluation.matched["Net"]
    assert evaluation.figures["all"]["missed"] == films
    rows = {(row[1], row[2]): row for row in automatic_table(evaluation).rows}
    assert rows[("clicked", "matched")][3] == rows[("located", "matched")][3] == 4 * films
    assert rows[("located", "all")][3] == 5 * films
    # Every located C5 failed, so the located fit failure over all vertebrae is at least 20 %.
    assert rows[("located", "all")][8] >= 20.0
    np.testing.assert_allclose(
        rows[("clicked", "all")][4], np.mean([r.dice for r in clicked.values()]))


def test_a_lone_found_level_cannot_be_segmented_and_every_vertebra_counts_as_missed(dataset):
    def keep_c3(centers):
        return np.where(np.array(LOCATED_LEVELS)[:, None] == "C3", centers, np.nan)

    evaluation = evaluate_automatic(dataset, _TableLocator(_answers(dataset, keep_c3)),
                                    {"Net": _predictor})
    assert evaluation.matched["Net"] == set()
    assert {r.dice for r in evaluation.records if r.method == "Net (located)"} == {0.0}
    assert evaluation.figures["all"]["found"] == len(dataset.split("test"))


def test_resampling_is_exact_for_the_identity_a_shift_and_a_quarter_turn():
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(size=(8, 8, 2)).astype(np.float32)
    affine = np.array([[1.0, 0.0, -3.0], [0.0, 1.0, 5.0]])
    np.testing.assert_array_equal(resample_into(probabilities, affine, affine), probabilities)
    shifted = affine + [[0.0, 0.0, 2.0], [0.0, 0.0, 1.0]]  # target = source + (2, 1)
    expected = np.zeros_like(probabilities)
    expected[1:, 2:] = probabilities[:-1, :-2]
    np.testing.assert_allclose(resample_into(probabilities, affine, shifted), expected,
                               atol=1e-6)
    # A target frame turned by 90 degrees about the patch centre (3.5, 3.5):
    # target (x, y) = (7 - y_s, x_s), so target[r, c] = source[7 - c, r].
    turned = np.array([[0.0, -1.0, 7.0], [1.0, 0.0, 0.0]])
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    result = resample_into(probabilities, identity, turned)
    reference = np.stack([probabilities[7 - c, r] for r in range(8) for c in range(8)])
    np.testing.assert_allclose(result.reshape(64, 2), reference, atol=1e-6)


def test_matching_takes_the_nearest_pairs_first_within_half_the_spacing():
    truth = np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 30.0]])
    # Spacings: 10, 15 (mean of 10 and 20), 20. The first found centre is 4 from truth 1 and
    # 6 from truth 0, so it goes to truth 1; truth 0 then has only the second found centre,
    # 5.0 away: not under half its spacing (5). The third is 9.9 from truth 2 (limit 10).
    found = np.array([[0.0, 6.0], [5.0, 0.0], [0.0, 20.1]])
    assert match_located(found, truth).tolist() == [-1, 0, 2]


def test_locator_table_lists_every_level_and_the_total_in_percent():
    row = {"n": 4, "found": 3, "missed": 1, "false": 0, "identified": 3,
           "identification_rate": 0.75, "median_mm": 1.0, "mean_mm": 1.5, "p95_mm": 2.5}
    empty = {**row, "found": 0, "missed": 4, "identified": 0, "identification_rate": 0.0,
             "median_mm": None, "mean_mm": None, "p95_mm": None}
    table = locator_table({"levels": {"C3": row, "C4": empty}, "all": row})
    assert [r[0] for r in table.rows] == ["C3", "C4", "all"]
    assert table.rows[0][6] == 75.0 and table.rows[1][7] is None
    assert "| C4 | 4 | 0 | 4 | 0 | 0 | 0.0 | - | - | - |" in table.markdown()
    with_ends = locator_table({"levels": {"C2": row, "C3": row}, "segmented": empty, "all": row})
    assert [r[0] for r in with_ends.rows] == ["C2", "C3", "C3-C7", "all"]
    assert with_ends.rows[2][2] == 0


@pytest.mark.slow
def test_eval_locator_cli_prints_and_writes_the_figures(dataset, tmp_path, capsys):
    from vertseg_tf.cli import main

    out = tmp_path / "report"
    assert main(["eval", "--dataset", str(dataset.root), "--locator", "pretrained",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| all |" in printed and "| pretrained | located | all |" in printed
    figures = json.loads((out / "locator.json").read_text())
    assert figures["segmented"]["n"] == 5 * len(dataset.split("test"))
    assert figures["all"]["n"] == sum(len(r.vertebrae) + len(r.level_centers)
                                      for r in dataset.split("test"))
    assert figures["all"]["found"] + figures["all"]["missed"] == figures["all"]["n"]
    for name in ("report.md", "locator_centres.csv", "automatic_segmentation.csv",
                 "automatic_per_vertebra.csv"):
        assert (out / name).stat().st_size > 0
    assert "## Automatic mode" in (out / "report.md").read_text()


def test_eval_without_model_or_locator_is_refused(dataset, tmp_path, capsys):
    from vertseg_tf.cli import main

    assert main(["eval", "--dataset", str(dataset.root), "--out", str(tmp_path / "r")]) != 0
    assert "--model NAME=RUN_DIR, or --locator" in capsys.readouterr().err
