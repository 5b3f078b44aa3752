"""`vertseg-tf measure` on a dataset of boxes with known six points (a v2-style truth)."""

import json

import numpy as np
import pytest

from vertseg_tf.cli import main
from vertseg_tf.data.dataset import Dataset, ImageRecord, VertebraRecord, save_dataset
from vertseg_tf.morphometry import POINT_NAMES
from vertseg_tf.morphometry.records import read_measurements_csv

LABELS = ("C3", "C4", "C5", "C6", "C7")


def box_column(wedged: float, shift: float):
    """Five 40 x 30 px boxes (0.25 mm px); C5 is a symmetric trapezoid whose anterior wall
    is `wedged` of its posterior one; C3 sits `shift` px anterior of C4."""
    vertebrae = []
    for k, label in enumerate(LABELS):
        x0, y0 = 100.0 - (shift if k == 0 else 0.0), 40.0 + 38.0 * k
        front = 30.0 * (wedged if label == "C5" else 1.0)
        contour = np.array([[x0, y0 + (30 - front) / 2], [x0 + 40, y0], [x0 + 40, y0 + 30],
                            [x0, y0 + (30 + front) / 2]])
        heights = [front + f * (30.0 - front) for f in (0.1, 0.5, 0.9)]
        xs = [x0 + f * 40.0 for f in (0.1, 0.5, 0.9)]
        points = [[x, y0 + (30 - h) / 2] for x, h in zip(xs, heights)] + [
            [x, y0 + (30 + h) / 2] for x, h in zip(xs, heights)]
        truth = {"six_points": dict(zip(POINT_NAMES, points)),
                 "height_loss": 1 - heights[0] / heights[2],
                 "fracture_type": "wedge" if label == "C5" and wedged < 1 else "none"}
        vertebrae.append(VertebraRecord(label, contour.mean(axis=0), contour, [],
                                        {"truth": truth}))
    return vertebrae


@pytest.fixture()
def box_dataset(tmp_path):
    images = [ImageRecord(f"img_{k}", f"images/img_{k}.png", "test", (0.25, 0.25),
                          box_column(wedged, shift), {"facing": "left"})
              for k, (wedged, shift) in enumerate([(1.0, 0.0), (0.6, 8.0)])]
    folder = tmp_path / "boxes"
    folder.mkdir()
    save_dataset(Dataset(images), folder)
    return folder


def test_measure_writes_csv_and_json_and_refuses_to_overwrite(box_dataset, tmp_path, capsys):
    out = tmp_path / "measured"
    assert main(["measure", str(box_dataset), "--out", str(out)]) == 0
    rows = read_measurements_csv(out / "measurements.csv")
    assert len(rows) == 10
    wedged = next(r for r in rows if r["image_id"] == "img_1" and r["label"] == "C5")
    expected_loss = 1 - (18.0 + 0.1 * 12.0) / (18.0 + 0.9 * 12.0)
    assert wedged["height_loss"] == pytest.approx(expected_loss, abs=1e-4)
    assert wedged["genant_grade"] == 2 and wedged["fracture_type"] == "wedge"
    slipped = next(r for r in rows if r["image_id"] == "img_1" and r["label"] == "C3")
    assert slipped["listhesis_below"] == pytest.approx(8.0 * 0.25, abs=1e-4)
    stored = json.loads((out / "measurements.json").read_text())
    assert stored["images"][0]["measurements"]["facing_source"] == "stored"
    assert "wrote" in capsys.readouterr().out
    assert main(["measure", str(box_dataset), "--out", str(out)]) == 1
    assert "not empty" in capsys.readouterr().err


def test_validate_on_exact_outlines_has_zero_error(box_dataset, tmp_path, capsys):
    out = tmp_path / "validation"
    assert main(["measure", str(box_dataset), "--validate", "--out", str(out)]) == 0
    validation = json.loads((out / "validation.json").read_text())
    summary = validation["summaries"]["ground-truth outlines"]
    assert summary["height_mm"]["median"] == pytest.approx(0.0, abs=1e-9)
    assert summary["listhesis_mm"]["p90"] == pytest.approx(0.0, abs=1e-9)
    assert (summary["sensitivity_grade2"], summary["specificity_grade2"]) == (1.0, 1.0)
    assert summary["kappa"] == pytest.approx(1.0)
    assert validation["truth_grade_agreement"]["agree"] == 10
    assert (out / "validation.md").read_text().startswith("# Morphometry validation")
    assert "C3-C7 lordosis" in capsys.readouterr().out


def test_bad_outline_is_one_line_naming_the_field(box_dataset, tmp_path, capsys):
    path = box_dataset / "dataset.json"
    data = json.loads(path.read_text())
    data["images"][1]["vertebrae"][2]["contour"] = [[0, 0], [10, 10], [10, 0], [0, 10]]
    path.write_text(json.dumps(data))
    assert main(["measure", str(box_dataset), "--strict", "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "images[1].vertebrae[2].contour" in err[0]
    assert "intersects itself" in err[0] and not (tmp_path / "a").exists()
    assert main(["measure", str(box_dataset), "--out", str(tmp_path / "b")]) == 1
    assert len(read_measurements_csv(tmp_path / "b" / "measurements.csv")) == 9
    assert "images[1].vertebrae[2].contour" in capsys.readouterr().err


def test_validate_without_truth_is_one_line(box_dataset, tmp_path, capsys):
    path = box_dataset / "dataset.json"
    data = json.loads(path.read_text())
    for vertebra in data["images"][0]["vertebrae"]:
        del vertebra["truth"]
    path.write_text(json.dumps(data))
    assert main(["measure", str(box_dataset), "--validate", "--out", str(tmp_path / "v")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truth six points" in err[0] and not (tmp_path / "v").exists()


@pytest.mark.slow
def test_validate_end_to_end_with_a_model(tmp_path):
    """--model segments every test film from its centres and measures those outlines too."""
    from vertseg_tf import build_unet
    from vertseg_tf.data.synthetic import generate

    generate(3, 0, tmp_path / "v2", size="small", hard_fraction=1.0, split_ratio=(0, 1),
             progress=False)
    model_path = tmp_path / "smoke.keras"
    build_unet("smoke").save(model_path)
    out = tmp_path / "validation"
    assert main(["measure", str(tmp_path / "v2"), "--validate", "--model", str(model_path),
                 "--out", str(out)]) == 0
    summaries = json.loads((out / "validation.json").read_text())["summaries"]
    assert set(summaries) == {"ground-truth outlines", "model outlines"}
    assert summaries["ground-truth outlines"]["vertebrae"] == 15
    model = summaries["model outlines"]
    assert model["vertebrae"] + model["missing"] == 15
