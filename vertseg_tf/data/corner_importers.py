"""Import public spine X-ray sets annotated with vertebral-body corners (AASCE 2019, BUU-LSPINE).

Both sets mark each vertebral body by its four corners, not by an outline. The importers make
the outline from the corners and the centre from their mean:

- **Outline.** The four corners in angular order about their mean, starting at the top-left
  corner: top-left, top-right, bottom-right, bottom-left for a correctly labelled body. Sorting
  by angle about an interior point always gives a simple (never self-intersecting)
  quadrilateral, even where an annotation swapped two corners (the AASCE set has a few such
  labels); four corners that enclose no area (repeated or collinear points) are refused.
- **Centre.** The mean of the four corners (as a clicked centre would be placed), not the
  outline's area centroid.

Coordinates follow `vertseg_tf.data.importers`: with `pixel_origin="corner"` (the default)
0.5 is subtracted from every coordinate, `"center"` keeps them. As there, every annotation is
read and every image found before anything is written, and the dataset appears atomically.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vertseg_tf.data.dataset import SPINE_LEVELS, SPLITS, Dataset
from vertseg_tf.data.importers import (
    _Annotated,
    _check_options,
    _Outline,
    _write_dataset,
)
from vertseg_tf.errors import ConfigError, DataError

__all__ = [
    "AASCE_LEVELS",
    "AASCE_SPLIT_FOLDERS",
    "corner_outline",
    "import_aasce",
    "import_corners_csv",
]

AASCE_LEVELS = tuple(f"T{i}" for i in range(1, 13)) + tuple(f"L{i}" for i in range(1, 6))
# Folder name in the source -> native split.
AASCE_SPLIT_FOLDERS = {
    "training": "train",
    "train": "train",
    "validation": "val",
    "val": "val",
    "test": "test",
    "testing": "test",
}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm", ".bmp")
_AREA_EPS = 1e-9


def corner_outline(
    top_left, top_right, bottom_left, bottom_right, source, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """The outline (4, 2) and centre (2,) of a vertebral body from its four corners.

    Args:
        top_left, top_right, bottom_left, bottom_right: (x, y) corners.
        source: the file named in an error.
        where: the field named in an error.

    Returns:
        `(outline, centre)`: the corners in angular order about their mean, starting at
        `top_left` (a simple quadrilateral), and the mean of the corners.

    Raises:
        DataError: a corner that is not finite, or corners that enclose no area.

    Example:
        >>> outline, centre = corner_outline((0, 0), (4, 0), (0, 2), (4, 2), "f.mat", "p2")
        >>> outline.tolist(), centre.tolist()
        ([[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]], [2.0, 1.0])
    """
    corners = np.array([top_left, top_right, bottom_left, bottom_right], dtype=np.float64)
    if corners.shape != (4, 2) or not np.isfinite(corners).all():
        raise DataError(source, "corners must be four finite (x, y) points", field=where)
    centre = corners.mean(axis=0)
    offsets = corners - centre
    # y points down, so increasing angle runs clockwise on screen: TL, TR, BR, BL.
    order = np.argsort(np.arctan2(offsets[:, 1], offsets[:, 0]), kind="stable")
    order = np.roll(order, -int(np.flatnonzero(order == 0)[0]))
    outline = corners[order]
    x, y = outline[:, 0], outline[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    scale = max(float(np.ptp(corners, axis=0).max()), 1.0)
    if area <= _AREA_EPS * scale * scale:
        raise DataError(source, "the four corners enclose no area", field=where)
    return outline, centre


def import_aasce(
    source,
    out,
    *,
    link: bool = False,
    pixel_origin: str = "corner",
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Import AASCE 2019 / SpineWeb dataset 16 (the BoostNet labels) as a native dataset.

    Layout: `SRC/data/<split>/<name>.jpg` and `SRC/labels/<split>/<name>.jpg.mat`, where
    `<split>` is `training` (-> "train"), `test` (-> "test") or `val`/`validation`
    (-> "val"). Each `.mat` holds `p2`, a (68, 2) array of (x, y): 17 vertebrae T1-L5, four
    corners each in the order top-left, top-right, bottom-left, bottom-right. A split folder
    without `.mat` files is read from its CSV form instead: `filenames.csv` (one image name a
    row) and `landmarks.csv` (one row of 136 numbers per image, the 68 x coordinates then the
    68 y coordinates, as fractions of the image width and height).

    Args:
        source: the dataset's top folder (holding `data/` and `labels/`).
        out: the new dataset folder; must not exist or be empty unless `overwrite`.
        link: hard-link the images instead of copying them (copied across file systems).
        pixel_origin: "corner" (subtract 0.5) or "center".
        progress: optional `progress(done, total)` called after each image is placed.
        overwrite: replace an existing non-empty `out`.

    Returns:
        The written `Dataset` (its `root` is `out`).

    Raises:
        DataError: a missing folder or image, an unreadable or malformed label file;
            nothing written.
        ConfigError: an unknown `pixel_origin`, a non-empty `out` without `overwrite`.

    Example:
        >>> dataset = import_aasce("boostnet_labeldata", "aasce")  # doctest: +SKIP
    """
    shift = _check_options("train", pixel_origin)
    source = Path(source)
    labels_root, data_root = source / "labels", source / "data"
    for folder in (labels_root, data_root):
        if not folder.is_dir():
            raise DataError(folder, "folder not found; expected SRC/data/ and SRC/labels/")
    annotated = []
    for folder, split in _split_folders(labels_root):
        mats = sorted(folder.glob("*.mat"))
        entries = (
            [(path, _read_p2(path), path.name[: -len(".mat")], "p2") for path in mats]
            if mats
            else _read_landmark_csvs(folder, data_root / folder.name)
        )
        for label_file, points, image_name, field_name in entries:
            image = data_root / folder.name / image_name
            if not image.is_file():
                raise DataError(label_file, f"image {str(image)!r} not found", field="file")
            item = _Annotated(image, label_file, split=split)
            for k, level in enumerate(AASCE_LEVELS):
                top_left, top_right, bottom_left, bottom_right = points[4 * k : 4 * k + 4] - shift
                outline, centre = corner_outline(
                    top_left, top_right, bottom_left, bottom_right, label_file,
                    f"{field_name} points {4 * k}-{4 * k + 3} ({level})",
                )
                item.outlines[level] = _Outline(outline, centre, f"{field_name} ({level})")
            annotated.append(item)
    if not annotated:
        raise DataError(
            labels_root, "no labels found: expected labels/training/*.jpg.mat or landmarks.csv"
        )
    return _write_dataset(annotated, Path(out), "train", link, progress, overwrite)


def _split_folders(root: Path) -> list[tuple[Path, str]]:
    """The subfolders of `root` named after a split, train first, then val, then test."""
    folders = [(p, AASCE_SPLIT_FOLDERS[p.name.lower()]) for p in sorted(root.iterdir())
               if p.is_dir() and p.name.lower() in AASCE_SPLIT_FOLDERS]
    return sorted(folders, key=lambda pair: SPLITS.index(pair[1]))


def _read_p2(path: Path) -> np.ndarray:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        content = loadmat(str(path))
    except (OSError, ValueError, NotImplementedError, MatReadError) as error:
        raise DataError(path, f"cannot read the .mat file ({error})") from None
    if "p2" not in content:
        raise DataError(path, "has no 'p2' array of corners", field="p2")
    return _landmark_array(content["p2"], path, "p2")


def _landmark_array(value, path: Path, where: str) -> np.ndarray:
    try:
        points = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, "must be numbers", field=where) from None
    if points.shape != (68, 2):
        raise DataError(path, f"must be (68, 2) (17 vertebrae x 4 corners), got {points.shape}",
                        field=where)
    if not np.isfinite(points).all():
        raise DataError(path, "has a corner that is not finite", field=where)
    return points


def _read_landmark_csvs(folder: Path, images: Path) -> list[tuple[Path, np.ndarray, str, str]]:
    names_path, landmarks_path = folder / "filenames.csv", folder / "landmarks.csv"
    for path in (names_path, landmarks_path):
        if not path.is_file():
            raise DataError(path, "not found; a label folder needs *.jpg.mat files or the CSVs")
    names = [row[0].strip() for row in _csv_rows(names_path) if row and row[0].strip()]
    rows = [row for row in _csv_rows(landmarks_path) if row]
    if len(rows) != len(names):
        raise DataError(landmarks_path, f"{len(rows)} rows for the {len(names)} names of "
                                        f"{names_path.name}")
    entries = []
    for index, (name, row) in enumerate(zip(names, rows)):
        where = f"row {index + 1}"
        try:
            values = np.array([float(cell) for cell in row], dtype=np.float64)
        except ValueError:
            raise DataError(landmarks_path, "must hold numbers only", field=where) from None
        if values.shape != (136,):
            raise DataError(landmarks_path, f"must hold 136 numbers (68 x, then 68 y), "
                                            f"got {len(values)}", field=where)
        height, width = _image_size(images / name, landmarks_path, where)
        points = np.column_stack([values[:68] * width, values[68:] * height])
        landmarks = _landmark_array(points, landmarks_path, where)
        entries.append((landmarks_path, landmarks, name, where))
    return entries


def _csv_rows(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            return list(csv.reader(stream))
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"cannot read ({error})") from None


def _image_size(path: Path, source: Path, where: str) -> tuple[int, int]:
    from vertseg_tf.data.images import read_image

    if not path.is_file():
        raise DataError(source, f"image {str(path)!r} not found", field=where)
    image, _ = read_image(path)
    return image.shape[:2]


def import_corners_csv(
    source,
    out,
    *,
    split: str = "train",
    first_level: str = "L1",
    link: bool = False,
    pixel_origin: str = "corner",
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Import endplate-corner CSVs (the BUU-LSPINE layout) as a native dataset.

    One CSV per image, beside it with the same stem (`0001-F-037Y1.csv` next to
    `0001-F-037Y1.jpg`), no header, one row per endplate: `x1,y1,x2,y2,label`, the left and
    right corners of the endplate. Rows come top to bottom, two per vertebra (upper endplate,
    then lower). When `label` names a spine level (`L1`, ...), rows are grouped by it;
    otherwise (BUU-LSPINE's label is a spondylolisthesis grade) rows 1-2 are `first_level`,
    rows 3-4 the next level, and so on, and a last lone row (the sacrum's upper endplate in
    lateral films) is not a vertebral body and is left out.

    SRC is a folder of such pairs, or a folder whose subfolders `train`/`training`,
    `val`/`validation`, `test`/`testing` hold them (the split then comes from the subfolder;
    otherwise every image gets `split`).

    Args:
        source: the folder.
        out: the new dataset folder; must not exist or be empty unless `overwrite`.
        split: the split of images not in a split subfolder.
        first_level: the level of the first two rows when labels are not levels.
        link: hard-link the images instead of copying them (copied across file systems).
        pixel_origin: "corner" (subtract 0.5) or "center".
        progress: optional `progress(done, total)` called after each image is placed.
        overwrite: replace an existing non-empty `out`.

    Returns:
        The written `Dataset` (its `root` is `out`).

    Raises:
        DataError: a malformed CSV or a missing image; nothing written.
        ConfigError: an unknown `split`, `first_level` or `pixel_origin`, a non-empty `out`
            without `overwrite`.

    Example:
        >>> dataset = import_corners_csv("BUU-LSPINE/LA", "buu_lateral")  # doctest: +SKIP
    """
    shift = _check_options(split, pixel_origin)
    if first_level.upper() not in SPINE_LEVELS:
        raise ConfigError(f"unknown first_level {first_level!r}; expected a level such as L1")
    source = Path(source)
    if not source.is_dir():
        raise DataError(source, "folder not found")
    annotated = []
    for folder, folder_split in _split_folders(source) or [(source, split)]:
        for path in sorted(folder.glob("*.csv")):
            item = _Annotated(_image_beside(path), path, split=folder_split)
            for level, rows, where in _endplate_pairs(path, first_level.upper(), shift):
                (tl, tr), (bl, br) = rows
                outline, centre = corner_outline(tl, tr, bl, br, path, where)
                item.outlines[level] = _Outline(outline, centre, where)
            annotated.append(item)
    if not annotated:
        raise DataError(source, "no *.csv annotation files found")
    return _write_dataset(annotated, Path(out), split, link, progress, overwrite)


def _image_beside(path: Path) -> Path:
    for suffix in _IMAGE_SUFFIXES:
        for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    raise DataError(path, f"no image beside it (looked for {path.stem} with "
                          f"{', '.join(_IMAGE_SUFFIXES)})", field="file")


def _endplate_pairs(path: Path, first_level: str, shift: float):
    """(level, ((top-left, top-right), (bottom-left, bottom-right)), field) per vertebra."""
    endplates, labels = [], []
    for index, row in enumerate(_csv_rows(path)):
        if not any(cell.strip() for cell in row):
            continue
        where = f"row {index + 1}"
        if len(row) < 4:
            raise DataError(path, f"expected x1,y1,x2,y2,label, got {len(row)} values", field=where)
        try:
            x1, y1, x2, y2 = (float(cell) for cell in row[:4])
        except ValueError:
            raise DataError(path, "x1, y1, x2, y2 must be numbers", field=where) from None
        ends = np.array([[x1, y1], [x2, y2]]) - shift
        endplates.append((ends[np.argsort(ends[:, 0], kind="stable")], where))
        labels.append(row[4].strip().upper() if len(row) > 4 else "")
    if not endplates:
        raise DataError(path, "has no endplate rows")
    if all(label in SPINE_LEVELS for label in labels):
        yield from _pairs_by_label(path, endplates, labels)
        return
    start = SPINE_LEVELS.index(first_level)
    count = len(endplates) // 2
    if start + count > len(SPINE_LEVELS):
        raise DataError(path, f"{count} vertebrae from {first_level} run past S1")
    for k in range(count):
        (top, where), (bottom, _) = endplates[2 * k], endplates[2 * k + 1]
        yield SPINE_LEVELS[start + k], (top, bottom), f"{where}-{2 * k + 2}"


def _pairs_by_label(path: Path, endplates, labels):
    grouped: dict[str, list] = {}
    for (ends, where), label in zip(endplates, labels):
        grouped.setdefault(label, []).append((ends, where))
    for level in sorted(grouped, key=SPINE_LEVELS.index):
        rows = grouped[level]
        if level == "S1" and len(rows) == 1:
            continue  # the sacrum's upper endplate alone: not a vertebral body
        if len(rows) != 2:
            raise DataError(path, f"{level} has {len(rows)} endplate rows; expected 2 "
                                  "(upper, lower)", field=rows[0][1])
        upper, lower = sorted(rows, key=lambda row: row[0][:, 1].mean())
        yield level, (upper[0], lower[0]), f"{upper[1]}, {lower[1]} ({level})"
