"""segment_to_dataset stores and draws the morphometry of the predicted outlines."""

import json

import numpy as np
import pytest

from vertseg_tf.data.dataset import load_dataset
from vertseg_tf.data.images import read_image
from vertseg_tf.data.patches import extract_patches
from vertseg_tf.data.synthetic import generate
from vertseg_tf.deploy import Segmenter
from vertseg_tf.deploy.inference import draw_overlay, segment_to_dataset
from vertseg_tf.deploy.measurements import measure_segmentation
from vertseg_tf.morphometry.records import measure_record, read_measurements_csv


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic") / "data"
    dataset = generate(1, 5, folder, size="small", image_format="dicom", hard_fraction=0.0,
                       facing="left", progress=False)
    record = dataset.images[0]
    image, _ = read_image(dataset.image_path(record))
    centers = np.array([v.center for v in record.vertebrae])
    masks = extract_patches(image, centers, [v.contour for v in record.vertebrae]).masks

    def ground_truth_model(patches):
        masks_float = masks.astype(np.float32)
        return np.stack([1.0 - masks_float, masks_float], axis=-1)

    return dataset.image_path(record), record, centers, Segmenter(ground_truth_model)


def test_measurements_are_stored_per_vertebra_and_column(film, tmp_path):
    image_path, record, centers, segmenter = film
    json_path, results = segment_to_dataset(segmenter, image_path, centers, tmp_path / "out",
                                            facing="left")
    stored = json.loads(json_path.read_text())["images"][0]
    column = stored["measurements"]
    assert column["facing"] == "left" and column["unit"] == "mm"
    assert [s["upper"] for s in column["segments"]] == ["C3", "C4", "C5", "C6"]
    truth = measure_record(record, facing="left")
    for vertebra, reference in zip(stored["vertebrae"], truth.vertebrae):
        measured = vertebra["measurements"]
        assert set(measured["six_points"]) >= {"superior_anterior", "inferior_posterior"}
        # the ground-truth masks, rasterised in 64 x 64 patches, give back the outline to
        # well under a patch pixel (about 0.4 mm here)
        for name in ("ha", "hm", "hp"):
            assert measured[name] == pytest.approx(getattr(reference, name), abs=0.4)
    rows = read_measurements_csv(tmp_path / "out" / "measurements.csv")
    assert [row["label"] for row in rows] == ["C3", "C4", "C5", "C6", "C7"]
    expected = measure_segmentation(results, record.pixel_spacing_mm, "left")
    assert rows[0]["ha"] == pytest.approx(expected.vertebrae[0].ha, abs=1e-4)
    assert load_dataset(tmp_path / "out").images[0].extra["measurements"] == column


def test_overlay_draws_the_six_points(film):
    image_path, record, centers, segmenter = film
    image, _ = read_image(image_path)
    results = segmenter.segment(image, centers)
    column = measure_segmentation(results, record.pixel_spacing_mm, "left")
    plain = draw_overlay(image, results)
    drawn = draw_overlay(image, results, column)
    changed = np.any(plain != drawn, axis=-1)
    for x, y in np.round(column.vertebrae[0].six_points).astype(int):
        assert changed[y - 1:y + 2, x - 1:x + 2].any()
