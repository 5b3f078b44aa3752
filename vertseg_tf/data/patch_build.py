"""Building the patches of a dataset split: the image jobs, the cache key, the worker processes.

`vertseg_tf.data.patches.PatchSet.from_dataset` runs this; its docstring describes the cache
and the workers. The workers return plain `PatchSet` fields (this module does not know the
class: `patches` imports this module, never the reverse).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vertseg_tf.data.dataset import DATASET_FILE, Dataset, ImageRecord, dataset_to_json
from vertseg_tf.data.patch_cut import cut_patch_fields
from vertseg_tf.data.patch_geometry import PATCH_SIZE
from vertseg_tf.errors import ConfigError, DataError

__all__ = [
    "PATCHES_PER_WORKER",
    "ImageJob",
    "cache_path",
    "cut_images",
    "default_cache_dir",
    "image_jobs",
    "worker_count",
]

# A worker process costs a second or two to start: each gets at least this much work, counted
# in patches, an image read counting as `_READ_COST` patches (about 50 ms against 1 ms).
PATCHES_PER_WORKER = 2000
_READ_COST = 50


def default_cache_dir() -> Path:
    """`$VERTSEG_TF_CACHE/patches`, else `~/.cache/vertseg-tf/patches`."""
    root = os.environ.get("VERTSEG_TF_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "vertseg-tf"
    return base / "patches"


@dataclass(frozen=True)
class ImageJob:
    """One image of a split to cut: everything a worker process needs, picklable."""

    position: int
    record: ImageRecord
    path: Path
    json_path: Path
    alphas: tuple[float, ...]
    angles: tuple[float, ...]


def image_jobs(dataset: Dataset, split: str, alphas, angles) -> list[ImageJob]:
    """The images of `split`, in dataset order; DataError naming `dataset.json` if none."""
    json_path = (dataset.root or Path(".")) / DATASET_FILE
    jobs = [
        ImageJob(position, record, dataset.image_path(record), json_path, alphas, angles)
        for position, record in enumerate(dataset.images)
        if record.split == split
    ]
    if not jobs:
        raise DataError(json_path, f"no images in split {split!r}", field="images[].split")
    return jobs


def cache_path(
    dataset: Dataset, split: str, augment: bool, jobs, cache_dir, cache_format: str
) -> Path:
    """The cache file of these jobs (see `PatchSet.from_dataset` for what the key covers)."""
    files = []
    for job in jobs:
        try:
            stat = job.path.stat()
        except OSError:
            raise DataError(job.path, "image file not found", field=f"images[{job.record.id}].file")
        files.append([stat.st_size, stat.st_mtime_ns])
    key_source = {
        "format": cache_format,
        "split": split,
        "alphas": list(jobs[0].alphas),
        "angles": list(jobs[0].angles),
        "size": PATCH_SIZE,
        "images": dataset_to_json(Dataset([job.record for job in jobs]))["images"],
        "files": files,
    }
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"{split}-{'augment' if augment else 'base'}-{key[:24]}.npz"


def worker_count(workers: int | None, jobs: list[ImageJob]) -> int:
    """The processes to start: `workers` (None: every core), fewer for a small split."""
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1
        )
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    grid = len(jobs[0].alphas) * len(jobs[0].angles)
    work = sum(grid * len(job.record.vertebrae) + _READ_COST for job in jobs)
    return max(1, min(workers, len(jobs), work // PATCHES_PER_WORKER))


def cut_images(jobs: list[ImageJob], workers: int, report) -> Iterator[dict]:
    """The `PatchSet` fields of each job, in order, as they are cut; in `workers` spawned
    processes when more than 1."""
    if workers == 1:
        for number, job in enumerate(jobs):
            yield _cut_image(job)
            if report is not None:
                report(number + 1, len(jobs))
        return
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # spawn, not fork: the caller may hold TensorFlow's threads, which a fork would copy.
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_single_threaded
    ) as pool:
        for number, part in enumerate(pool.map(_cut_image, jobs)):
            yield part
            if report is not None:
                report(number + 1, len(jobs))


def _single_threaded() -> None:
    """Worker set-up: one OpenCV thread per process, the processes share the cores."""
    cv2.setNumThreads(1)


def _cut_image(job: ImageJob) -> dict:
    """Read one image and cut its patches; errors name `dataset.json` and the record's field."""
    from vertseg_tf.data.images import read_image

    image, _ = read_image(job.path)
    record, where = job.record, f"images[{job.position}]"
    try:
        return cut_patch_fields(
            image,
            np.array([v.center for v in record.vertebrae], dtype=np.float64),
            [v.contour for v in record.vertebrae],
            alphas=job.alphas,
            angles=job.angles,
            image_id=record.id,
            labels=[v.label for v in record.vertebrae],
            conditions=[v.conditions for v in record.vertebrae],
        )
    except DataError as error:
        field_name = where
        for array, key in (("centers[", "center"), ("contours[", "contour")):
            if (error.field or "").startswith(array):
                vertebra = error.field.replace(array, f"{where}.vertebrae[")
                field_name = f"{vertebra}.{key}"
        raise DataError(job.json_path, error.problem, field=field_name) from None
    except ConfigError as error:
        raise DataError(job.json_path, str(error), field=f"{where}.vertebrae") from None
