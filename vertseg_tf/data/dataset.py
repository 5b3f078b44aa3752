"""The native dataset format (`dataset.json`, format `vertseg-dataset/1`): load, save, validate.

The dataclasses mirror the JSON keys one to one. Keys this version does not know are kept in
`extra` and written back on save, so a round trip never loses a user's annotations.
Loading checks structure only (types, shapes) and stops at the first problem;
`validate_dataset` checks the content rules and reports every problem.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vertseg_tf.atomic import write_json_atomic
from vertseg_tf.data.images import read_image
from vertseg_tf.data.options import SPLITS
from vertseg_tf.errors import DataError
from vertseg_tf.geometry import inside_image, point_in_polygon, polygon_is_simple

__all__ = [
    "COORDINATE_MARGIN_PX",
    "DATASET_FILE",
    "FORMAT",
    "HARD_CONDITIONS",
    "SEVERITIES",
    "SPINE_LEVELS",
    "SPLITS",
    "Dataset",
    "ImageRecord",
    "Problem",
    "VertebraRecord",
    "dataset_from_json",
    "dataset_to_json",
    "json_number_array",
    "load_dataset",
    "read_json_file",
    "require_valid_dataset",
    "save_dataset",
    "validate_dataset",
]

FORMAT = "vertseg-dataset/1"
DATASET_FILE = "dataset.json"
HARD_CONDITIONS = (
    "fracture", "osteoporosis", "degenerative", "implant", "artefact", "listhesis",
)
COORDINATE_MARGIN_PX = 1e7
"""How far outside the image a contour point may lie before it is an error, not a warning."""

_VERTEBRA_KEYS = ("label", "center", "contour", "conditions")
_IMAGE_KEYS = ("id", "file", "split", "pixel_spacing_mm", "vertebrae", "level_centers")
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
        level_centers: level -> (x, y) centre of a level annotated without an outline (the
            synthetic generator's C2 and T1, which the locator learns to find).
    """

    id: str
    file: str
    split: str = "train"
    pixel_spacing_mm: tuple[float, float] | None = None
    vertebrae: list[VertebraRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    level_centers: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Dataset:
    """A native dataset: the image records and the folder their files are relative to.

    Example (needs a dataset folder, so not run as a doctest):
        >>> ds = load_dataset("my_dataset")  # doctest: +SKIP
        >>> train = ds.split("train")  # doctest: +SKIP
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
        raise DataError(
            root / DATASET_FILE, f"path {relative!r} leaves the dataset folder", field=field
        )
    return path


def _only_json_numbers(value) -> bool:
    """Whether `value` is a number or nested lists of numbers; a bool or a string is none.

    Walks an explicit stack, so a hostile file nested 100,000 lists deep costs no recursion.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, int | float):
            return False
    return True


def json_number_array(value, source, where: str, shape_name: str) -> np.ndarray:
    """`value` (a JSON number or nested lists of them) as a float64 array, else a DataError.

    A string or a boolean is not a number, however it reads; an integer beyond the float
    range is refused too. Every reader of coordinates in JSON files goes through here.

    Example:
        >>> json_number_array([[1, 2], [3.5, 4]], "a.json", "shapes[0].points", "points").shape
        (2, 2)
    """
    if not _only_json_numbers(value):
        raise DataError(source, f"{shape_name} must be JSON numbers", field=where)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(
            source, f"{shape_name} must be JSON numbers within the float range", field=where
        ) from None
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
    center = json_number_array(obj["center"], source, f"{where}.center", "center")
    if center.shape != (2,):
        raise DataError(source, "must be [x, y]", field=f"{where}.center")
    contour = json_number_array(obj["contour"], source, f"{where}.contour", "contour")
    if contour.ndim != 2 or contour.shape[1] != 2:
        raise DataError(source, "must be a list of [x, y] points", field=f"{where}.contour")
    conditions = obj.get("conditions", [])
    if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
        raise DataError(source, "must be a list of strings", field=f"{where}.conditions")
    extra = {k: v for k, v in obj.items() if k not in _VERTEBRA_KEYS}
    return VertebraRecord(label, center, contour, list(conditions), extra)


def _image_header_from_json(obj, source, where: str) -> ImageRecord:
    """An image record without its vertebrae (checks that `vertebrae` is a list)."""
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
        spacing_array = json_number_array(
            spacing, source, f"{where}.pixel_spacing_mm", "pixel_spacing_mm"
        )
        if spacing_array.shape != (2,):
            raise DataError(source, "must be [row_mm, col_mm]", field=f"{where}.pixel_spacing_mm")
        spacing = (float(spacing_array[0]), float(spacing_array[1]))
    if not isinstance(obj.get("vertebrae", []), list):
        raise DataError(source, "must be a list", field=f"{where}.vertebrae")
    extra = {k: v for k, v in obj.items() if k not in _IMAGE_KEYS}
    return ImageRecord(obj["id"], obj["file"], split, spacing, [], extra,
                       _level_centers_from_json(obj.get("level_centers", {}), source, where))


def _level_centers_from_json(obj, source, where: str) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise DataError(source, "must be an object of level: [x, y]",
                        field=f"{where}.level_centers")
    centers = {}
    for label, value in obj.items():
        field_name = f"{where}.level_centers.{label}"
        center = json_number_array(value, source, field_name, "center")
        if center.shape != (2,):
            raise DataError(source, "must be [x, y]", field=field_name)
        centers[label] = center
    return centers


def _image_from_json(obj, source, where: str) -> ImageRecord:
    record = _image_header_from_json(obj, source, where)
    record.vertebrae = [
        _vertebra_from_json(v, source, f"{where}.vertebrae[{i}]")
        for i, v in enumerate(obj.get("vertebrae", []))
    ]
    return record


def _images_json(obj, source) -> list:
    """The `images` list of a parsed `dataset.json`, after checking the top level and format."""
    if not isinstance(obj, dict):
        raise DataError(source, "top level must be an object")
    if obj.get("format") != FORMAT:
        raise DataError(source, f"expected {FORMAT!r}, got {obj.get('format')!r}", field="format")
    images = obj.get("images")
    if not isinstance(images, list):
        raise DataError(source, "must be a list", field="images")
    return images


def dataset_from_json(obj, source="dataset.json", root: Path | None = None) -> Dataset:
    """Build a `Dataset` from parsed JSON; `source` names the file in error messages."""
    images = _images_json(obj, source)
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
    if im.level_centers:
        out["level_centers"] = {label: [float(c) for c in center]
                                for label, center in im.level_centers.items()}
    out.update(im.extra)
    return out


def dataset_to_json(dataset: Dataset) -> dict:
    """The JSON object of a dataset, unknown keys included."""
    out = {"format": FORMAT, "images": [_image_to_json(im) for im in dataset.images]}
    out.update(dataset.extra)
    return out


def _dataset_json_path(path) -> Path:
    path = Path(path)
    return path if path.suffix == ".json" else path / DATASET_FILE


def read_json_file(path: Path, what: str) -> Any:
    """The parsed content of JSON file `path`, or a `DataError` naming the file.

    Args:
        path: the JSON file.
        what: what the file is, for the messages ("dataset file" gives "dataset file not
            found" and "cannot read dataset file (...)").

    Returns:
        The decoded JSON value.

    Raises:
        DataError: `path` is not a file, cannot be read, is not valid UTF-8 JSON, or nests
            deeper than Python's recursion limit.

    Example (needs an annotation file, so not run as a doctest):
        >>> obj = read_json_file(Path("project/a.json"), "annotation file")  # doctest: +SKIP
    """
    if not path.is_file():
        raise DataError(path, f"{what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(path, f"cannot read {what} ({error.strerror or error})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(path, f"not valid JSON ({error})") from None
    except RecursionError:
        raise DataError(path, "not usable JSON: lists or objects nested too deeply") from None


def load_dataset(path) -> Dataset:
    """Load a native dataset from its folder (or its `dataset.json`).

    Loading checks structure only and stops at the first problem; `validate_dataset` checks
    the content rules and reports every problem.

    Args:
        path: the dataset folder, or its `dataset.json`.

    Returns:
        The `Dataset`, with `root` set to the folder holding `dataset.json`.

    Raises:
        DataError: naming the file and field of the first structural problem.

    Example (needs a dataset folder, so not run as a doctest):
        >>> dataset = load_dataset("runs/synthetic")  # doctest: +SKIP
        >>> train = dataset.split("train")  # doctest: +SKIP
    """
    json_path = _dataset_json_path(path)
    return dataset_from_json(
        read_json_file(json_path, "dataset file"), source=json_path, root=json_path.parent
    )


def save_dataset(dataset: Dataset, path) -> Path:
    """Write `dataset.json` into folder `path` atomically; returns the JSON file's path."""
    json_path = _dataset_json_path(path)
    write_json_atomic(dataset_to_json(dataset), json_path)
    return json_path


SPINE_LEVELS = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    "S1",
)
SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Problem:
    """One finding of `validate_dataset`.

    `str(problem)` is one line, `SEVERITY: FILE: FIELD: PROBLEM` (FIELD is left out when the
    problem concerns the whole file), e.g.
    `error: data/images/a.png: images[2].vertebrae[0].center: has NaN or infinite coordinates`.

    Args:
        file: the image file the problem belongs to (the dataset folder as given, joined with
            the image's `file` entry), or the `dataset.json` for problems that belong to no
            single image.
        field: where in `dataset.json`, e.g. `images[2].vertebrae[0].center`, or None.
        message: what is wrong, in words.
        severity: "error" (the dataset cannot be used as it is) or "warning" (usable, but
            probably a mistake).
    """

    file: str
    field: str | None
    message: str
    severity: str = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        return ": ".join(
            [self.severity, self.file, *([self.field] if self.field else []), self.message]
        )


class _StopAtFirstError(Exception):
    """Ends `validate_dataset(strict=True)` once the first error is recorded."""


class _Findings:
    def __init__(self, strict: bool):
        self.problems: list[Problem] = []
        self.strict = strict

    def add(self, file, field: str | None, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(str(file), field, message, severity))
        if self.strict and severity == "error":
            raise _StopAtFirstError

    def warn(self, file, field: str | None, message: str) -> None:
        self.add(file, field, message, "warning")


def validate_dataset(
    path, *, strict: bool = False, progress: Callable[[int, int], None] | None = None
) -> list[Problem]:
    """Check a native dataset against every rule of the format and report all problems.

    Unlike `load_dataset`, parsing is lenient: a structurally broken image or vertebra is
    reported and the rest is still checked. Each image file is decoded once.

    Errors: `dataset.json` missing, not JSON, wrong `format`, or structurally broken
    (missing keys, wrong types or shapes); duplicate image `id`; `split` not train/val/test;
    `pixel_spacing_mm` not positive and finite; image `file` absolute, leaving the dataset
    folder, missing or not decodable; vertebra `label` not a spine level (C1-C7, T1-T12,
    L1-L5, S1) or repeated within its image; coordinates or spacings that are not JSON
    numbers (a string or a boolean is not one); `contour` with NaN/infinite coordinates,
    fewer than 3 distinct points, all on one line, or points more than
    `COORDINATE_MARGIN_PX` outside the image; `center` NaN/infinite or outside the image.

    Warnings: no images; an image with no vertebrae; two records sharing one image file;
    `pixel_spacing_mm` disagreeing with the DICOM's own spacing; vertebrae not listed top to
    bottom; `contour` repeating its first point at the end, self-intersecting, or with points
    outside the image; `center` outside its own contour; unknown `conditions`.

    Args:
        path: the dataset folder, or its `dataset.json`.
        strict: stop at the first error (the warnings found before it are kept).
        progress: optional `progress(done, total)` called after each image.

    Returns:
        The problems in file order; the dataset is usable when none has severity "error".

    Example (needs a dataset folder, so not run as a doctest):
        >>> problems = validate_dataset("runs/synthetic")  # doctest: +SKIP
        >>> for problem in problems:  # doctest: +SKIP
        ...     print(problem)
        >>> ok = not any(p.is_error for p in problems)  # doctest: +SKIP
    """
    findings = _Findings(strict)
    try:
        _validate_dataset_json(_dataset_json_path(path), findings, progress)
    except _StopAtFirstError:
        pass
    return findings.problems


def require_valid_dataset(
    path, *, warn: Callable[[str], None] | None = None, progress=None
) -> list[Problem]:
    """The check `train`, `eval` and `segment` run before any work: `validate_dataset`.

    The rules are exactly those of `vertseg-tf validate`. Warnings are shown and the work
    goes on; the first error stops it.

    Args:
        path: the dataset folder, or its `dataset.json`.
        warn: called with each warning's line (`str(problem)`); default: print it to stderr.
        progress: optional `progress(done, total)` called after each image.

    Returns:
        The warnings.

    Raises:
        DataError: the first error, naming its file and field, with the count of the others.

    Example (needs a dataset folder, so not run as a doctest):
        >>> warnings = require_valid_dataset("runs/synthetic")  # doctest: +SKIP
    """
    problems = validate_dataset(path, progress=progress)
    errors = [problem for problem in problems if problem.is_error]
    warnings = [problem for problem in problems if not problem.is_error]
    for problem in warnings:
        if warn is None:
            print(problem, file=sys.stderr)
        else:
            warn(str(problem))
    if errors:
        first = errors[0]
        more = (
            f" (and {len(errors) - 1} more error(s); see 'vertseg-tf validate {path}')"
            if len(errors) > 1
            else ""
        )
        raise DataError(first.file, first.message + more, field=first.field)
    return warnings


def _validate_dataset_json(json_path: Path, findings: _Findings, progress) -> None:
    try:
        images = _images_json(read_json_file(json_path, "dataset file"), json_path)
    except DataError as error:
        findings.add(json_path, error.field, error.problem)
        return
    if not images:
        findings.warn(json_path, "images", "the dataset has no images")
    index_of_id: dict[str, int] = {}
    shape_of_file: dict[Path, tuple[int, tuple[int, int] | None]] = {}
    for index, image_json in enumerate(images):
        _validate_image(image_json, index, json_path, findings, index_of_id, shape_of_file)
        if progress is not None:
            progress(index + 1, len(images))


def _validate_image(
    obj, index: int, json_path: Path, findings: _Findings, index_of_id, shape_of_file
):
    where = f"images[{index}]"
    try:
        record = _image_header_from_json(obj, json_path, where)
    except DataError as error:
        findings.add(json_path, error.field, error.problem)
        return
    image_file = json_path.parent / record.file
    if record.id in index_of_id:
        findings.add(
            image_file,
            f"{where}.id",
            f"duplicate id {record.id!r} (also images[{index_of_id[record.id]}])",
        )
    index_of_id.setdefault(record.id, index)
    if record.split not in SPLITS:
        findings.add(
            image_file,
            f"{where}.split",
            f"unknown split {record.split!r}; expected one of {', '.join(SPLITS)}",
        )
    spacing = record.pixel_spacing_mm
    if spacing is not None and not all(np.isfinite(s) and s > 0 for s in spacing):
        findings.add(
            image_file,
            f"{where}.pixel_spacing_mm",
            f"must be positive and finite, got {list(spacing)}",
        )
        spacing = None
    shape = _decoded_shape(
        record, index, json_path.parent, image_file, findings, shape_of_file, spacing
    )

    vertebra_jsons = obj.get("vertebrae", [])
    if not vertebra_jsons:
        findings.warn(image_file, f"{where}.vertebrae", "no vertebrae annotated")
    index_of_label: dict[str, int] = {}
    for vertebra_index, vertebra_json in enumerate(vertebra_jsons):
        vertebra_where = f"{where}.vertebrae[{vertebra_index}]"
        try:
            vertebra = _vertebra_from_json(vertebra_json, json_path, vertebra_where)
        except DataError as error:
            findings.add(image_file, error.field, error.problem)
            continue
        if vertebra.label not in SPINE_LEVELS:
            findings.add(
                image_file,
                f"{vertebra_where}.label",
                f"unknown label {vertebra.label!r}; "
                "expected a spine level C1-C7, T1-T12, L1-L5 or S1",
            )
        elif vertebra.label in index_of_label:
            findings.add(
                image_file,
                f"{vertebra_where}.label",
                f"{vertebra.label} appears twice in this image "
                f"(also vertebrae[{index_of_label[vertebra.label]}])",
            )
        index_of_label.setdefault(vertebra.label, vertebra_index)
        _validate_vertebra(vertebra, vertebra_where, image_file, shape, findings)
    _validate_level_centers(record, where, image_file, shape, set(index_of_label), findings)
    levels = [SPINE_LEVELS.index(label) for label in index_of_label if label in SPINE_LEVELS]
    if levels != sorted(levels):
        order = ", ".join(label for label in index_of_label if label in SPINE_LEVELS)
        findings.warn(image_file, f"{where}.vertebrae", f"not listed top to bottom ({order})")


def _validate_level_centers(record, where, image_file, shape, outlined, findings):
    """A centre without an outline names a spine level not also outlined, finite, on the image."""
    for label, center in record.level_centers.items():
        field_name = f"{where}.level_centers.{label}"
        if label not in SPINE_LEVELS:
            findings.add(image_file, field_name, f"unknown label {label!r}; "
                         "expected a spine level C1-C7, T1-T12, L1-L5 or S1")
        elif label in outlined:
            findings.add(image_file, field_name, f"{label} is also an outlined vertebra")
        if not np.all(np.isfinite(center)):
            findings.add(image_file, field_name, "must be finite")
        elif shape is not None and not inside_image(center[None], shape)[0]:
            findings.add(image_file, field_name, f"({center[0]:g}, {center[1]:g}) lies "
                         f"outside the {shape[1]} x {shape[0]} image")


def _decoded_shape(record, index, root, image_file, findings, shape_of_file, spacing):
    """Decode the record's image once per file; its (H, W), or None when it cannot be read."""
    where = f"images[{index}]"
    try:
        resolved = resolve_inside(root, record.file, field=f"{where}.file")
    except DataError as error:
        findings.add(image_file, error.field, error.problem)
        return None
    if resolved in shape_of_file:
        first_index, shape = shape_of_file[resolved]
        findings.warn(image_file, f"{where}.file", f"same image file as images[{first_index}]")
        return shape
    shape_of_file[resolved] = (index, None)
    try:
        _, meta = read_image(resolved)
    except DataError as error:
        problem = f"{error.field}: {error.problem}" if error.field else error.problem
        findings.add(image_file, f"{where}.file", problem)
        return None
    shape_of_file[resolved] = (index, meta["shape"])
    stored_spacing = meta.get("pixel_spacing_mm")
    if (
        spacing is not None
        and stored_spacing is not None
        and not np.allclose(spacing, stored_spacing, rtol=1e-6)
    ):
        findings.warn(
            image_file,
            f"{where}.pixel_spacing_mm",
            f"{list(spacing)} differs from the image file's own spacing {list(stored_spacing)}",
        )
    return meta["shape"]


def _validate_vertebra(
    vertebra: VertebraRecord, where: str, image_file: Path, shape, findings: _Findings
):
    contour = vertebra.contour
    contour_usable = False
    far = 0
    if shape is not None and np.isfinite(contour).all():
        far = np.count_nonzero(~_inside_image(contour, shape, COORDINATE_MARGIN_PX))
    if not np.isfinite(contour).all():
        findings.add(image_file, f"{where}.contour", "has NaN or infinite coordinates")
    elif far:
        findings.add(
            image_file,
            f"{where}.contour",
            f"{far} of {len(contour)} points lie more than {COORDINATE_MARGIN_PX:g} px "
            "outside the image",
        )
    else:
        distinct = len(np.unique(contour, axis=0)) if len(contour) else 0
        if distinct < 3:
            findings.add(
                image_file,
                f"{where}.contour",
                f"{distinct} distinct points, a polygon needs at least 3",
            )
        elif np.linalg.matrix_rank(contour - contour[0]) < 2:
            findings.add(
                image_file,
                f"{where}.contour",
                "all points lie on one line: the polygon encloses no area",
            )
        else:
            contour_usable = True
    if contour_usable:
        if np.array_equal(contour[0], contour[-1]):
            findings.warn(
                image_file,
                f"{where}.contour",
                "repeats its first point at the end; the polygon closes by itself",
            )
        if _self_intersects(contour):
            findings.warn(image_file, f"{where}.contour", "self-intersecting outline")
        if shape is not None:
            outside = np.count_nonzero(~inside_image(contour, shape))
            if outside:
                findings.warn(
                    image_file,
                    f"{where}.contour",
                    f"{outside} of {len(contour)} points lie outside the image",
                )
    center = vertebra.center
    if not np.isfinite(center).all():
        findings.add(image_file, f"{where}.center", "has NaN or infinite coordinates")
    else:
        if shape is not None and not inside_image(center[None], shape)[0]:
            findings.add(
                image_file,
                f"{where}.center",
                f"({center[0]:g}, {center[1]:g}) lies outside the {shape[1]} x {shape[0]} image",
            )
        elif contour_usable and not point_in_polygon(center, contour):
            findings.warn(image_file, f"{where}.center", "lies outside its own contour")
    unknown = [c for c in vertebra.conditions if c not in HARD_CONDITIONS]
    if unknown:
        findings.warn(
            image_file,
            f"{where}.conditions",
            f"unknown condition(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(HARD_CONDITIONS)}",
        )


def _self_intersects(contour: np.ndarray) -> bool:
    """Whether two non-adjacent edges of the closed polygon cross or touch."""
    # A repeated consecutive point makes a zero-length edge that would "touch" its neighbours.
    points = contour[np.any(contour != np.roll(contour, -1, axis=0), axis=1)]
    return len(points) >= 4 and not polygon_is_simple(points)


def _inside_image(points: np.ndarray, shape, margin: float = 0.0) -> np.ndarray:
    """Pixel centres are integers, so the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5];
    `margin` widens that box on every side."""
    height, width = shape
    low = -0.5 - margin
    x, y = points[:, 0], points[:, 1]
    return (x >= low) & (x <= width - 0.5 + margin) & (y >= low) & (y <= height - 0.5 + margin)
