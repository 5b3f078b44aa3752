"""Import Labelme and COCO (as CVAT exports it) annotations into a native dataset folder.

Both importers read every annotation file and check every referenced image exists before they
write anything; an image path may not lead out of the annotation's folder (absolute, or
through ".."). The new dataset is then built in a hidden temporary folder beside the output
folder, checked with `validate_dataset` (its first error stops the import, named after the
annotation file and shape) and renamed into place, so an import that stops on an error leaves
nothing behind and never writes a dataset `vertseg-tf validate` rejects.

Coordinates: Labelme, COCO and CVAT put (0, 0) at the top-left *corner* of the top-left pixel,
while the native format puts it at that pixel's *centre* (see `dataset.py`). With the default
`pixel_origin="corner"` the importers subtract 0.5 from every coordinate; pass
`pixel_origin="center"` for tools whose integer coordinates already are pixel centres.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import atomic_dir, require_new_folder
from vertseg_tf.data.dataset import (
    COORDINATE_MARGIN_PX,
    SPINE_LEVELS,
    SPLITS,
    Dataset,
    ImageRecord,
    VertebraRecord,
    json_number_array,
    read_json_file,
    save_dataset,
    validate_dataset,
)
from vertseg_tf.data.options import PIXEL_ORIGINS
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.geometry import polygon_area, polygon_centroid

__all__ = ["PIXEL_ORIGINS", "import_coco", "import_labelme"]

_CENTER_SUFFIXES = ("_center", "_centre")


@dataclass
class _Outline:
    """One vertebra as read from the annotation file, before it becomes a `VertebraRecord`."""

    contour: np.ndarray | None = None
    center: np.ndarray | None = None
    field: str = ""
    center_field: str = ""


@dataclass
class _Annotated:
    """One image to import: where it is now and its outlines, keyed by spine level."""

    image: Path
    source: Path
    outlines: dict[str, _Outline] = field(default_factory=dict)
    # The split the source gives this image; None takes the importer's `split` option.
    split: str | None = None


def import_labelme(
    source,
    out,
    *,
    split: str = "train",
    link: bool = False,
    pixel_origin: str = "corner",
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Import Labelme JSON files (one file or a folder of them) as a native dataset.

    Each JSON file is one image: `imagePath` (relative to the JSON file) names it. Polygon
    shapes labelled with a spine level (C3..C7, or any of C1-C7, T1-T12, L1-L5, S1; case is
    ignored) are the outlines; an optional point shape labelled `C3_center` (or `C3_centre`)
    is that vertebra's clicked centre, otherwise the centre is the polygon's area centroid.
    Any other label or shape type stops the import with a `DataError` naming the file and
    shape, so no annotation is dropped silently.

    Args:
        source: a Labelme JSON file, or a folder whose `*.json` files are all Labelme files.
        out: the new dataset folder; must not exist or be empty unless `overwrite`.
        split: the split given to every imported image ("train", "val" or "test").
        link: hard-link the images into `out/images/` instead of copying them (they are
            copied when the folders are on different file systems).
        pixel_origin: "corner" (Labelme's convention: subtract 0.5) or "center".
        progress: optional `progress(done, total)` called after each image is placed.
        overwrite: replace an existing non-empty `out`.

    Returns:
        The written `Dataset` (its `root` is `out`).

    Raises:
        DataError: a broken annotation, a missing image, an image path leaving the source
            folder, or a result `validate_dataset` rejects; nothing written.
        ConfigError: an unknown `split` or `pixel_origin`, a non-empty `out` without
            `overwrite`.

    Example (needs annotation files, so not run as a doctest):
        >>> dataset = import_labelme(  # doctest: +SKIP
        ...     "labelme_project/", "my_dataset", split="train")
    """
    shift = _check_options(split, pixel_origin)
    source = Path(source)
    if source.is_dir():
        files = sorted(source.glob("*.json"))
        if not files:
            raise DataError(source, "no Labelme *.json files in this folder")
    elif source.is_file():
        files = [source]
    else:
        raise DataError(source, "annotation file or folder not found")
    annotated = [_read_labelme(path, shift) for path in files]
    return _write_dataset(annotated, Path(out), split, link, progress, overwrite)


def _read_labelme(path: Path, shift: float) -> _Annotated:
    obj = read_json_file(path, "annotation file")
    if not isinstance(obj, dict) or not isinstance(obj.get("shapes"), list):
        raise DataError(path, "not a Labelme file (no 'shapes' list)", field="shapes")
    image_path = obj.get("imagePath")
    if not isinstance(image_path, str) or not image_path:
        raise DataError(path, "must name the image file", field="imagePath")
    # Labelme on Windows writes backslashes.
    image_path = image_path.replace("\\", "/")
    annotated = _Annotated(_existing_image(path, [path.parent], image_path, "imagePath"), path)
    for index, shape in enumerate(obj["shapes"]):
        where = f"shapes[{index}]"
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            raise DataError(path, "must be an object with a string 'label'", field=where)
        points = _point_array(shape.get("points"), path, f"{where}.points") - shift
        level, is_center = _level_of(shape["label"], path, f"{where}.label")
        shape_type = shape.get("shape_type", "polygon")
        expected_type = "point" if is_center else "polygon"
        if shape_type != expected_type:
            raise DataError(
                path,
                f"label {shape['label']!r} needs a {expected_type} shape, got {shape_type!r}",
                field=f"{where}.shape_type",
            )
        _add_outline(annotated, level, points, is_center, path, where)
    return annotated


def import_coco(
    source,
    out,
    *,
    images_dir=None,
    split: str = "train",
    link: bool = False,
    pixel_origin: str = "corner",
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Import a COCO instance-segmentation JSON file (e.g. CVAT's "COCO 1.0" export).

    Categories named after a spine level (C3..C7, or any of C1-C7, T1-T12, L1-L5, S1; case
    is ignored) hold the outlines: each annotation's `segmentation` must be one polygon
    `[[x1, y1, x2, y2, ...]]` (RLE masks are refused). A category `C3_center` (or
    `C3_centre`) whose annotations carry COCO `keypoints` `[x, y, v]` gives the clicked
    centre; otherwise the centre is the polygon's area centroid. Annotations of other
    categories stop the import with a `DataError`. Images without annotations are skipped.

    Image files are looked up by `file_name` in `images_dir` when given, else beside the JSON
    file and then in `../images/` (CVAT's export layout: `annotations/instances_default.json`
    next to `images/`).

    Args:
        source: the COCO JSON file.
        out: the new dataset folder; must not exist or be empty unless `overwrite`.
        images_dir: folder the `file_name`s are relative to.
        split: the split given to every imported image ("train", "val" or "test").
        link: hard-link the images instead of copying them (copied across file systems).
        pixel_origin: "corner" (COCO's convention: subtract 0.5) or "center".
        progress: optional `progress(done, total)` called after each image is placed.
        overwrite: replace an existing non-empty `out`.

    Returns:
        The written `Dataset` (its `root` is `out`).

    Raises:
        DataError: a broken annotation, a missing image, an image path leaving the source
            folder, or a result `validate_dataset` rejects; nothing written.
        ConfigError: an unknown `split` or `pixel_origin`, a non-empty `out` without
            `overwrite`.

    Example (needs annotation files, so not run as a doctest):
        >>> dataset = import_coco(  # doctest: +SKIP
        ...     "export/annotations/instances_default.json", "my_dataset")
    """
    shift = _check_options(split, pixel_origin)
    source = Path(source)
    obj = read_json_file(source, "annotation file")
    if not isinstance(obj, dict):
        raise DataError(source, "top level must be an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(obj.get(key), list):
            raise DataError(source, "must be a list", field=key)
    folders = (
        [Path(images_dir)]
        if images_dir is not None
        else [source.parent, source.parent.parent / "images"]
    )
    categories = {}
    for index, category in enumerate(obj["categories"]):
        where = f"categories[{index}]"
        if not isinstance(category, dict) or not isinstance(category.get("name"), str):
            raise DataError(source, "must be an object with a string 'name'", field=where)
        categories[_coco_id(category.get("id"), source, f"{where}.id")] = category["name"]
    images = {}
    for index, image in enumerate(obj["images"]):
        where = f"images[{index}]"
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str):
            raise DataError(source, "must be an object with a string 'file_name'", field=where)
        images[_coco_id(image.get("id"), source, f"{where}.id")] = (
            image["file_name"], f"{where}.file_name"
        )
    annotated: dict[object, _Annotated] = {}
    for index, annotation in enumerate(obj["annotations"]):
        where = f"annotations[{index}]"
        if not isinstance(annotation, dict):
            raise DataError(source, "must be an object", field=where)
        image_id = _coco_id(annotation.get("image_id"), source, f"{where}.image_id")
        category_id = _coco_id(annotation.get("category_id"), source, f"{where}.category_id")
        if image_id not in images:
            raise DataError(source, f"unknown image_id {image_id!r}", field=f"{where}.image_id")
        if category_id not in categories:
            raise DataError(
                source, f"unknown category_id {category_id!r}", field=f"{where}.category_id"
            )
        level, is_center = _level_of(categories[category_id], source, f"{where}.category_id")
        if image_id not in annotated:
            file_name, file_field = images[image_id]
            annotated[image_id] = _Annotated(
                _existing_image(source, folders, file_name, file_field), source
            )
        points = _coco_points(annotation, is_center, source, where) - shift
        _add_outline(annotated[image_id], level, points, is_center, source, where)
    if not annotated:
        raise DataError(source, "no annotations to import", field="annotations")
    return _write_dataset(list(annotated.values()), Path(out), split, link, progress, overwrite)


def _coco_id(value, source: Path, where: str):
    """A COCO id: an integer or a string (JSON allows anything; a dict key needs a scalar)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DataError(source, f"must be an integer or a string, got {value!r}", field=where)
    return value


def _coco_points(annotation: dict, is_center: bool, source: Path, where: str) -> np.ndarray:
    if is_center:
        keypoints = annotation.get("keypoints")
        if not isinstance(keypoints, list) or len(keypoints) < 2:
            raise DataError(
                source, "a centre annotation needs keypoints [x, y, v]", field=f"{where}.keypoints"
            )
        return _point_array([keypoints[:2]], source, f"{where}.keypoints")
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict):
        raise DataError(
            source, "RLE masks are not supported; export polygons", field=f"{where}.segmentation"
        )
    if (
        not isinstance(segmentation, list)
        or len(segmentation) != 1
        or not isinstance(segmentation[0], list)
    ):
        count = len(segmentation) if isinstance(segmentation, list) else 0
        raise DataError(
            source,
            f"must be exactly one polygon [[x1, y1, ...]], got {count}",
            field=f"{where}.segmentation",
        )
    flat = segmentation[0]
    if len(flat) % 2:
        raise DataError(source, "odd number of coordinates", field=f"{where}.segmentation")
    return _point_array(
        [flat[i : i + 2] for i in range(0, len(flat), 2)], source, f"{where}.segmentation"
    )


def _check_options(split: str, pixel_origin: str) -> float:
    """Validate the shared options; returns the coordinate shift for `pixel_origin`."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if pixel_origin not in PIXEL_ORIGINS:
        raise ConfigError(
            f"unknown pixel_origin {pixel_origin!r}; expected one of {', '.join(PIXEL_ORIGINS)}"
        )
    return 0.5 if pixel_origin == "corner" else 0.0


def _existing_image(source: Path, folders: Iterable[Path], name: str, field_name: str) -> Path:
    """The first `folder / name` that is a file; `name` may not lead out of the folder.

    Containment is checked on the path as written (".." resolved, symbolic links not), so an
    annotation file can never make the import read, say, `/etc/passwd`; a link the user put
    into the source folder is followed as they meant.
    """
    folders = list(folders)
    if os.path.isabs(name) or os.path.normpath(name).split(os.sep)[0] == os.pardir:
        raise DataError(
            source,
            f"image {name!r} lies outside the annotation's folder; importers read only files "
            "inside it",
            field=field_name,
        )
    for folder in folders:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(folder) for folder in folders)
    raise DataError(source, f"image {name!r} not found (looked in {searched})", field=field_name)


def _point_array(value, source: Path, where: str) -> np.ndarray:
    points = json_number_array(value, source, where, "[x, y] points")
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise DataError(source, "must be a list of finite [x, y] numbers", field=where)
    if np.abs(points).max(initial=0.0) > COORDINATE_MARGIN_PX:
        raise DataError(
            source, f"coordinates must lie within +/-{COORDINATE_MARGIN_PX:g} px", field=where
        )
    return points


def _level_of(label: str, source: Path, where: str) -> tuple[str, bool]:
    """The spine level a label names and whether it is a centre label (`C3_center`)."""
    name = label.strip()
    suffix = next((s for s in _CENTER_SUFFIXES if name.lower().endswith(s)), "")
    level = name[: len(name) - len(suffix)].upper()
    if level not in SPINE_LEVELS:
        raise DataError(
            source,
            f"label {label!r} is neither a spine level (C1-C7, T1-T12, L1-L5, S1) nor LEVEL_center",
            field=where,
        )
    return level, bool(suffix)


def _add_outline(
    annotated: _Annotated, level: str, points: np.ndarray, is_center: bool, source, where
):
    outline = annotated.outlines.setdefault(level, _Outline(field=where))
    if is_center:
        if len(points) != 1:
            raise DataError(source, f"a centre is one point, got {len(points)}", field=where)
        if outline.center is not None:
            raise DataError(source, f"second centre for {level}", field=where)
        outline.center = points[0]
        outline.center_field = where
    else:
        if outline.contour is not None:
            raise DataError(source, f"second outline for {level}", field=where)
        outline.contour = points
        outline.field = where


def _vertebra(level: str, outline: _Outline, source: Path) -> VertebraRecord:
    if outline.contour is None:
        raise DataError(source, f"centre for {level} but no {level} outline", field=outline.field)
    center = outline.center
    if center is None:
        if polygon_area(outline.contour) == 0.0:
            raise DataError(
                source,
                f"{level} outline encloses no area, so it has no centroid",
                field=outline.field,
            )
        center = polygon_centroid(outline.contour)
    return VertebraRecord(level, np.asarray(center, dtype=np.float64), outline.contour)


def _write_dataset(
    annotated: list[_Annotated], out: Path, split: str, link: bool, progress, overwrite: bool
):
    require_new_folder(out, overwrite=overwrite)
    records, placements, taken = [], [], set()
    for item in annotated:
        order = sorted(item.outlines, key=SPINE_LEVELS.index)
        vertebrae = [_vertebra(level, item.outlines[level], item.source) for level in order]
        stem = _unique_stem(item.image.stem, taken)
        file = f"images/{stem}{item.image.suffix.lower()}"
        records.append(ImageRecord(stem, file, item.split or split, None, vertebrae))
        placements.append((item.image, file))
    with atomic_dir(out, replace=overwrite) as building:
        (building / "images").mkdir()
        for done, (image, file) in enumerate(placements, start=1):
            _place(image, building / file, link)
            if progress is not None:
                progress(done, len(placements))
        save_dataset(Dataset(records), building)
        _refuse_invalid(building, annotated, records)
    return Dataset(records, out)


_IMPORTED_FIELD = re.compile(r"images\[(\d+)\](?:\.vertebrae\[(\d+)\](\.center)?)?")


def _refuse_invalid(folder: Path, annotated: list[_Annotated], records: list[ImageRecord]):
    """Stop with the first error `validate_dataset` finds in the dataset being built, named
    after the annotation file and shape it came from, so no import writes a dataset that
    `vertseg-tf validate` rejects."""
    errors = [problem for problem in validate_dataset(folder) if problem.is_error]
    if not errors:
        return
    first = errors[0]
    match = _IMPORTED_FIELD.match(first.field or "")
    if match is None:
        raise DataError(folder / first.file, first.message, field=first.field)
    image_index = int(match[1])
    item, field = annotated[image_index], None
    if match[2] is not None:
        outline = item.outlines[records[image_index].vertebrae[int(match[2])].label]
        field = outline.center_field if match[3] and outline.center_field else outline.field
    raise DataError(item.source, f"{first.message} (imported as {first.field})", field=field)


def _unique_stem(stem: str, taken: set[str]) -> str:
    candidate, number = stem, 1
    while candidate in taken:
        number += 1
        candidate = f"{stem}_{number}"
    taken.add(candidate)
    return candidate


def _place(image: Path, target: Path, link: bool) -> None:
    """Copy, or hard-link, `image` to `target`.

    A hard link needs one file system; across two the image is copied. A symbolic link would
    point out of the dataset folder, which `validate_dataset` rightly refuses.
    """
    if link:
        try:
            os.link(image, target)
            return
        except OSError:
            pass
    shutil.copy2(image, target)
