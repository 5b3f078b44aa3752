import numpy as np
import pytest

from vertseg_tf.data.dataset import Dataset, ImageRecord, VertebraRecord
from vertseg_tf.errors import DataError
from vertseg_tf.morphometry import POINT_NAMES
from vertseg_tf.morphometry.records import (
    CSV_COLUMNS,
    measure_dataset,
    measure_record,
    measurement_rows,
    read_measurements_csv,
    truth_column,
    write_measurements_csv,
)


def box(x0, y0, depth=40.0, height=30.0):
    return np.array([[x0, y0], [x0 + depth, y0], [x0 + depth, y0 + height], [x0, y0 + height]])


def stations_of(x0, y0, depth=40.0, height=30.0):
    xs = [x0 + f * depth for f in (0.1, 0.5, 0.9)]
    return [[x, y0] for x in xs] + [[x, y0 + height] for x in xs]


def record(facing_key=True, shift=5.0, truth=True):
    vertebrae = []
    for k, label in enumerate(["C3", "C4", "C5"]):
        x0, y0 = 100.0 - (shift if k == 0 else 0.0), 50.0 + 40.0 * k
        extra = {}
        if truth:
            extra["truth"] = {"six_points": dict(zip(POINT_NAMES, stations_of(x0, y0))),
                              "height_loss": 0.0, "fracture_type": "none"}
        vertebrae.append(VertebraRecord(label, box(x0, y0).mean(axis=0), box(x0, y0), [], extra))
    extra = {"facing": "left"} if facing_key else {"synthetic": {"facing": "left"}}
    return ImageRecord("img_1", "images/img_1.png", "test", (0.2, 0.2), vertebrae, extra)


def test_truth_and_outline_read_outs_agree_on_boxes():
    image = record()
    measured, truth = measure_record(image), truth_column(image)
    assert measured.facing_source == "stored" and truth.facing == "left"
    assert measured.segments[0].listhesis == pytest.approx(0.2 * 5.0)
    assert truth.segments[0].listhesis == pytest.approx(0.2 * 5.0)
    for ours, true in zip(measured.vertebrae, truth.vertebrae):
        assert (ours.ha, ours.hm, ours.hp) == pytest.approx((6.0, 6.0, 6.0))
        np.testing.assert_allclose(ours.six_points, true.six_points, atol=1e-9)


def test_facing_is_read_from_the_generator_v1_block_and_detected_without_one():
    assert measure_record(record(facing_key=False)).facing_source == "stored"
    assert measure_record(record(), facing="right").facing == "left"  # the stored one wins
    image = record()
    image.extra = {}
    assert measure_record(image).facing_source.startswith("detected")
    assert measure_record(image, facing="right").facing_source == "given"
    assert truth_column(record(truth=False)) is None
    with pytest.raises(DataError, match="facing"):
        truth_column(image)


def test_bad_outline_names_the_file_and_field_or_is_left_out():
    image = record()
    image.vertebrae[1].contour = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    dataset = Dataset([record(), image], root=None)
    with pytest.raises(DataError, match=r"images\[1\]\.vertebrae\[1\]\.contour: intersects"):
        measure_dataset(dataset)
    _, column = measure_dataset(dataset, strict=False)[1]
    assert [v.label for v in column.vertebrae] == ["C3", "C5"]
    assert "images[1].vertebrae[1].contour" in column.errors


def test_csv_round_trip(tmp_path):
    image = record()
    rows = measurement_rows(image.id, measure_record(image))
    path = write_measurements_csv(rows, tmp_path / "measurements.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert tuple(header) == CSV_COLUMNS
    read = read_measurements_csv(path)
    assert [row["label"] for row in read] == ["C3", "C4", "C5"]
    assert read[0]["segment_below"] == "C3-C4" and read[2]["segment_below"] is None
    assert read[0]["listhesis_below"] == pytest.approx(1.0, abs=1e-4)
    assert read[0]["over_limit_below"] is False and read[1]["genant_grade"] == 0
    assert read[1]["ha"] == pytest.approx(6.0, abs=1e-4)
