"""The JSON API of `vertseg-tf app`, against a live server on 127.0.0.1 (fast, small films)."""

from __future__ import annotations

import json
import shutil
import tempfile

import cv2
import numpy as np
import pytest

from tests.app.conftest import Server
from vertseg_tf.app.server import create_app
from vertseg_tf.data.dataset import load_dataset, validate_dataset
from vertseg_tf.deploy.inference import draw_overlay
from vertseg_tf.deploy.measurements import measure_segmentation
from vertseg_tf.morphometry.records import read_measurements_csv

LEVELS = ["C3", "C4", "C5", "C6", "C7"]


@pytest.fixture(scope="module")
def server(png_film):
    with Server(create_app(png_film.segmenter(), capacity=4)) as running:
        yield running


def segment(server, film, **fields):
    return server.json("/segment", fields={"centers": json.dumps(film.centers.tolist()),
                                           **fields},
                       files={"image": (film.path.name, film.path.read_bytes())})


@pytest.mark.parametrize("which", ["png_film", "dicom_film"])
def test_segment_returns_the_segmenters_outlines_and_read_outs(server, which, request):
    film = request.getfixturevalue(which)
    status, answer = segment(server, film, facing="left")
    assert status == 200, answer
    reference = film.segmenter().segment(film.image, film.centers, LEVELS)
    column = measure_segmentation(reference, film.meta["pixel_spacing_mm"], "left")
    assert [v["label"] for v in answer["vertebrae"]] == LEVELS
    for got, expected in zip(answer["vertebrae"], reference):
        np.testing.assert_allclose(got["contour"], expected.contour, atol=1e-3)
        np.testing.assert_allclose(got["center"], expected.center)
        assert got["flags"] == expected.flags
        assert got["measurements"] == column.vertebra(expected.label).to_dict()
    assert answer["column"] == json.loads(json.dumps(column.column_dict()))
    assert answer["column"]["unit"] == ("mm" if which == "dicom_film" else "px")


def test_downloads_are_a_valid_dataset_the_csv_and_the_overlay(server, png_film, tmp_path):
    status, answer = segment(server, png_film, facing="left")
    assert status == 200, answer
    status, headers, content = server.request(answer["downloads"]["dataset.json"])
    assert status == 200 and "attachment" in headers["content-disposition"]
    folder = tmp_path / "result"
    (folder / "images").mkdir(parents=True)
    (folder / "dataset.json").write_bytes(content)
    record = load_dataset(folder).images[0]
    shutil.copy(png_film.path, folder / record.file)
    assert [p for p in validate_dataset(folder) if p.is_error] == []
    for vertebra, got in zip(record.vertebrae, answer["vertebrae"]):
        np.testing.assert_allclose(vertebra.contour, got["contour"], atol=1e-3)
    assert record.extra["measurements"] == answer["column"]

    status, _, content = server.request(answer["downloads"]["measurements.csv"])
    (tmp_path / "m.csv").write_bytes(content)
    rows = read_measurements_csv(tmp_path / "m.csv")
    assert [row["label"] for row in rows] == [v["label"] for v in answer["vertebrae"]
                                             if v["measurements"]]
    assert rows[0]["ha"] == pytest.approx(answer["vertebrae"][0]["measurements"]["ha"], abs=1e-4)

    status, headers, content = server.request(answer["downloads"]["overlay.png"])
    assert headers["content-type"] == "image/png"
    overlay = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR)
    results = png_film.segmenter().segment(png_film.image, png_film.centers, LEVELS)
    expected = draw_overlay(png_film.image, results, measure_segmentation(results, None, "left"))
    np.testing.assert_array_equal(overlay, expected)


def test_an_opened_image_is_segmented_by_id_and_rendered_with_its_window(server, png_film):
    status, opened = server.json("/images", files={"image": ("a.png", png_film.path.read_bytes())})
    assert status == 200
    assert (opened["height"], opened["width"]) == png_film.image.shape
    low, high = np.percentile(png_film.image, (1, 99))
    assert opened["window"]["level"] == pytest.approx((low + high) / 2)
    level, width = 20000.0, 30000.0
    status, _, png = server.request(f"/images/{opened['image_id']}/view.png?level={level}"
                                    f"&width={width}")
    shown = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    expected = np.round(np.clip((png_film.image - (level - width / 2)) / width, 0, 1) * 255)
    np.testing.assert_array_equal(shown, expected.astype(np.uint8))
    status, answer = server.json("/segment", fields={
        "image_id": opened["image_id"], "centers": json.dumps(png_film.centers[:3].tolist()),
        "first_level": "C2"})
    assert status == 200 and [v["label"] for v in answer["vertebrae"]] == ["C2", "C3", "C4"]


def test_bad_requests_get_one_clear_json_error(server, png_film):
    corrupt = png_film.path.read_bytes()[:200]
    status, answer = server.json("/images", files={"image": ("broken.png", corrupt)})
    assert status == 400 and answer["error"].startswith("broken.png: cannot decode image")
    cases = [
        ({"centers": "[[1, 2], [3]]"}, 400, "centers: expected a JSON list of [x, y] pairs"),
        ({"centers": "[[10, 20], [9000, 30]]"}, 400, "lies outside the 454 x 502 image"),
        ({"centers": "[[100, 100], [100, 150]]", "labels": "C3,X9"}, 400, "X9 not spine levels"),
        ({"centers": "[[100, 100], [100, 150]]", "facing": "up"}, 400, "'up' is not 'left'"),
        ({"centers": "[[100, 100]]"}, 400, "scale"),
    ]
    for fields, expected_status, message in cases:
        status, answer = segment(server, png_film, **fields)
        assert status == expected_status and message in answer["error"], (fields, answer)
    status, answer = server.json("/segment", fields={"centers": "[[1, 2], [3, 4]]"})
    assert status == 400 and "'image' file or an 'image_id'" in answer["error"]
    status, answer = server.json("/segment", fields={"image_id": "nope", "centers": "[]"})
    assert status == 404 and "no image 'nope'" in answer["error"]
    status, answer = server.json("/results/nope/dataset.json")
    assert status == 404 and "no result 'nope'" in answer["error"]
    status, answer = server.json("/segment", fields={})
    assert status == 422 and "centers" in answer["error"]
    status, _, body = server.request("/images", files={"image": ("x", b"")})
    assert status == 400 and b"image file is empty" in body and b"Traceback" not in body


def test_uploads_over_the_limit_are_refused_and_nothing_is_left_on_disk(
        png_film, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    size = len(png_film.path.read_bytes())
    with Server(create_app(png_film.segmenter(), max_upload_mb=size * 2 / 1e6)) as small:
        status, answer = small.json("/images", files={"image": ("a.png", b"0" * size * 2)})
        assert status == 413 and "over the limit" in answer["error"]
        status, answer = small.json("/images", files={"image": ("a.png",
                                                                png_film.path.read_bytes())})
        assert status == 200
    assert list(tmp_path.iterdir()) == []


def test_the_page_and_its_files_are_served_and_fetch_nothing_from_elsewhere(server):
    status, headers, page = server.request("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    for name in ("app.js", "app.css"):
        assert f"/static/{name}".encode() in page
        status, _, content = server.request(f"/static/{name}")
        assert status == 200 and b"http://" not in content.replace(b"http://www.w3.org", b"")
        assert b"https://" not in content
    assert b"https://" not in page
    assert server.request("/static/../server.py")[0] == 404


def test_find_is_offered_only_with_a_locator(server, png_film):
    assert server.json("/api/info")[1]["find"] is False
    status, opened = server.json("/images", files={"image": ("a.png", png_film.path.read_bytes())})
    status, answer = server.json("/find", fields={"image_id": opened["image_id"]})
    assert status == 404 and "no locator" in answer["error"]
    with Server(create_app(png_film.segmenter(), locator=lambda image: png_film.centers)) as app:
        assert app.json("/api/info")[1]["find"] is True
        status, opened = app.json("/images", files={"image": ("a.png", png_film.path.read_bytes())})
        status, answer = app.json("/find", fields={"image_id": opened["image_id"]})
        assert status == 200
        np.testing.assert_allclose(answer["centers"], png_film.centers, atol=0.005)
        assert answer["labels"] is None
    found = {"centers": png_film.centers[:2], "labels": ["C2", "C3"], "confidences": [0.9, 0.8]}
    with Server(create_app(png_film.segmenter(), locator=lambda image: found)) as app:
        status, opened = app.json("/images", files={"image": ("a.png", png_film.path.read_bytes())})
        status, answer = app.json("/find", fields={"image_id": opened["image_id"]})
        assert (answer["labels"], answer["confidences"]) == (["C2", "C3"], [0.9, 0.8])
