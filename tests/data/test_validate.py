import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vertseg_tf.cli import main
from vertseg_tf.data.dataset import FORMAT, Problem, load_dataset, validate_dataset
from vertseg_tf.data.images import write_image
from vertseg_tf.errors import DataError
from vertseg_tf.geometry import polygon_area, polygon_centroid

HEIGHT, WIDTH = 32, 40


def _square(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _image_json(name, split="train"):
    return {
        "id": name,
        "file": f"images/{name}.png",
        "split": split,
        "pixel_spacing_mm": [0.1, 0.1],
        "vertebrae": [
            {"label": "C3", "center": [10, 8], "contour": _square(5, 5, 15, 12)},
            {"label": "C4", "center": [10, 20], "contour": _square(5, 16, 15, 24)},
        ],
    }


def _good_json():
    return {"format": FORMAT, "images": [_image_json("a"), _image_json("b", "test")]}


def _write(root: Path, obj) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name in ("a", "b"):
        cv2.imwrite(str(root / "images" / f"{name}.png"), np.full((HEIGHT, WIDTH), 50, np.uint8))
    (root / "dataset.json").write_text(json.dumps(obj))
    return root


def _vertebra(obj, image=0, vertebra=0):
    return obj["images"][image]["vertebrae"][vertebra]


def test_good_dataset_has_no_problems(tmp_path):
    assert validate_dataset(_write(tmp_path, _good_json())) == []


def test_problem_line_format():
    problem = Problem("d/images/a.png", "images[0].split", "unknown split 'x'", "error")
    assert str(problem) == "error: d/images/a.png: images[0].split: unknown split 'x'"
    assert str(Problem("d/dataset.json", None, "not found", "warning")) == (
        "warning: d/dataset.json: not found"
    )


# Each case: how to break the good dataset, and the one problem expected:
# (severity, file relative to the dataset folder, field, words in the message).
RULES = {
    "wrong format": (
        lambda d: d.update(format="labelme"),
        ("error", "dataset.json", "format", "expected 'vertseg-dataset/1'"),
    ),
    "images not a list": (
        lambda d: d.update(images={}),
        ("error", "dataset.json", "images", "must be a list"),
    ),
    "image not an object": (
        lambda d: d["images"].__setitem__(1, "b.png"),
        ("error", "dataset.json", "images[1]", "must be an object"),
    ),
    "file not a string": (
        lambda d: d["images"][1].update(file=3),
        ("error", "dataset.json", "images[1].file", "must be a string"),
    ),
    "duplicate id": (
        lambda d: d["images"][1].update(id="a"),
        ("error", "images/b.png", "images[1].id", "duplicate id 'a' (also images[0])"),
    ),
    "unknown split": (
        lambda d: d["images"][1].update(split="training"),
        ("error", "images/b.png", "images[1].split", "unknown split 'training'"),
    ),
    "zero spacing": (
        lambda d: d["images"][0].update(pixel_spacing_mm=[0.1, 0.0]),
        ("error", "images/a.png", "images[0].pixel_spacing_mm", "positive and finite"),
    ),
    "infinite spacing": (
        lambda d: d["images"][0].update(pixel_spacing_mm=[float("inf"), 0.1]),
        ("error", "images/a.png", "images[0].pixel_spacing_mm", "positive and finite"),
    ),
    "missing image file": (
        lambda d: d["images"][1].update(file="images/missing.png"),
        ("error", "images/missing.png", "images[1].file", "image file not found"),
    ),
    "file leaves the folder": (
        lambda d: d["images"][1].update(file="../b.png"),
        ("error", "../b.png", "images[1].file", "leaves the dataset folder"),
    ),
    "absolute file": (
        lambda d: d["images"][1].update(file="/etc/hostname"),
        ("error", "/etc/hostname", "images[1].file", "absolute path"),
    ),
    "unknown label": (
        lambda d: _vertebra(d, 1, 1).update(label="C8"),
        ("error", "images/b.png", "images[1].vertebrae[1].label", "unknown label 'C8'"),
    ),
    "repeated label": (
        lambda d: _vertebra(d, 1, 1).update(label="C3"),
        ("error", "images/b.png", "images[1].vertebrae[1].label", "C3 appears twice"),
    ),
    "label not a string": (
        lambda d: _vertebra(d, 0, 0).update(label=3),
        ("error", "images/a.png", "images[0].vertebrae[0].label", "must be a string"),
    ),
    "missing centre": (
        lambda d: _vertebra(d, 0, 1).pop("center"),
        ("error", "images/a.png", "images[0].vertebrae[1]", "missing key 'center'"),
    ),
    "contour not points": (
        lambda d: _vertebra(d, 0, 1).update(contour=[1, 2, 3]),
        ("error", "images/a.png", "images[0].vertebrae[1].contour", "list of [x, y] points"),
    ),
    "NaN in contour": (
        lambda d: _vertebra(d, 0, 1)["contour"][2].__setitem__(0, float("nan")),
        ("error", "images/a.png", "images[0].vertebrae[1].contour", "NaN or infinite"),
    ),
    "two distinct contour points": (
        lambda d: _vertebra(d, 0, 1).update(contour=[[5, 16], [15, 24], [5, 16]]),
        ("error", "images/a.png", "images[0].vertebrae[1].contour", "2 distinct points"),
    ),
    "collinear contour": (
        lambda d: _vertebra(d, 0, 1).update(contour=[[5, 16], [10, 20], [15, 24]]),
        ("error", "images/a.png", "images[0].vertebrae[1].contour", "on one line"),
    ),
    "NaN centre": (
        lambda d: _vertebra(d, 0, 1).update(center=[float("nan"), 20]),
        ("error", "images/a.png", "images[0].vertebrae[1].center", "NaN or infinite"),
    ),
    "centre below the image": (
        lambda d: _vertebra(d, 0, 1).update(center=[10, HEIGHT - 0.4]),
        ("error", "images/a.png", "images[0].vertebrae[1].center", "outside the 40 x 32 image"),
    ),
    "centre left of the image": (
        lambda d: _vertebra(d, 0, 1).update(center=[-0.6, 20]),
        ("error", "images/a.png", "images[0].vertebrae[1].center", "outside the 40 x 32 image"),
    ),
    "self-intersecting contour": (
        lambda d: _vertebra(d, 0, 0).update(
            contour=[[5, 5], [15, 12], [15, 5], [5, 10]], center=[13, 8.5]
        ),
        ("warning", "images/a.png", "images[0].vertebrae[0].contour", "self-intersecting"),
    ),
    "symmetric bow tie": (
        lambda d: _vertebra(d, 0, 0).update(
            contour=[[5, 5], [15, 12], [15, 5], [5, 12]], center=[13, 8.5]
        ),
        ("warning", "images/a.png", "images[0].vertebrae[0].contour", "self-intersecting"),
    ),
    "contour touching itself at a vertex": (
        lambda d: _vertebra(d, 0, 0).update(
            contour=[[5, 5], [10, 8], [15, 5], [15, 12], [10, 8], [5, 12]], center=[13, 8]
        ),
        ("warning", "images/a.png", "images[0].vertebrae[0].contour", "self-intersecting"),
    ),
    "centre outside its contour": (
        lambda d: _vertebra(d, 0, 0).update(center=[30, 8]),
        ("warning", "images/a.png", "images[0].vertebrae[0].center", "outside its own contour"),
    ),
    "first point repeated": (
        lambda d: _vertebra(d, 0, 0)["contour"].append([5, 5]),
        ("warning", "images/a.png", "images[0].vertebrae[0].contour", "repeats its first point"),
    ),
    "contour leaves the image": (
        lambda d: _vertebra(d, 0, 0).update(contour=_square(30, 5, 40, 12), center=[35, 8]),
        ("warning", "images/a.png", "images[0].vertebrae[0].contour", "2 of 4 points lie outside"),
    ),
    "unknown condition": (
        lambda d: _vertebra(d, 0, 0).update(conditions=["fracture", "broken"]),
        ("warning", "images/a.png", "images[0].vertebrae[0].conditions", "'broken'"),
    ),
    "not top to bottom": (
        lambda d: d["images"][0]["vertebrae"].reverse(),
        ("warning", "images/a.png", "images[0].vertebrae", "not listed top to bottom (C4, C3)"),
    ),
    "no vertebrae": (
        lambda d: d["images"][0].update(vertebrae=[]),
        ("warning", "images/a.png", "images[0].vertebrae", "no vertebrae annotated"),
    ),
    "two records share a file": (
        lambda d: d["images"][1].update(file="images/a.png"),
        ("warning", "images/a.png", "images[1].file", "same image file as images[0]"),
    ),
    "no images": (
        lambda d: d.update(images=[]),
        ("warning", "dataset.json", "images", "no images"),
    ),
    "centre written as strings": (
        lambda d: _vertebra(d, 0, 0).update(center=["10", "8"]),
        ("error", "images/a.png", "images[0].vertebrae[0].center", "must be JSON numbers"),
    ),
    "centre written as booleans": (
        lambda d: _vertebra(d, 0, 0).update(center=[True, False]),
        ("error", "images/a.png", "images[0].vertebrae[0].center", "must be JSON numbers"),
    ),
    "contour point written as a string": (
        lambda d: _vertebra(d, 0, 1)["contour"].__setitem__(2, ["15", 24]),
        ("error", "images/a.png", "images[0].vertebrae[1].contour", "must be JSON numbers"),
    ),
    "spacing written as strings": (
        lambda d: d["images"][1].update(pixel_spacing_mm=["0.1", "0.1"]),
        ("error", "dataset.json", "images[1].pixel_spacing_mm", "must be JSON numbers"),
    ),
    "integer too large for a float": (
        lambda d: _vertebra(d, 1, 0).update(center=[10**400, 8]),
        ("error", "images/b.png", "images[1].vertebrae[0].center", "must be JSON numbers"),
    ),
    "centre without an outline of an unknown level": (
        lambda d: d["images"][0].update(level_centers={"C2": [10, 2], "X9": [10, 30]}),
        ("error", "images/a.png", "images[0].level_centers.X9", "unknown label 'X9'"),
    ),
    "centre without an outline of an outlined level": (
        lambda d: d["images"][0].update(level_centers={"C4": [10, 20]}),
        ("error", "images/a.png", "images[0].level_centers.C4", "also an outlined vertebra"),
    ),
    "centre without an outline off the image": (
        lambda d: d["images"][1].update(level_centers={"C5": [10, HEIGHT - 0.4]}),
        ("error", "images/b.png", "images[1].level_centers.C5", "lies outside the 40 x 32"),
    ),
    "centre without an outline not a pair": (
        lambda d: d["images"][1].update(level_centers={"C2": [10]}),
        ("error", "dataset.json", "images[1].level_centers.C2", "must be [x, y]"),
    ),
    "centres without an outline not an object": (
        lambda d: d["images"][1].update(level_centers=[[10, 2]]),
        ("error", "dataset.json", "images[1].level_centers", "must be an object"),
    ),
    "contour point far outside the image": (
        lambda d: _vertebra(d, 1, 0)["contour"].__setitem__(1, [1e308, 5]),
        ("error", "images/b.png", "images[1].vertebrae[0].contour", "more than 1e+07 px"),
    ),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_reports_exactly_its_problem(tmp_path, rule):
    mutate, (severity, file, field, words) = RULES[rule]
    obj = _good_json()
    mutate(obj)
    root = _write(tmp_path / "ds", obj)
    problems = validate_dataset(root)
    assert len(problems) == 1, [str(p) for p in problems]
    problem = problems[0]
    assert (problem.severity, problem.file, problem.field) == (severity, str(root / file), field)
    assert words in problem.message


def test_corrupt_image_is_reported(tmp_path):
    root = _write(tmp_path, _good_json())
    (root / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    [problem] = validate_dataset(root)
    assert (problem.severity, problem.file, problem.field) == (
        "error",
        str(root / "images/b.png"),
        "images[1].file",
    )
    assert "cannot decode" in problem.message


def test_missing_and_broken_dataset_json(tmp_path):
    [missing] = validate_dataset(tmp_path)
    assert (missing.file, missing.message) == (
        str(tmp_path / "dataset.json"),
        "dataset file not found",
    )
    (tmp_path / "dataset.json").write_text("{")
    [broken] = validate_dataset(tmp_path / "dataset.json")
    assert broken.is_error and "not valid JSON" in broken.message


def test_spacing_disagreeing_with_the_dicom_is_a_warning(tmp_path):
    obj = _good_json()
    obj["images"][0]["file"] = "images/a.dcm"
    root = _write(tmp_path, obj)
    write_image(
        root / "images/a.dcm", np.zeros((HEIGHT, WIDTH), np.uint16), pixel_spacing_mm=(0.2, 0.1)
    )
    [problem] = validate_dataset(root)
    assert (problem.severity, problem.field) == ("warning", "images[0].pixel_spacing_mm")
    assert "[0.2, 0.1]" in problem.message


def test_centre_on_the_outer_pixel_edge_is_inside_the_image(tmp_path):
    obj = _good_json()
    _vertebra(obj, 0, 0).update(center=[-0.5, -0.5])
    _vertebra(obj, 0, 1).update(center=[WIDTH - 0.5, HEIGHT - 0.5])
    problems = validate_dataset(_write(tmp_path, obj))
    assert [(p.severity, p.field) for p in problems] == [
        ("warning", "images[0].vertebrae[0].center"),
        ("warning", "images[0].vertebrae[1].center"),
    ]


def test_broken_vertebra_does_not_hide_the_rest(tmp_path):
    obj = _good_json()
    _vertebra(obj, 0, 0).pop("contour")
    _vertebra(obj, 0, 1).update(center=[10, 99])
    obj["images"][1]["split"] = "nope"
    problems = validate_dataset(_write(tmp_path, obj))
    assert [p.field for p in problems] == [
        "images[0].vertebrae[0]",
        "images[0].vertebrae[1].center",
        "images[1].split",
    ]


def test_strict_stops_at_the_first_error_keeping_earlier_warnings(tmp_path):
    obj = _good_json()
    _vertebra(obj, 0, 0).update(conditions=["odd"])
    _vertebra(obj, 0, 1).update(label="X1")
    obj["images"][1]["split"] = "nope"
    root = _write(tmp_path, obj)
    assert [p.severity for p in validate_dataset(root)] == ["warning", "error", "error"]
    assert [p.severity for p in validate_dataset(root, strict=True)] == ["warning", "error"]


def test_progress_is_called_per_image(tmp_path):
    calls = []
    validate_dataset(
        _write(tmp_path, _good_json()), progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(1, 2), (2, 2)]


@pytest.mark.parametrize(
    ("contour", "area", "centroid"),
    [
        (_square(0, 0, 4, 2), 8.0, (2.0, 1.0)),
        # An L: a 4x2 bar (centroid (2, 1)) plus a 2x2 block above it on the left (centroid (1, 3)).
        (
            [[0, 0], [4, 0], [4, 2], [2, 2], [2, 4], [0, 4]],
            12.0,
            ((8 * 2 + 4 * 1) / 12, (8 * 1 + 4 * 3) / 12),
        ),
    ],
)
def test_polygon_area_centroid(contour, area, centroid):
    assert polygon_area(contour) == pytest.approx(area, abs=1e-12)
    np.testing.assert_allclose(polygon_centroid(contour), centroid, atol=1e-12)
    assert polygon_area(contour[::-1]) == pytest.approx(-area, abs=1e-12)
    np.testing.assert_allclose(polygon_centroid(contour[::-1]), centroid, atol=1e-12)


def test_cli_validate_lines_summary_and_exit_code(tmp_path, capsys):
    root = _write(tmp_path, _good_json())
    assert main(["validate", str(root)]) == 0
    assert capsys.readouterr().out.strip() == f"{root}: 0 error(s), 0 warning(s); usable"
    obj = _good_json()
    _vertebra(obj, 0, 0).update(conditions=["odd"])
    obj["images"][1]["split"] = "nope"
    (root / "dataset.json").write_text(json.dumps(obj))
    assert main(["validate", str(root)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(
        f"warning: {root / 'images/a.png'}: images[0].vertebrae[0].conditions: "
    )
    assert lines[1].startswith(f"error: {root / 'images/b.png'}: images[1].split: ")
    assert lines[2] == f"{root}: 1 error(s), 1 warning(s); not usable"


def test_done_when_ten_defects_through_the_console(tmp_path):
    obj = _good_json()
    for name in "cdefg":
        obj["images"].append(_image_json(name))
    root = _write(tmp_path / "ten", obj)
    for name in "cdefg":
        cv2.imwrite(str(root / "images" / f"{name}.png"), np.zeros((HEIGHT, WIDTH), np.uint8))
    images = obj["images"]
    images[0]["split"] = "training"  # 1
    images[0]["vertebrae"][0]["label"] = "C9"  # 2
    images[1]["id"] = "a"  # 3
    images[1]["vertebrae"][1]["center"] = [10, 400]  # 4
    images[2]["file"] = "images/missing.png"  # 5
    (root / "images" / "d.png").write_bytes(b"garbage")  # 6
    images[4]["file"] = "../outside.png"  # 7
    images[4]["vertebrae"][0]["contour"] = [[1, 1], [2, 2]]  # (images[4] also checked)
    images[5]["vertebrae"][0]["contour"][1][0] = float("nan")  # 8
    images[5]["pixel_spacing_mm"] = [-1, 0.1]  # 9
    images[6]["vertebrae"][1]["label"] = "C3"  # 10
    (root / "dataset.json").write_text(json.dumps(obj))
    result = subprocess.run(
        [sys.executable, "-m", "vertseg_tf", "validate", str(root)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    expected = [
        ("a.png", "images[0].split"),
        ("a.png", "images[0].vertebrae[0].label"),
        ("b.png", "images[1].id"),
        ("b.png", "images[1].vertebrae[1].center"),
        ("missing.png", "images[2].file"),
        ("d.png", "images[3].file"),
        ("outside.png", "images[4].file"),
        ("outside.png", "images[4].vertebrae[0].contour"),
        ("f.png", "images[5].pixel_spacing_mm"),
        ("f.png", "images[5].vertebrae[0].contour"),
        ("g.png", "images[6].vertebrae[1].label"),
    ]
    assert [
        (line.split(": ")[1].rsplit("/", 1)[1], line.split(": ")[2]) for line in errors
    ] == expected
    assert lines[-1] == f"{root}: {len(expected)} error(s), 0 warning(s); not usable"


def test_json_nested_100000_deep_is_one_error(tmp_path):
    (tmp_path / "dataset.json").write_text("[" * 100_000 + "]" * 100_000)
    [problem] = validate_dataset(tmp_path)
    assert problem.is_error and "nested too deeply" in problem.message
    with pytest.raises(DataError, match="dataset.json: .*nested too deeply"):
        load_dataset(tmp_path)
