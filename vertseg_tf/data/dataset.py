"""The native dataset format (`dataset.json`, format `vertseg-dataset/1`): load and save.

The dataclasses mirror the JSON keys one to one. Keys this version does not know are kept in
`extra` and written back on save, so a round trip never loses a user's annotations.
Loading checks structure only (types, shapes); the content rules live in `validate`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vertseg_tf.errors import DataError

__all__ = [
    "DATASET_FILE",
    "FORMAT",
    "HARD_CONDITIONS",
    "SPLITS",
    "Dataset",
    "ImageRecord",
    "VertebraRecord",
    "dataset_from_json",
    "dataset_to_json",
    "load_dataset",
    "save_dataset",
]

FORMAT = "vertseg-dataset/1"
DATASET_FILE = "dataset.json"
HARD_CONDITIONS = ("fracture", "osteoporosis", "degenerative", "implant", "artefact")
SPLITS = ("train", "val", "test")

_VERTEBRA_KEYS = ("label", "center", "contour", "conditions")
_IMAGE_KEYS = ("id", "file", "split", "pixel_spacing_mm", "vertebrae")
_DATASET_KEYS = ("format", "images")


@dataclass
class VertebraRecord:
    """One annotated vertebra: its level, clicked centre and body outline, in image pixels.

    Args:
        label: spine level, e.g. "C3".
        center: (x, y) clicked centre; x = column, y = row.
        contour: (K, 2) float64 closed polygon, first point not repeated.
        conditions: clinical conditions (any of `HARD_CONDITIONS` marks a hard case).
        extra: JSON keys this version does not know, kept on save.
    """

    label: str
    center: np.ndarray
    contour: np.ndarray
    conditions: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_hard(self) -> bool:
        return any(c in HARD_CONDITIONS for c in self.conditions)


@dataclass
class ImageRecord:
    """One radiograph and its vertebrae.

    Args:
        id: unique image id.
        file: path relative to the dataset folder; must stay inside it.
        split: "train", "val" or "test".
        pixel_spacing_mm: (row, column) spacing in mm, or None when unknown.
        vertebrae: the annotated vertebrae, top to bottom.
        extra: JSON keys this version does not know, kept on save.
    """

    id: str
    file: str
    split: str = "train"
    pixel_spacing_mm: tuple[float, float] | None = None
    vertebrae: list[VertebraRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """A native dataset: the image records and the folder their files are relative to.

    Example:
        >>> ds = load_dataset("my_dataset")
        >>> train = ds.split("train")
    """

    images: list[ImageRecord] = field(default_factory=list)
    root: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[ImageRecord]:
        return [im for im in self.images if im.split == name]

    def image_path(self, record: ImageRecord) -> Path:
        """The absolute path of a record's file; refuses a path that leaves the dataset folder."""
        if self.root is None:
            raise DataError(record.file, "dataset has no root folder", field="file")
        return resolve_inside(self.root, record.file, field=f"images[{record.id}].file")


def resolve_inside(root: Path, relative: str, field: str) -> Path:
    """`root / relative`, resolved, or a DataError when it leaves `root`."""
    root = Path(root).resolve()
    if os.path.isabs(relative):
        raise DataError(root / DATASET_FILE, f"absolute path {relative!r} not allowed", field=field)
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise DataError(root / DATASET_FILE, f"path {relative!r} leaves the dataset folder", field=field)
    return path


def _points(value, source, where: str, shape_name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(source, f"{shape_name} must be numbers", field=where) from None
    return array


def _vertebra_from_json(obj, source, where: str) -> VertebraRecord:
    if not isinstance(obj, dict):
        raise DataError(source, "must be an object", field=where)
    for key in ("label", "center", "contour"):
        if key not in obj:
            raise DataError(source, f"missing key {key!r}", field=where)
    label = obj["label"]
    if not isinstance(label, str):
        raise DataError(source, "must be a string", field=f"{where}.label")
    center = _points(obj["center"], source, f"{where}.center", "center")
    if center.shape != (2,):
        raise DataError(source, "must be [x, y]", field=f"{where}.center")
    contour = _points(obj["contour"], source, f"{where}.contour", "contour")
    if contour.ndim != 2 or contour.shape[1] != 2:
        raise DataError(source, "must be a list of [x, y] points", field=f"{where}.contour")
    conditions = obj.get("conditions", [])
    if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
        raise DataError(source, "must be a list of strings", field=f"{where}.conditions")
    extra = {k: v for k, v in obj.items() if k not in _VERTEBRA_KEYS}
    return VertebraRecord(label, center, contour, list(conditions), extra)


def _image_from_json(obj, source, where: str) -> ImageRecord:
    if not isinstance(obj, dict):
        raise DataError(source, "must be an object", field=where)
    for key in ("id", "file"):
        if not isinstance(obj.get(key), str):
            raise DataError(source, f"{key!r} must be a string", field=f"{where}.{key}")
    split = obj.get("split", "train")
    if not isinstance(split, str):
        raise DataError(source, "must be a string", field=f"{where}.split")
    spacing = obj.get("pixel_spacing_mm")
    if spacing is not None:
        spacing_array = _points(spacing, source, f"{where}.pixel_spacing_mm", "pixel_spacing_mm")
        if spacing_array.shape != (2,):
            raise DataError(source, "must be [row_mm, col_mm]", field=f"{where}.pixel_spacing_mm")
        spacing = (float(spacing_array[0]), float(spacing_array[1]))
    vertebrae = obj.get("vertebrae", [])
    if not isinstance(vertebrae, list):
        raise DataError(source, "must be a list", field=f"{where}.vertebrae")
    records = [
        _vertebra_from_json(v, source, f"{where}.vertebrae[{i}]") for i, v in enumerate(vertebrae)
    ]
    extra = {k: v for k, v in obj.items() if k not in _IMAGE_KEYS}
    return ImageRecord(obj["id"], obj["file"], split, spacing, records, extra)


def dataset_from_json(obj, source="dataset.json", root: Path | None = None) -> Dataset:
    """Build a `Dataset` from parsed JSON; `source` names the file in error messages."""
    if not isinstance(obj, dict):
        raise DataError(source, "top level must be an object")
    if obj.get("format") != FORMAT:
        raise DataError(source, f"expected {FORMAT!r}, got {obj.get('format')!r}", field="format")
    images = obj.get("images")
    if not isinstance(images, list):
        raise DataError(source, "must be a list", field="images")
    records = [_image_from_json(im, source, f"images[{i}]") for i, im in enumerate(images)]
    extra = {k: v for k, v in obj.items() if k not in _DATASET_KEYS}
    return Dataset(records, root, extra)


def _vertebra_to_json(v: VertebraRecord) -> dict:
    out = {
        "label": v.label,
        "center": [float(c) for c in v.center],
        "contour": np.asarray(v.contour, dtype=np.float64).tolist(),
    }
    if v.conditions:
        out["conditions"] = list(v.conditions)
    out.update(v.extra)
    return out


def _image_to_json(im: ImageRecord) -> dict:
    out: dict[str, Any] = {"id": im.id, "file": im.file, "split": im.split}
    if im.pixel_spacing_mm is not None:
        out["pixel_spacing_mm"] = [float(s) for s in im.pixel_spacing_mm]
    out["vertebrae"] = [_vertebra_to_json(v) for v in im.vertebrae]
    out.update(im.extra)
    return out


def dataset_to_json(dataset: Dataset) -> dict:
    """The JSON object of a dataset, unknown keys included."""
    out = {"format": FORMAT, "images": [_image_to_json(im) for im in dataset.images]}
    out.update(dataset.extra)
    return out


def load_dataset(path) -> Dataset:
    """Load a native dataset from its folder (or its `dataset.json`).

    Raises:
        DataError: naming the file and field of the first structural problem.
    """
    path = Path(path)
    json_path = path if path.suffix == ".json" else path / DATASET_FILE
    if not json_path.is_file():
        raise DataError(json_path, "dataset file not found")
    try:
        obj = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(json_path, f"not valid JSON ({error})") from None
    return dataset_from_json(obj, source=json_path, root=json_path.parent)


def write_json_atomic(obj, path) -> None:
    """Write JSON to a temporary file beside `path`, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(obj, stream, indent=1)
            stream.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_dataset(dataset: Dataset, path) -> Path:
    """Write `dataset.json` into folder `path` atomically; returns the JSON file's path."""
    path = Path(path)
    json_path = path if path.suffix == ".json" else path / DATASET_FILE
    write_json_atomic(dataset_to_json(dataset), json_path)
    return json_path
