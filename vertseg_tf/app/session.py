"""What the web app does, without the web: read an upload, render a window, segment, package.

Uploads are read from memory; a file that only a path reader can decode (DICOM, TIFF) goes
through a temporary folder that is removed at once. Results live in a small in-memory store
(`Store`), never on disk.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vertseg_tf.data.dataset import SPINE_LEVELS, Dataset, dataset_to_json
from vertseg_tf.errors import DataError

__all__ = [
    "LoadedImage",
    "SegmentationResult",
    "Store",
    "UnknownId",
    "default_window",
    "parse_labels",
    "parse_points",
    "read_upload",
    "render_window",
    "segment_image",
]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class LoadedImage:
    """An uploaded radiograph: `image` float32 (H, W) as `read_image` returns it."""

    id: str
    name: str
    image: np.ndarray
    meta: dict

    def summary(self) -> dict:
        level, width = default_window(self.image)
        spacing = self.meta.get("pixel_spacing_mm")
        return {
            "image_id": self.id,
            "name": self.name,
            "width": int(self.image.shape[1]),
            "height": int(self.image.shape[0]),
            "source_format": self.meta.get("source_format"),
            "pixel_spacing_mm": None if spacing is None else [float(s) for s in spacing],
            "window": {"level": level, "width": width},
            "range": [float(self.image.min()), float(self.image.max())],
        }


@dataclass
class SegmentationResult:
    """One `POST /segment` answer, kept for its downloads."""

    id: str
    image: LoadedImage
    results: list
    column: object
    record: object

    def to_json(self) -> dict:
        vertebrae = []
        for result in self.results:
            measured = self.column.vertebra(result.label)
            vertebrae.append({
                "label": result.label,
                "center": [float(c) for c in result.center],
                "contour": np.round(result.contour, 3).tolist(),
                "flags": list(result.flags),
                "area_px": round(float(result.area_px), 2),
                "components": int(result.components),
                "measurements": None if measured is None else measured.to_dict(),
            })
        return {
            "result_id": self.id,
            "image_id": self.image.id,
            "vertebrae": vertebrae,
            "column": self.column.column_dict(),
            "downloads": {name: f"/results/{self.id}/{name}"
                          for name in ("dataset.json", "measurements.csv", "overlay.png")},
        }

    def dataset_json(self) -> bytes:
        return json.dumps(dataset_to_json(Dataset([self.record])), indent=1).encode()

    def measurements_csv(self) -> bytes:
        from vertseg_tf.morphometry.records import measurement_rows, measurements_csv_text

        return measurements_csv_text(measurement_rows(self.record.id, self.column)).encode()

    def overlay_png(self) -> bytes:
        from vertseg_tf.deploy.inference import draw_overlay

        return _png(draw_overlay(self.image.image, self.results, self.column))


class UnknownId(LookupError):
    """An image or result id the store does not hold (never given, or forgotten)."""


class Store:
    """The latest `capacity` items by id; older ones are forgotten (memory stays bounded)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, item) -> None:
        with self._lock:
            self._items[item.id] = item
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, key: str, what: str):
        with self._lock:
            item = self._items.get(key)
        if item is None:
            raise UnknownId(f"no {what} {key!r} (unknown, or forgotten after "
                           f"{self.capacity} newer ones); open the image again")
        return item


def _png(array: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise DataError("overlay.png", "cannot encode the PNG")
    return encoded.tobytes()


def read_upload(name: str, data: bytes) -> LoadedImage:
    """Decode an uploaded radiograph (DICOM, PNG, JPEG, TIFF) with `read_image`.

    The bytes go to a temporary folder, removed before this returns, because `read_image`
    reads paths; errors name the upload, not that folder.

    Raises:
        DataError: an empty, corrupt or unsupported file, naming `name`.
    """
    from vertseg_tf.data.images import read_image

    safe = _SAFE_NAME.sub("_", Path(name or "upload").name)[-100:] or "upload"
    with tempfile.TemporaryDirectory(prefix="vertseg-app-") as folder:
        path = Path(folder) / safe
        path.write_bytes(data)
        try:
            image, meta = read_image(path)
        except DataError as error:
            raise DataError(name, error.problem, error.field) from None
    return LoadedImage(uuid.uuid4().hex[:12], Path(safe).name, image, meta)


def default_window(image: np.ndarray) -> tuple[float, float]:
    """(level, width) spanning the 1st-99th percentile, as `draw_overlay` windows."""
    low, high = (float(v) for v in np.percentile(image, (1, 99)))
    return (low + high) / 2, max(high - low, 1e-6)


def render_window(image: np.ndarray, level: float, width: float) -> bytes:
    """8-bit greyscale PNG of `image` shown between level -/+ width / 2.

    Raises:
        DataError: a width that is not positive or values that are not finite.
    """
    if not (np.isfinite(level) and np.isfinite(width) and width > 0):
        raise DataError("window", f"need a finite level and a positive width, got "
                                  f"level {level}, width {width}")
    grey = np.clip((image.astype(np.float32) - (level - width / 2)) / width, 0, 1)
    return _png(np.round(grey * 255).astype(np.uint8))


def parse_points(text: str, field: str = "centers") -> np.ndarray:
    """A JSON list `[[x, y], ...]` of finite numbers as an (N, 2) array.

    Raises:
        DataError: anything else, naming `field`.
    """
    try:
        points = np.asarray(json.loads(text), dtype=np.float64)
    except (json.JSONDecodeError, TypeError, ValueError):
        points = np.zeros((0, 3))
    if points.ndim != 2 or points.shape[1:] != (2,) or not np.isfinite(points).all():
        raise DataError(field, 'expected a JSON list of [x, y] pairs, e.g. "[[120, 80], '
                               '[122, 130]]"')
    return points


def parse_labels(text: str | None, count: int, first: str = "C3") -> list[str]:
    """Comma-separated levels, or `count` levels from `first` when `text` is empty.

    Raises:
        DataError: a level that is not a spine level or given twice, or too many centres for
            the spine.
    """
    if text:
        labels = [label.strip() for label in text.split(",")]
        unknown = [label for label in labels if label not in SPINE_LEVELS]
        if unknown:
            raise DataError("labels", f"{', '.join(unknown)} not spine levels (C1-C7, T1-T12, "
                                      "L1-L5, S1)")
        if len(set(labels)) != len(labels):
            raise DataError("labels", "a level is given twice")
        return labels
    if first not in SPINE_LEVELS:
        raise DataError("first_level", f"{first!r} is not a spine level")
    start = SPINE_LEVELS.index(first)
    if start + count > len(SPINE_LEVELS):
        raise DataError("centers", f"{count} centres from {first} run past "
                                   f"{SPINE_LEVELS[-1]}")
    return list(SPINE_LEVELS[start:start + count])


def segment_image(segmenter, loaded: LoadedImage, centers: np.ndarray, labels: list[str],
                  *, facing: str | None = None, scale: float | None = None
                  ) -> SegmentationResult:
    """Segment and measure one uploaded image from its centres, as `vertseg-tf segment` does.

    Raises:
        DataError: a centre outside the image, a wrong label count.
        ConfigError: fewer than two centres without `scale`.
    """
    from vertseg_tf.deploy.inference import segmentation_record
    from vertseg_tf.deploy.measurements import measure_segmentation

    if len(labels) != len(centers):
        raise DataError("labels", f"{len(labels)} labels for {len(centers)} centres")
    results = segmenter.segment(loaded.image, centers, labels, scale=scale)
    spacing = loaded.meta.get("pixel_spacing_mm")
    column = measure_segmentation(results, spacing, facing)
    record = segmentation_record(Path(loaded.name).stem, f"images/{loaded.name}", results,
                                 column, spacing, str(segmenter.source))
    return SegmentationResult(uuid.uuid4().hex[:12], loaded, results, column, record)
