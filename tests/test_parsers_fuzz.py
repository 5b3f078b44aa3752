"""Property-based fuzzing of every parser of user files (hypothesis, seeded and bounded).

The property, for any input: a clean result, or the project's own `DataError` /
`ConfigError` whose message names the file (or the option) the input came from; never any
other exception. Inputs start from a valid document with random subtrees replaced by random
JSON (or TOML) values, so the fuzzing reaches past the first type check.

`derandomize=True` makes every run try the same examples. The default suite tries a few
dozen per parser (seconds); the `slow` variants try many more.
"""

import json
import math
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vertseg_tf.data.dataset import FORMAT, load_dataset, validate_dataset
from vertseg_tf.data.importers import import_coco, import_labelme
from vertseg_tf.deploy.inference import parse_centers, read_centers_file
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.training.config import load_config

FAST, THOROUGH = 25, 200
HEIGHT, WIDTH = 12, 16


def _settings(examples: int):
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _paths(obj, prefix=()):
    """Every (path, value) in a JSON document, the root included."""
    yield prefix, obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated(draw, document):
    """`document` with one to three random subtrees replaced by random JSON."""
    obj = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 3))):
        paths = [path for path, _ in _paths(obj)]
        path = draw(st.sampled_from(paths))
        value = draw(JSON_VALUES)
        if not path:
            obj = value
            continue
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    return obj


def _names_the_source(error, source) -> bool:
    return str(source) in str(error) or bool(getattr(error, "field", None))


def _image(folder: Path, name="a.png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), np.full((HEIGHT, WIDTH), 100, np.uint8))


SQUARE = [[2, 2], [8, 2], [8, 6], [2, 6]]
GOOD_DATASET = {
    "format": FORMAT,
    "images": [
        {
            "id": "a",
            "file": "images/a.png",
            "split": "train",
            "pixel_spacing_mm": [0.1, 0.1],
            "vertebrae": [
                {"label": "C3", "center": [5, 4], "contour": SQUARE, "conditions": ["fracture"]}
            ],
        }
    ],
}


def _dataset_property(examples):
    @_settings(examples)
    @given(obj=mutated(GOOD_DATASET))
    def check(obj):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            _image(root / "images")
            json_path = root / "dataset.json"
            json_path.write_text(json.dumps(obj, allow_nan=True))
            try:
                load_dataset(root)
            except DataError as error:
                assert error.file == str(json_path), error
                assert _names_the_source(error, json_path)
            problems = validate_dataset(root)
            for problem in problems:
                assert problem.file and problem.severity in ("error", "warning")
                assert problem.message and "\n" not in str(problem)

    return check


test_dataset_parsers_fuzz = _dataset_property(FAST)
test_dataset_parsers_fuzz_thorough = pytest.mark.slow(_dataset_property(THOROUGH))


GOOD_LABELME = {
    "version": "5.4.1",
    "imagePath": "a.png",
    "shapes": [
        {"label": "C3", "points": SQUARE, "shape_type": "polygon"},
        {"label": "C3_center", "points": [[5, 4]], "shape_type": "point"},
    ],
}


def _importer_property(run, document, source_name: str, examples: int):
    """Fuzz the importer `run` with mutations of `document`, written to `source_name` (a path
    in a fresh folder) beside the `a.png` the document names."""

    @_settings(examples)
    @given(obj=mutated(document))
    def check(obj):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            source, out = root / source_name, root / "out"
            _image(source.parent)
            source.write_text(json.dumps(obj, allow_nan=True))
            try:
                run(source, out)
            except (DataError, ConfigError) as error:
                assert _names_the_source(error, source), error
                assert not out.exists()
                return
            # An import that succeeds has written a dataset validate accepts.
            assert not [p for p in validate_dataset(out) if p.is_error]

    return check


LABELME_SOURCE = "src/a.json"
test_labelme_importer_fuzz = _importer_property(import_labelme, GOOD_LABELME, LABELME_SOURCE, FAST)
test_labelme_importer_fuzz_thorough = pytest.mark.slow(
    _importer_property(import_labelme, GOOD_LABELME, LABELME_SOURCE, THOROUGH)
)


GOOD_COCO = {
    "images": [{"id": 1, "file_name": "a.png", "width": WIDTH, "height": HEIGHT}],
    "categories": [{"id": 1, "name": "C3"}, {"id": 2, "name": "C3_center"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[2, 2, 8, 2, 8, 6, 2, 6]]},
        {"id": 2, "image_id": 1, "category_id": 2, "keypoints": [5, 4, 2]},
    ],
}


COCO_SOURCE = "export/instances.json"
test_coco_importer_fuzz = _importer_property(import_coco, GOOD_COCO, COCO_SOURCE, FAST)
test_coco_importer_fuzz_thorough = pytest.mark.slow(
    _importer_property(import_coco, GOOD_COCO, COCO_SOURCE, THOROUGH)
)


NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "", " ", "1,2", "x", "0x10", "1_0"]),
)
CENTRES_TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(st.tuples(NUMBER_TEXT, st.sampled_from([",", " ", ";", ",,"]), NUMBER_TEXT),
             max_size=5).map(lambda pairs: ";".join(f"{x}{sep}{y}" for x, sep, y in pairs)),
)


def _centres_property(examples):
    @_settings(examples)
    @given(text=CENTRES_TEXT, listed=mutated([[10, 20], [12.5, 40]]))
    def check(text, listed):
        try:
            points = parse_centers(text)
        except DataError as error:
            assert error.file == "--centers", error
        else:
            assert points.ndim == 2 and points.shape[1] == 2 and np.isfinite(points).all()
        with tempfile.TemporaryDirectory() as folder:
            for name, content in (("c.json", json.dumps(listed, allow_nan=True)), ("c.txt", text)):
                path = Path(folder) / name
                path.write_text(content)
                try:
                    points = read_centers_file(path)
                except DataError as error:
                    assert error.file == str(path), error
                else:
                    assert points.shape[1:] == (2,) and np.isfinite(points).all()

    return check


test_centres_parsers_fuzz = _centres_property(FAST)
test_centres_parsers_fuzz_thorough = pytest.mark.slow(_centres_property(THOROUGH))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(
            value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


TOML_VALUES = st.recursive(
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3),
    max_leaves=6,
)
CONFIG_KEYS = st.sampled_from(
    ["method", "epochs", "batch_size", "learning_rate", "shape_weight", "e_mode", "seed",
     "loop", "strategy", "augment", "model", "mixed_precision", "max_train_patches",
     "checkpoint_every_steps", "validation_fraction", "unknown_key"]
)
CONFIG_TEXT = st.one_of(
    st.dictionaries(CONFIG_KEYS, TOML_VALUES, max_size=5).map(
        lambda table: "".join(f"{key} = {_toml_value(value)}\n" for key, value in table.items())
    ),
    st.text(max_size=60),
)


def _config_property(examples):
    @_settings(examples)
    @given(text=CONFIG_TEXT)
    def check(text):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "run.toml"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            try:
                load_config(path)
            except ConfigError as error:
                assert str(path) in str(error), error

    return check


test_config_loader_fuzz = _config_property(FAST)
test_config_loader_fuzz_thorough = pytest.mark.slow(_config_property(THOROUGH))
