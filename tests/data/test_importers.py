import errno
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from vertseg_tf.cli import main
from vertseg_tf.data import load_dataset, validate_dataset
from vertseg_tf.data.import_formats import import_dataset
from vertseg_tf.data.importers import import_coco, import_labelme
from vertseg_tf.errors import ConfigError, DataError

# An L: a 4x2 bar (area 8, centroid (2, 1)) under a 2x2 block on its left (area 4, centroid
# (1, 3)), moved by (10, 5): area centroid (10 + 20/12, 5 + 20/12).
L_SHAPE = [[10, 5], [14, 5], [14, 7], [12, 7], [12, 9], [10, 9]]
L_CENTROID = (10 + 20 / 12, 5 + 20 / 12)
SQUARE = [[2, 2], [8, 2], [8, 4], [2, 4]]
CLICKED = [5, 3]


def _image(path: Path, height=16, width=20) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.arange(height * width, dtype=np.uint16).reshape(height, width))
    return path


def _labelme(path: Path, image_path: str, shapes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {
        "version": "5.4.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
    }
    path.write_text(json.dumps(obj))
    return path


def _polygon(label, points):
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "shape_type": "polygon",
        "flags": {},
    }


def _point(label, point):
    return {"label": label, "points": [point], "group_id": None, "shape_type": "point", "flags": {}}


def _labelme_project(root: Path) -> Path:
    _image(root / "a.png")
    _image(root / "scans" / "b.png", height=12)
    # C4 first on purpose: the dataset lists vertebrae top to bottom.
    _labelme(
        root / "a.json",
        "a.png",
        [_polygon("C4", L_SHAPE), _polygon("c3", SQUARE), _point("C3_center", CLICKED)],
    )
    _labelme(root / "b.json", "scans\\b.png", [_polygon("C5", SQUARE)])
    return root


def _nothing_written(out: Path) -> bool:
    return not out.exists() and not [
        p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")
    ]


def test_labelme_folder_import(tmp_path):
    src = _labelme_project(tmp_path / "src")
    dataset = import_labelme(src, tmp_path / "out", split="val")
    assert dataset.root == tmp_path / "out"
    loaded = load_dataset(tmp_path / "out")
    assert [(im.id, im.file, im.split) for im in loaded.images] == [
        ("a", "images/a.png", "val"),
        ("b", "images/b.png", "val"),
    ]
    c3, c4 = loaded.images[0].vertebrae
    assert (c3.label, c4.label) == ("C3", "C4")
    # Labelme's (0, 0) is the top-left pixel's corner; the native origin is its centre.
    np.testing.assert_allclose(c3.contour, np.array(SQUARE) - 0.5, atol=1e-12)
    np.testing.assert_allclose(c3.center, np.array(CLICKED) - 0.5, atol=1e-12)
    np.testing.assert_allclose(c4.contour, np.array(L_SHAPE) - 0.5, atol=1e-12)
    np.testing.assert_allclose(c4.center, np.array(L_CENTROID) - 0.5, atol=1e-12)
    assert (tmp_path / "out/images/a.png").read_bytes() == (src / "a.png").read_bytes()
    assert (tmp_path / "out/images/b.png").read_bytes() == (src / "scans/b.png").read_bytes()
    assert not any(p.is_error for p in validate_dataset(tmp_path / "out"))


def test_labelme_single_file_center_origin_and_links(tmp_path):
    src = _labelme_project(tmp_path / "src")
    dataset = import_labelme(src / "a.json", tmp_path / "out", link=True, pixel_origin="center")
    [image] = dataset.images
    np.testing.assert_allclose(image.vertebrae[1].center, L_CENTROID, atol=1e-12)
    np.testing.assert_allclose(image.vertebrae[0].center, CLICKED, atol=1e-12)
    assert os.path.samefile(tmp_path / "out/images/a.png", src / "a.png")


def test_images_with_the_same_name_get_distinct_ids(tmp_path):
    _image(tmp_path / "src/one/scan.png")
    _image(tmp_path / "src/two/scan.png")
    _labelme(tmp_path / "src/1.json", "one/scan.png", [_polygon("C3", SQUARE)])
    _labelme(tmp_path / "src/2.json", "two/scan.png", [_polygon("C3", SQUARE)])
    dataset = import_labelme(tmp_path / "src", tmp_path / "out")
    assert [(im.id, im.file) for im in dataset.images] == [
        ("scan", "images/scan.png"),
        ("scan_2", "images/scan_2.png"),
    ]


@pytest.mark.parametrize(
    ("shapes", "field", "words"),
    [
        (
            [_polygon("C3", SQUARE), _polygon("dens", SQUARE)],
            "shapes[1].label",
            "'dens' is neither",
        ),
        ([_polygon("C3", SQUARE), _polygon("C3", L_SHAPE)], "shapes[1]", "second outline for C3"),
        ([_point("C3_center", CLICKED)], "shapes[0]", "centre for C3 but no C3 outline"),
        (
            [_polygon("C3", SQUARE), _point("C3", CLICKED)],
            "shapes[1].shape_type",
            "needs a polygon",
        ),
        ([_polygon("C3", [[0, 0], [1, 1], [2, 2]])], "shapes[0]", "encloses no area"),
        ([_polygon("C3", [[0, 0], [1, "x"]])], "shapes[0].points", "[x, y]"),
    ],
)
def test_labelme_errors_name_the_file_and_write_nothing(tmp_path, shapes, field, words):
    src = _labelme_project(tmp_path / "src")
    _labelme(src / "c.json", "a.png", shapes)
    with pytest.raises(DataError) as error:
        import_labelme(src, tmp_path / "out")
    assert error.value.file == str(src / "c.json")
    assert error.value.field == field
    assert words in error.value.problem
    assert _nothing_written(tmp_path / "out")


def test_labelme_missing_image_writes_nothing(tmp_path):
    src = _labelme_project(tmp_path / "src")
    _labelme(src / "c.json", "gone.png", [_polygon("C3", SQUARE)])
    with pytest.raises(DataError, match=r"c\.json: imagePath: image 'gone.png' not found"):
        import_labelme(src, tmp_path / "out")
    assert _nothing_written(tmp_path / "out")


def test_existing_output_folder(tmp_path):
    src = _labelme_project(tmp_path / "src")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        import_labelme(src, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    assert len(import_labelme(src, tmp_path / "empty").images) == 2


def _flat(points):
    """COCO's flat polygon [x1, y1, x2, y2, ...]."""
    return [coordinate for point in points for coordinate in point]


def _coco(root: Path, annotations=None, categories=None) -> Path:
    """CVAT's COCO 1.0 export layout: annotations/instances_default.json beside images/."""
    _image(root / "images" / "x.png")
    _image(root / "images" / "y.png")
    obj = {
        "info": {},
        "images": [
            {"id": 1, "file_name": "x.png", "width": 20, "height": 16},
            {"id": 2, "file_name": "y.png", "width": 20, "height": 16},
            {"id": 3, "file_name": "unannotated.png", "width": 20, "height": 16},
        ],
        "categories": categories
        or [{"id": 1, "name": "C3"}, {"id": 2, "name": "C4"}, {"id": 7, "name": "C4_center"}],
        "annotations": annotations
        if annotations is not None
        else [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 2,
                "segmentation": [_flat(L_SHAPE)],
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [_flat(SQUARE)],
                "iscrowd": 0,
            },
            {
                "id": 3,
                "image_id": 2,
                "category_id": 2,
                "segmentation": [_flat(SQUARE)],
                "iscrowd": 0,
            },
            {
                "id": 4,
                "image_id": 2,
                "category_id": 7,
                "keypoints": [*CLICKED, 2],
                "num_keypoints": 1,
            },
        ],
    }
    path = root / "annotations" / "instances_default.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def test_coco_import(tmp_path):
    source = _coco(tmp_path / "export")
    dataset = import_coco(source, tmp_path / "out", split="test")
    loaded = load_dataset(tmp_path / "out")
    assert [(im.id, im.file, im.split) for im in loaded.images] == [
        ("x", "images/x.png", "test"),
        ("y", "images/y.png", "test"),
    ]
    assert len(dataset.images) == 2
    x_c3, x_c4 = loaded.images[0].vertebrae
    np.testing.assert_allclose(x_c3.contour, np.array(SQUARE) - 0.5, atol=1e-12)
    np.testing.assert_allclose(x_c3.center, np.array([5, 3]) - 0.5, atol=1e-12)
    np.testing.assert_allclose(x_c4.center, np.array(L_CENTROID) - 0.5, atol=1e-12)
    [y_c4] = loaded.images[1].vertebrae
    np.testing.assert_allclose(y_c4.center, np.array(CLICKED) - 0.5, atol=1e-12)
    assert not any(p.is_error for p in validate_dataset(tmp_path / "out"))


def test_coco_images_folder_option(tmp_path):
    source = _coco(tmp_path / "export")
    (tmp_path / "export/images").rename(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="'x.png' not found"):
        import_coco(source, tmp_path / "out")
    dataset = import_coco(source, tmp_path / "out", images_dir=tmp_path / "elsewhere")
    assert [im.id for im in dataset.images] == ["x", "y"]


@pytest.mark.parametrize(
    ("annotation", "field", "words"),
    [
        (
            {"image_id": 1, "category_id": 1, "segmentation": {"counts": "abc", "size": [16, 20]}},
            "annotations[0].segmentation",
            "RLE",
        ),
        (
            {"image_id": 1, "category_id": 1, "segmentation": [_flat(SQUARE), _flat(SQUARE)]},
            "annotations[0].segmentation",
            "exactly one polygon",
        ),
        (
            {"image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, 4, 5]]},
            "annotations[0].segmentation",
            "odd number",
        ),
        (
            {"image_id": 9, "category_id": 1, "segmentation": [_flat(SQUARE)]},
            "annotations[0].image_id",
            "unknown image_id 9",
        ),
        (
            {"image_id": 1, "category_id": 5, "segmentation": [_flat(SQUARE)]},
            "annotations[0].category_id",
            "'ruler' is neither",
        ),
        (
            {"image_id": 1, "category_id": 7, "keypoints": [1]},
            "annotations[0].keypoints",
            "keypoints [x, y, v]",
        ),
    ],
)
def test_coco_errors_name_the_file_and_write_nothing(tmp_path, annotation, field, words):
    categories = [
        {"id": 1, "name": "C3"},
        {"id": 5, "name": "ruler"},
        {"id": 7, "name": "C3_centre"},
    ]
    source = _coco(tmp_path / "export", annotations=[annotation], categories=categories)
    with pytest.raises(DataError) as error:
        import_coco(source, tmp_path / "out")
    assert (error.value.file, error.value.field) == (str(source), field)
    assert words in error.value.problem
    assert _nothing_written(tmp_path / "out")


def test_bad_options(tmp_path):
    with pytest.raises(ConfigError, match="split"):
        import_dataset("labelme", tmp_path, tmp_path / "out", split="training")
    with pytest.raises(ConfigError, match="pixel_origin"):
        import_dataset("coco", tmp_path, tmp_path / "out", pixel_origin="middle")
    with pytest.raises(ConfigError, match="unknown import format"):
        import_dataset("voc", tmp_path, tmp_path / "out")


def test_cli_import(tmp_path, capsys):
    source = _coco(tmp_path / "export")
    out = tmp_path / "out"
    assert main(["import", "--from", "coco", str(source), "--out", str(out), "--split", "val"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{out}: imported 2 image(s), 3 vertebra(e); check it with: vertseg-tf validate {out}"
    )
    assert {im.split for im in load_dataset(out).images} == {"val"}
    assert main(["import", "--from", "coco", str(source), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"vertseg-tf import: error: {out}: folder exists and is not empty; nothing was changed "
        "(pass --overwrite to replace it, or choose a new folder)"
    )
    assert (
        main(
            [
                "import",
                "--from",
                "labelme",
                str(source),
                "--out",
                str(tmp_path / "o2"),
                "--images",
                "x",
            ]
        )
        == 1
    )
    assert "--images applies to --from coco only" in capsys.readouterr().err


def test_progress_is_called_per_image(tmp_path):
    calls = []
    import_labelme(
        _labelme_project(tmp_path / "src"), tmp_path / "out", progress=lambda *a: calls.append(a)
    )
    assert calls == [(1, 2), (2, 2)]


@pytest.mark.parametrize("where", ["absolute", "parent", "deep parent"])
def test_labelme_never_reads_a_file_outside_its_folder(tmp_path, where):
    secret = _image(tmp_path / "private" / "secret.png")
    image_path = {
        "absolute": str(secret),
        "parent": "../private/secret.png",
        "deep parent": "scans/../../../" * 3 + str(secret).lstrip("/"),
    }[where]
    source = _labelme(tmp_path / "src" / "a.json", image_path, [_polygon("C3", SQUARE)])
    with pytest.raises(DataError) as error:
        import_labelme(tmp_path / "src", tmp_path / "out")
    assert (error.value.file, error.value.field) == (str(source), "imagePath")
    assert "outside" in error.value.problem
    assert _nothing_written(tmp_path / "out")


def test_coco_never_reads_a_file_outside_its_images_folder(tmp_path):
    annotations = [{"image_id": 1, "category_id": 1, "segmentation": [_flat(SQUARE)]}]
    source = _coco(tmp_path / "export", annotations=annotations)
    obj = json.loads(source.read_text())
    obj["images"][0]["file_name"] = "../annotations/instances_default.json"
    source.write_text(json.dumps(obj))
    with pytest.raises(DataError) as error:
        import_coco(source, tmp_path / "out", images_dir=tmp_path / "export" / "images")
    assert (error.value.file, error.value.field) == (str(source), "images[0].file_name")
    assert _nothing_written(tmp_path / "out")


def test_link_across_file_systems_copies_and_the_dataset_validates(tmp_path, monkeypatch):
    src = _labelme_project(tmp_path / "src")

    def cross_device_link(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))

    monkeypatch.setattr(os, "link", cross_device_link)
    import_labelme(src, tmp_path / "out", link=True)
    assert validate_dataset(tmp_path / "out") == []
    placed = tmp_path / "out" / "images" / "a.png"
    assert not placed.is_symlink() and placed.read_bytes() == (src / "a.png").read_bytes()


def test_polygon_at_1e308_is_refused_not_written_with_a_nan_centre(tmp_path):
    huge = [[-1e308, -1e308], [1e308, -1e308], [1e308, 1e308], [-1e308, 1e308]]
    _image(tmp_path / "src" / "a.png")
    source = _labelme(tmp_path / "src" / "a.json", "a.png", [_polygon("C3", huge)])
    with pytest.raises(DataError) as error:
        import_labelme(source, tmp_path / "out")
    assert (error.value.file, error.value.field) == (str(source), "shapes[0].points")
    assert "1e+07" in error.value.problem
    assert _nothing_written(tmp_path / "out")


def test_import_refuses_what_validate_would_reject(tmp_path):
    _image(tmp_path / "src" / "a.png", height=16, width=20)
    source = _labelme(
        tmp_path / "src" / "a.json",
        "a.png",
        [_polygon("C3", SQUARE), _point("C3_center", [200, 3])],
    )
    with pytest.raises(DataError) as error:
        import_labelme(source, tmp_path / "out", pixel_origin="center")
    assert (error.value.file, error.value.field) == (str(source), "shapes[1]")
    assert "outside the 20 x 16 image" in error.value.problem
    assert _nothing_written(tmp_path / "out")
