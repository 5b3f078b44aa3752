"""Building the patch set of a dataset split: jobs, the cache key, worker processes.

`vertseg_tf.data.patches.PatchSet.from_dataset` is the public entry point (it documents the
cache key and the worker rule); this module holds its machinery, so that `patches` keeps the
geometry of one patch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vertseg_tf.data import patches
from vertseg_tf.data.dataset import DATASET_FILE, Dataset, ImageRecord, dataset_to_json
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.progress import progress_callback

__all__ = ["build_patch_set"]

# An image read (about 50 ms) counts as this many patches (about 1 ms each) of worker work.
_READ_COST = 50


def build_patch_set(
    cls, dataset: Dataset, split: str, augment: bool, cache_dir, progress, workers: int | None
):
    """`PatchSet.from_dataset` (see there): the cached set, else cut, concatenated and saved."""
    if augment:
        alphas, angles = patches.TRAIN_ALPHAS, patches.TRAIN_ANGLES
    else:
        alphas, angles = (patches.TEST_ALPHA,), (0.0,)
    jobs = _image_jobs(dataset, split, alphas, angles)
    cache_path = _cache_path(dataset, split, augment, jobs, cache_dir)
    if cache_path.with_suffix(".json").is_file():
        try:
            return cls.load(cache_path)
        except DataError:
            pass
    report = progress_callback(progress, f"patches {split}", "images")
    parts = _cut_images(jobs, _worker_count(workers, jobs), report)
    patch_set = cls.concatenate(parts)
    patch_set.save(cache_path)
    return patch_set


@dataclass(frozen=True)
class _ImageJob:
    """One image of a split to cut: everything a worker process needs, picklable."""

    position: int
    record: ImageRecord
    path: Path
    json_path: Path
    alphas: tuple[float, ...]
    angles: tuple[float, ...]


def _image_jobs(dataset: Dataset, split: str, alphas, angles) -> list[_ImageJob]:
    json_path = (dataset.root or Path(".")) / DATASET_FILE
    jobs = [
        _ImageJob(position, record, dataset.image_path(record), json_path, alphas, angles)
        for position, record in enumerate(dataset.images)
        if record.split == split
    ]
    if not jobs:
        raise DataError(json_path, f"no images in split {split!r}", field="images[].split")
    return jobs


def _cache_path(dataset: Dataset, split: str, augment: bool, jobs, cache_dir) -> Path:
    """The cache file of these jobs (see `PatchSet.from_dataset` for what the key covers)."""
    files = []
    for job in jobs:
        try:
            stat = job.path.stat()
        except OSError:
            raise DataError(job.path, "image file not found", field=f"images[{job.record.id}].file")
        files.append([stat.st_size, stat.st_mtime_ns])
    key_source = {
        "format": patches.CACHE_FORMAT,
        "split": split,
        "alphas": list(jobs[0].alphas),
        "angles": list(jobs[0].angles),
        "size": patches.PATCH_SIZE,
        "images": dataset_to_json(Dataset([job.record for job in jobs]))["images"],
        "files": files,
    }
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else patches.default_cache_dir()
    return folder / f"{split}-{'augment' if augment else 'base'}-{key[:24]}.npz"


def _worker_count(workers: int | None, jobs: list[_ImageJob]) -> int:
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1
        )
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    grid = len(jobs[0].alphas) * len(jobs[0].angles)
    work = sum(grid * len(job.record.vertebrae) + _READ_COST for job in jobs)
    return max(1, min(workers, len(jobs), work // patches.PATCHES_PER_WORKER))


def _cut_images(jobs: list[_ImageJob], workers: int, report) -> list[patches.PatchSet]:
    """The patch sets of `jobs`, in order; in `workers` spawned processes when more than 1."""
    if workers == 1:
        parts = []
        for number, job in enumerate(jobs):
            parts.append(_cut_image(job))
            if report is not None:
                report(number + 1, len(jobs))
        return parts
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # spawn, not fork: the caller may hold TensorFlow's threads, which a fork would copy.
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_single_threaded
    ) as pool:
        parts = []
        for part in pool.map(_cut_image, jobs):
            parts.append(part)
            if report is not None:
                report(len(parts), len(jobs))
        return parts


def _single_threaded() -> None:
    """Worker set-up: one OpenCV thread per process, the processes share the cores."""
    cv2.setNumThreads(1)


def _cut_image(job: _ImageJob) -> patches.PatchSet:
    """Read one image and cut its patches; errors name `dataset.json` and the record's field."""
    from vertseg_tf.data.images import read_image

    image, _ = read_image(job.path)
    record, where = job.record, f"images[{job.position}]"
    try:
        return patches.extract_patches(
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
