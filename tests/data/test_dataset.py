import json

import numpy as np
import pytest

from vertseg_tf.data import load_dataset, save_dataset
from vertseg_tf.data.dataset import FORMAT
from vertseg_tf.errors import DataError


def _dataset_json():
    return {
        "format": FORMAT,
        "site": "exeter",
        "images": [
            {
                "id": "img_0001",
                "file": "images/img_0001.png",
                "split": "train",
                "pixel_spacing_mm": [0.14, 0.1400000000000001],
                "scanner": {"vendor": "Agfa"},
                "vertebrae": [
                    {
                        "label": "C3",
                        "center": [412.5, 380.0],
                        "contour": [
                            [380.2, 350.1], [445.0, 352.3], [443.1, 410.7], [0.1 + 0.2, 1e-17]
                        ],
                        "conditions": ["fracture"],
                        "reader": "KK",
                    }
                ],
            }
        ],
    }


def test_round_trip_keeps_unknown_keys_and_exact_floats(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps(_dataset_json()))
    dataset = load_dataset(tmp_path)
    assert dataset.images[0].vertebrae[0].is_hard
    save_dataset(dataset, tmp_path / "copy")
    assert json.loads((tmp_path / "copy" / "dataset.json").read_text()) == _dataset_json()


def test_centres_without_an_outline_round_trip_and_are_read_per_level(tmp_path):
    obj = _dataset_json()
    obj["images"][0]["level_centers"] = {"C2": [410.25, 300.0], "T1": [0.1 + 0.2, 900.5]}
    (tmp_path / "dataset.json").write_text(json.dumps(obj))
    image = load_dataset(tmp_path).images[0]
    assert sorted(image.level_centers) == ["C2", "T1"] and "level_centers" not in image.extra
    np.testing.assert_array_equal(image.level_centers["T1"], [0.1 + 0.2, 900.5])
    save_dataset(load_dataset(tmp_path), tmp_path / "copy")
    assert json.loads((tmp_path / "copy" / "dataset.json").read_text()) == obj


def test_fields_mirror_json(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps(_dataset_json()))
    image = load_dataset(tmp_path / "dataset.json").images[0]
    assert (image.id, image.file, image.split) == ("img_0001", "images/img_0001.png", "train")
    vertebra = image.vertebrae[0]
    np.testing.assert_array_equal(vertebra.center, [412.5, 380.0])
    assert vertebra.contour.shape == (4, 2)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(format="other/1"), "format"),
        (
            lambda d: d["images"][0]["vertebrae"][0].update(center=[1.0]),
            "images[0].vertebrae[0].center",
        ),
        (
            lambda d: d["images"][0]["vertebrae"][0].update(contour=[1, 2, 3]),
            "images[0].vertebrae[0].contour",
        ),
        (lambda d: d["images"][0].pop("file"), "images[0].file"),
    ],
)
def test_structural_errors_name_file_and_field(tmp_path, mutate, field):
    obj = _dataset_json()
    mutate(obj)
    (tmp_path / "dataset.json").write_text(json.dumps(obj))
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    assert info.value.field == field
    assert "dataset.json" in str(info.value)


def test_path_leaving_dataset_is_refused(tmp_path):
    obj = _dataset_json()
    obj["images"][0]["file"] = "../outside.png"
    (tmp_path / "dataset.json").write_text(json.dumps(obj))
    dataset = load_dataset(tmp_path)
    with pytest.raises(DataError, match="leaves the dataset folder"):
        dataset.image_path(dataset.images[0])
