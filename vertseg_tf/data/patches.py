"""Vertebra patches: pose from clicked centres, the affine cut, augmentation, and the way back.

Geometry (docs/architecture.md, patch geometry). For vertebra k with centre c_k (centres in
spine order, top to bottom) the spine axis is c_{k+1} - c_{k-1} (c_1 - c_0 and c_{N-1} - c_{N-2}
at the ends) and the scale s_k is the mean distance to the neighbouring centres. The patch is
the square of side alpha * s_k centred on c_k, turned so that the axis points down the patch
(+y), then turned by the augmentation angle, and resampled to `size` x `size` pixels. In patch
pixel-centre coordinates the centre c_k lands on ((size - 1) / 2, (size - 1) / 2). The map is a
rotation and a uniform scaling, never a reflection (determinant > 0): a patient facing right
gives patches that are the mirror image of a left-facing one. Training can add such patches with
`mirror_patches` (the `augment_mirror` option); their affines then include the reflection x ->
size - 1 - x (determinant < 0), so `patch_to_image` still maps their results back.

A positive `angle_deg` = a turns the patch content by a degrees about the patch centre: the
spine axis points along (-sin a, cos a) in the patch, i.e. the content turns clockwise on screen
(y down) for a positive angle.

Content of each patch:
    - image: linear resampling (OpenCV `warpAffine`, pixel centres at integer coordinates as in
      the rest of vertseg-tf, interpolation weights in 1/32 pixel steps), border reflected
      (`BORDER_REFLECT`) so a vertebra near the image border is padded, never cropped; then
      normalised per patch to zero mean and unit variance. A patch whose standard deviation
      is at most 1e-6 of its mean magnitude (constant, up to interpolation rounding) becomes
      all zeros.
    - mask: the contour mapped through the same affine and filled at pixel centres
      (`vertseg_tf.geometry.polygons_to_masks`, boundary included).
    - dist_map: exact distance, in patch pixels, from each pixel centre to the mapped contour
      polyline (closed), not to the mask edge.

Patch sets of a dataset split are cached on disk; see `PatchSet.from_dataset`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from vertseg_tf.atomic import atomic_path, write_json_atomic
from vertseg_tf.data.dataset import (
    DATASET_FILE,
    Dataset,
    ImageRecord,
    dataset_to_json,
)
from vertseg_tf.distance import similar_distance_maps
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.geometry import (
    apply_affine,
    invert_affine,
    polygons_to_masks,
    polyline_distance_maps,
)
from vertseg_tf.progress import progress_callback

__all__ = [
    "CACHE_FORMAT",
    "FLAT_RELATIVE_STD",
    "PATCHES_PER_WORKER",
    "PATCH_SIZE",
    "TEST_ALPHA",
    "TRAIN_ALPHAS",
    "TRAIN_ANGLES",
    "PatchSet",
    "default_cache_dir",
    "extract_patches",
    "mask_to_image",
    "mirror_patches",
    "patch_affine",
    "patch_to_image",
    "save_contact_sheet",
    "vertebra_poses",
]

PATCH_SIZE = 64
TRAIN_ALPHAS = (1.3, 1.4, 1.5, 1.6, 1.7)
TRAIN_ANGLES = (-20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0)
TEST_ALPHA = 1.5
CACHE_FORMAT = "vertseg-patches/1"
# A worker process costs a second or two to start: each gets at least this much work, counted
# in patches, an image read counting as `_READ_COST` patches (about 50 ms against 1 ms).
PATCHES_PER_WORKER = 2000
_READ_COST = 50

# From this many patches per vertebra on, the distance maps of a vertebra share one pruning
# structure (`similar_distance_maps`); with fewer, building it costs more than it saves.
SHARED_DISTANCE_PATCHES = 12
# Centres closer than this (image pixels) are the same click twice.
_COINCIDENT_PX = 1e-6
FLAT_RELATIVE_STD = 1e-6


def vertebra_poses(
    centers: np.ndarray, scale: float | Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Spine axis and scale of each vertebra from its clicked centre and its neighbours.

    Args:
        centers: (N, 2) xy centres in spine order (top to bottom).
        scale: None to take each scale from the neighbours; a number or (N,) numbers to use
            instead (required for a lone centre, whose axis is then straight down, (0, 1)).

    Returns:
        `(axes, scales)`: (N, 2) unit axis vectors and (N,) scales in image pixels.

    Raises:
        DataError: a centre is not finite, or two centres coincide (file "centers").
        ConfigError: a lone centre without `scale`, or a scale that is not a positive number.

    Example:
        >>> axes, scales = vertebra_poses(np.array([[10.0, 10.0], [10.0, 30.0], [10.0, 60.0]]))
        >>> axes[1].tolist(), scales.tolist()
        ([0.0, 1.0], [20.0, 25.0, 30.0])
    """
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != 2 or len(centers) == 0:
        raise DataError("centers", f"must be (N, 2) with N >= 1, got shape {centers.shape}")
    bad = np.flatnonzero(~np.isfinite(centers).all(axis=1))
    if len(bad):
        raise DataError("centers", "is not a finite point", field=f"centers[{bad[0]}]")
    gaps = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
    first, second = np.nonzero(np.triu(gaps < _COINCIDENT_PX, k=1))
    if len(first):
        i, j = int(first[0]), int(second[0])
        raise DataError(
            "centers",
            f"coincides with centre {i} at {centers[i].tolist()} (duplicate click?)",
            field=f"centers[{j}]",
        )
    count = len(centers)
    if count == 1:
        if scale is None:
            raise ConfigError(
                "a lone vertebra centre has no neighbour to set the patch scale: pass scale="
            )
        axes = np.array([[0.0, 1.0]])
    else:
        ahead = np.vstack([centers[1:], centers[-1:]])
        behind = np.vstack([centers[:1], centers[:-1]])
        axes = ahead - behind
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    if scale is None:
        steps = np.linalg.norm(np.diff(centers, axis=0), axis=1)
        before = np.concatenate([[np.nan], steps])
        after = np.concatenate([steps, [np.nan]])
        scales = np.nanmean(np.stack([before, after]), axis=0)
    else:
        scales = np.broadcast_to(np.asarray(scale, dtype=np.float64), (count,)).copy()
        if not (np.isfinite(scales).all() and (scales > 0).all()):
            raise ConfigError(f"scale must be positive numbers, got {scale!r}")
    return axes, scales


def patch_affine(
    center: Sequence[float],
    axis: Sequence[float],
    scale: float,
    alpha: float,
    angle_deg: float,
    size: int = PATCH_SIZE,
) -> np.ndarray:
    """The (2, 3) image -> patch map of one vertebra patch.

    Args:
        center: (x, y) vertebra centre in the image.
        axis: spine direction at the centre (any length > 0); it points down the patch.
        scale: vertebra scale s in image pixels.
        alpha: patch side in units of s.
        angle_deg: augmentation rotation (see the module docstring for the sense).
        size: patch side in pixels.

    Returns:
        (2, 3) float64 affine A with A @ (x, y, 1) = patch coordinates; det > 0.

    Example:
        >>> a = patch_affine((100.0, 50.0), (0.0, 1.0), 32.0, 2.0, 0.0, size=64)
        >>> a.tolist()
        [[1.0, 0.0, -68.5], [0.0, 1.0, -18.5]]
    """
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    upright = np.array([[axis[1], -axis[0]], [axis[0], axis[1]]])
    angle = np.deg2rad(angle_deg)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = (size / (alpha * scale)) * (turn @ upright)
    middle = (size - 1) / 2.0
    offset = middle - linear @ np.asarray(center, dtype=np.float64)
    return np.hstack([linear, offset[:, None]])


def patch_to_image(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map patch xy points (e.g. a predicted contour) back to image coordinates.

    Example:
        >>> a = patch_affine((100.0, 50.0), (1.0, 1.0), 30.0, 1.5, 10.0)
        >>> patch_to_image(np.array([[31.5, 31.5]]), a).round(9).tolist()
        [[100.0, 50.0]]
    """
    return apply_affine(invert_affine(affine), points)


def mask_to_image(mask: np.ndarray, affine: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """Paint a patch mask back onto the image grid (nearest neighbour, 0 outside the patch).

    Args:
        mask: (size, size) patch mask.
        affine: the patch's (2, 3) image -> patch map.
        image_shape: (H, W) of the image.

    Returns:
        (H, W) uint8 mask: image pixel p takes the patch pixel nearest to affine(p).

    Example:
        >>> a = patch_affine((10.0, 10.0), (0.0, 1.0), 8.0, 1.0, 0.0, size=8)
        >>> int(mask_to_image(np.ones((8, 8), np.uint8), a, (20, 20)).sum())
        64
    """
    height, width = image_shape
    return cv2.warpAffine(
        np.ascontiguousarray(mask, dtype=np.uint8),
        np.asarray(affine, dtype=np.float64),
        (int(width), int(height)),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def _normalise(patches: np.ndarray) -> np.ndarray:
    """Each (size, size) patch to zero mean and unit variance; a flat patch to zeros."""
    flat = patches.reshape(len(patches), -1).astype(np.float64)
    mean = flat.mean(axis=1, keepdims=True)
    std = flat.std(axis=1, keepdims=True)
    flat_patch = std <= FLAT_RELATIVE_STD * np.abs(mean)
    normalised = (flat - mean) / np.where(flat_patch, 1.0, std)
    normalised[flat_patch[:, 0]] = 0.0
    return normalised.astype(np.float32).reshape(patches.shape)


@dataclass
class PatchSet:
    """Vertebra patches with their targets, geometry and provenance (N patches).

    Args:
        images: (N, size, size) float32, normalised per patch.
        masks: (N, size, size) uint8 ground-truth masks, or None without contours.
        dist_maps: (N, size, size) float32 distance to the ground-truth curve, or None.
        contours: N (K, 2) patch-space contours (empty list without contours).
        affines: (N, 2, 3) float64 image -> patch maps.
        vertebra_index: (N,) position of the patch's vertebra in its image's list.
        alphas: (N,) patch side in units of the vertebra scale.
        angles: (N,) augmentation angle in degrees.
        image_ids: N image ids.
        labels: N vertebra labels ("C3", ...).
        conditions: N lists of clinical conditions.

    Example:
        >>> dataset = load_dataset("runs/synthetic")  # doctest: +SKIP
        >>> train = PatchSet.from_dataset(dataset, "train", augment=True)  # doctest: +SKIP
        >>> model.fit(train.x(), train.y_true(), batch_size=25)  # doctest: +SKIP
    """

    images: np.ndarray
    masks: np.ndarray | None
    dist_maps: np.ndarray | None
    contours: list[np.ndarray]
    affines: np.ndarray
    vertebra_index: np.ndarray
    alphas: np.ndarray
    angles: np.ndarray
    image_ids: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    conditions: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def x(self) -> np.ndarray:
        """(N, size, size, 1) float32 model input."""
        return self.images[..., None].astype(np.float32)

    def y_true(self) -> np.ndarray:
        """(N, size, size, 2) float32 targets: channel 0 mask {0, 1}, channel 1 distance map."""
        if self.masks is None or self.dist_maps is None:
            raise ConfigError("this patch set was cut without contours: it has no y_true")
        return np.stack([self.masks.astype(np.float32), self.dist_maps], axis=-1)

    def select(self, indices: Sequence[int] | np.ndarray) -> PatchSet:
        """The patches at `indices`, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        pick = indices.tolist()
        return PatchSet(
            images=self.images[indices],
            masks=None if self.masks is None else self.masks[indices],
            dist_maps=None if self.dist_maps is None else self.dist_maps[indices],
            contours=[self.contours[i] for i in pick] if self.contours else [],
            affines=self.affines[indices],
            vertebra_index=self.vertebra_index[indices],
            alphas=self.alphas[indices],
            angles=self.angles[indices],
            image_ids=[self.image_ids[i] for i in pick],
            labels=[self.labels[i] for i in pick],
            conditions=[list(self.conditions[i]) for i in pick],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[PatchSet]) -> PatchSet:
        """One patch set holding `parts` one after the other (all with or all without targets)."""
        if not parts:
            raise ConfigError("cannot concatenate an empty list of patch sets")
        with_targets = parts[0].masks is not None
        if any((p.masks is not None) != with_targets for p in parts):
            raise ConfigError("cannot mix patch sets with and without contours")

        def join(name):
            return np.concatenate([getattr(p, name) for p in parts])

        return cls(
            images=join("images"),
            masks=join("masks") if with_targets else None,
            dist_maps=join("dist_maps") if with_targets else None,
            contours=[c for p in parts for c in p.contours],
            affines=join("affines"),
            vertebra_index=join("vertebra_index"),
            alphas=join("alphas"),
            angles=join("angles"),
            image_ids=[i for p in parts for i in p.image_ids],
            labels=[label for p in parts for label in p.labels],
            conditions=[list(c) for p in parts for c in p.conditions],
        )

    def save(self, path) -> Path:
        """Write the arrays to `path` (.npz) and the lists to `path` with suffix .json.

        Both files are written to temporary names and renamed, the JSON last, so a reader that
        finds the JSON finds a complete `.npz`. Returns the `.npz` path.
        """
        path = Path(path).with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        lengths = np.array([len(c) for c in self.contours], dtype=np.int64)
        points = np.concatenate(self.contours) if self.contours else np.zeros((0, 2))
        arrays = {
            "images": self.images,
            "affines": self.affines,
            "vertebra_index": self.vertebra_index,
            "alphas": self.alphas,
            "angles": self.angles,
            "contour_lengths": lengths,
            "contour_points": points,
        }
        if self.masks is not None:
            arrays["masks"] = self.masks
            arrays["dist_maps"] = self.dist_maps
        with atomic_path(path) as temporary, temporary.open("wb") as stream:
            np.savez(stream, **arrays)
        lists = {
            "format": CACHE_FORMAT,
            "image_ids": self.image_ids,
            "labels": self.labels,
            "conditions": self.conditions,
        }
        write_json_atomic(lists, path.with_suffix(".json"))
        return path

    @classmethod
    def load(cls, path) -> PatchSet:
        """Read a patch set written by `save`.

        Raises:
            DataError: a file is missing, unreadable or of another format.
        """
        path = Path(path).with_suffix(".npz")
        json_path = path.with_suffix(".json")
        try:
            lists = json.loads(json_path.read_text(encoding="utf-8"))
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError) as error:
            raise DataError(path, f"cannot read patch set ({error})") from None
        if not isinstance(lists, dict) or lists.get("format") != CACHE_FORMAT:
            raise DataError(json_path, f"expected {CACHE_FORMAT!r}", field="format")
        offsets = np.cumsum(arrays["contour_lengths"])[:-1]
        contours = (
            np.split(arrays["contour_points"], offsets) if len(arrays["contour_lengths"]) else []
        )
        return cls(
            images=arrays["images"],
            masks=arrays.get("masks"),
            dist_maps=arrays.get("dist_maps"),
            contours=contours,
            affines=arrays["affines"],
            vertebra_index=arrays["vertebra_index"],
            alphas=arrays["alphas"],
            angles=arrays["angles"],
            image_ids=list(lists["image_ids"]),
            labels=list(lists["labels"]),
            conditions=[list(c) for c in lists["conditions"]],
        )

    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset,
        split: str,
        augment: bool,
        *,
        cache_dir=None,
        progress: bool | Callable[[int, int], None] = True,
        workers: int | None = None,
    ) -> PatchSet:
        """All patches of a dataset split, built once and then read from the on-disk cache.

        Training patches (`augment=True`) use the grid `TRAIN_ALPHAS` x `TRAIN_ANGLES`
        (45 per vertebra); test patches use `TEST_ALPHA` and angle 0. Images are read with
        `vertseg_tf.data.images.read_image`.

        The cache file is `<cache_dir>/<split>-<augment|base>-<key>.npz` (+ `.json`), where key
        is the SHA-256 of the split's records in `dataset.json` form (ids, files, centres,
        contours, labels, conditions), each image file's size and modification time, the
        patch parameters and `CACHE_FORMAT`. Changing any of them builds a new set.

        Args:
            dataset: a loaded native dataset (with its root folder).
            split: "train", "val" or "test".
            augment: use the training augmentation grid.
            cache_dir: cache folder; default `default_cache_dir()`.
            progress: while building, True prints `done/total` lines with an ETA to stderr,
                a callable is called as `progress(done, total)` after each image, False is
                silent.
            workers: processes that cut the images in parallel; None uses every core this
                process may run on. Fewer start when the split is small: each gets at least
                `PATCHES_PER_WORKER` patches' worth of work (an image read counting as 50),
                and with one the images are cut in this process. The patches are the same
                for any number of workers.

        Returns:
            the patch set, images in dataset order, vertebra-major within each image.

        Raises:
            DataError: no image in the split, an unreadable image, bad centres (naming
                `dataset.json` and the field).
            ConfigError: `workers` is not a positive integer.
        """
        alphas, angles = (TRAIN_ALPHAS, TRAIN_ANGLES) if augment else ((TEST_ALPHA,), (0.0,))
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


def default_cache_dir() -> Path:
    """`$VERTSEG_TF_CACHE/patches`, else `~/.cache/vertseg-tf/patches`."""
    root = os.environ.get("VERTSEG_TF_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "vertseg-tf"
    return base / "patches"


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
        "format": CACHE_FORMAT,
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


def _worker_count(workers: int | None, jobs: list[_ImageJob]) -> int:
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1
        )
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    grid = len(jobs[0].alphas) * len(jobs[0].angles)
    work = sum(grid * len(job.record.vertebrae) + _READ_COST for job in jobs)
    return max(1, min(workers, len(jobs), work // PATCHES_PER_WORKER))


def _cut_images(jobs: list[_ImageJob], workers: int, report) -> list[PatchSet]:
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


def _cut_image(job: _ImageJob) -> PatchSet:
    """Read one image and cut its patches; errors name `dataset.json` and the record's field."""
    from vertseg_tf.data.images import read_image

    image, _ = read_image(job.path)
    record, where = job.record, f"images[{job.position}]"
    try:
        return extract_patches(
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


def extract_patches(
    image: np.ndarray,
    centers: np.ndarray,
    contours: Sequence[np.ndarray] | None = None,
    *,
    alphas: Sequence[float] = (TEST_ALPHA,),
    angles: Sequence[float] = (0.0,),
    size: int = PATCH_SIZE,
    scale: float | Sequence[float] | None = None,
    image_id: str = "",
    labels: Sequence[str] | None = None,
    conditions: Sequence[Sequence[str]] | None = None,
) -> PatchSet:
    """Cut the patches of one image: every centre x every alpha x every angle.

    Args:
        image: (H, W) image, bone bright.
        centers: (N, 2) xy vertebra centres in spine order.
        contours: N (K, 2) xy outlines in image coordinates, or None (no targets).
        alphas: patch sides in units of the vertebra scale.
        angles: augmentation rotations in degrees.
        size: patch side in pixels.
        scale: explicit vertebra scale(s) (see `vertebra_poses`).
        image_id: id stored with every patch.
        labels: N vertebra labels; default "0", "1", ...
        conditions: N lists of clinical conditions; default none.

    Returns:
        `PatchSet` of N x len(alphas) x len(angles) patches, vertebra-major, then alpha,
        then angle.

    Raises:
        DataError: a non-2D image, bad centres, a contour that is not a finite (K >= 3, 2)
            polygon, or a contour count that does not match.
        ConfigError: see `vertebra_poses`.

    Example:
        >>> centers = np.array([[100.0, 40.0], [100.0, 80.0], [100.0, 120.0]])
        >>> cut = extract_patches(np.zeros((200, 200)), centers, alphas=TRAIN_ALPHAS,
        ...                       angles=TRAIN_ANGLES)
        >>> cut.images.shape
        (135, 64, 64)
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise DataError("image", f"must be a 2-D greyscale array, got shape {image.shape}")
    axes, scales = vertebra_poses(centers, scale)
    centers = np.asarray(centers, dtype=np.float64)
    count = len(centers)
    contours = _checked_contours(contours, count)
    labels = [str(k) for k in range(count)] if labels is None else list(labels)
    conditions = [[] for _ in range(count)] if conditions is None else conditions
    grid = [(float(a), float(t)) for a in alphas for t in angles]
    affines = np.array([
        patch_affine(centers[k], axes[k], scales[k], alpha, angle, size)
        for k in range(count)
        for alpha, angle in grid
    ]).reshape(count * len(grid), 2, 3)
    vertebra = np.repeat(np.arange(count), len(grid))
    outlines, masks, dist_maps = [], None, None
    if contours is not None:
        outlines = [apply_affine(a, contours[k]) for a, k in zip(affines, vertebra.tolist())]
        masks = polygons_to_masks(outlines, (size, size))
        dist_maps = _distance_maps(contours, outlines, affines, len(grid), size)
    return PatchSet(
        images=_cut_patches(image, affines, size),
        masks=masks,
        dist_maps=dist_maps,
        contours=outlines,
        affines=affines,
        vertebra_index=vertebra,
        alphas=np.tile([a for a, _ in grid], count).astype(np.float64),
        angles=np.tile([t for _, t in grid], count).astype(np.float64),
        image_ids=[image_id] * len(affines),
        labels=[labels[k] for k in vertebra.tolist()],
        conditions=[list(conditions[k]) for k in vertebra.tolist()],
    )


def _checked_contours(contours, count: int) -> list[np.ndarray] | None:
    if contours is None:
        return None
    if len(contours) != count:
        raise DataError("contours", f"{len(contours)} contours for {count} centres")
    contours = [np.asarray(contour, dtype=np.float64) for contour in contours]
    for k, contour in enumerate(contours):
        if contour.ndim != 2 or contour.shape[1] != 2 or len(contour) < 3:
            problem = f"must be (K, 2) with K >= 3, got shape {contour.shape}"
            raise DataError("contours", problem, field=f"contours[{k}]")
        if not np.isfinite(contour).all():
            raise DataError("contours", "has a point that is not finite", field=f"contours[{k}]")
    return contours


def _distance_maps(contours, outlines, affines, per_vertebra: int, size: int) -> np.ndarray:
    """(N, size, size) exact distance maps, vertebra by vertebra when each has many patches."""
    if per_vertebra < SHARED_DISTANCE_PATCHES:
        return polyline_distance_maps(outlines, (size, size), closed=True)
    maps = np.empty((len(affines), size, size), np.float32)
    for k, contour in enumerate(contours):
        patches = slice(k * per_vertebra, (k + 1) * per_vertebra)
        maps[patches] = similar_distance_maps(contour, affines[patches], (size, size))
    return maps


def _cut_patches(image: np.ndarray, affines: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size) float32 patches through `affines`, each normalised (module docstring)."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    cuts = np.empty((len(affines), size, size), np.float32)
    for cut, affine in zip(cuts, affines):
        cv2.warpAffine(
            image, affine, (size, size), dst=cut,
            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT,
        )
    return _normalise(cuts)


def mirror_patches(patch_set: PatchSet, which: np.ndarray | Sequence[bool]) -> PatchSet:
    """The patch set with the patches where `which` is True reflected left to right.

    A reflected patch is the patch a mirrored patient would give: every array is flipped along
    its columns (x -> size - 1 - x, which maps pixel centres onto pixel centres, so the flipped
    mask and distance map are exactly those of the reflected contour), the contour is reflected
    and its point order reversed (the winding stays the same), and the affine becomes
    reflection o affine, so `patch_to_image` maps the reflected patch's points back onto the
    same image points.

    Args:
        patch_set: the patches (with or without targets).
        which: (N,) booleans, True for the patches to reflect.

    Returns:
        A new `PatchSet` (the input is not changed), patches in the same order.

    Raises:
        ConfigError: `which` does not hold one boolean per patch.

    Example:
        >>> flipped = mirror_patches(train, np.arange(len(train)) % 2 == 1)  # doctest: +SKIP
    """
    which = np.asarray(which)
    if which.dtype != bool or which.shape != (len(patch_set),):
        raise ConfigError(
            f"which must be {len(patch_set)} booleans (one per patch), got {which.dtype} "
            f"{which.shape}"
        )
    size = patch_set.images.shape[-1]

    def flip(array):
        if array is None:
            return None
        array = array.copy()
        array[which] = array[which][..., ::-1]
        return array

    reflection = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    affines = patch_set.affines.copy()
    affines[which] = reflection[:2] @ np.concatenate(
        [affines[which], np.broadcast_to([0.0, 0.0, 1.0], (int(which.sum()), 1, 3))], axis=1
    )
    contours = [
        np.column_stack([size - 1.0 - c[::-1, 0], c[::-1, 1]]) if flipped else c
        for c, flipped in zip(patch_set.contours, which.tolist())
    ]
    return replace(
        patch_set,
        images=flip(patch_set.images),
        masks=flip(patch_set.masks),
        dist_maps=flip(patch_set.dist_maps),
        contours=contours,
        affines=affines,
        image_ids=list(patch_set.image_ids),
        labels=list(patch_set.labels),
        conditions=[list(c) for c in patch_set.conditions],
    )


def save_contact_sheet(
    patch_set: PatchSet,
    path,
    count: int = 25,
    seed: int = 0,
    columns: int | None = None,
) -> Path:
    """Write a PNG grid of random patches with the mask tinted and the contour drawn.

    Args:
        patch_set: the patches.
        path: output PNG file (written atomically).
        count: number of patches (fewer if the set is smaller).
        seed: seed of the random choice.
        columns: grid width; default the ceiling of sqrt(count).

    Returns:
        the written path.

    Example:
        >>> save_contact_sheet(train, "sheet.png", count=25, seed=0)  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    if count < 1:
        raise ConfigError(f"count must be >= 1, got {count}")
    if len(patch_set) == 0:
        raise ConfigError("the patch set is empty: nothing to draw")
    count = min(count, len(patch_set))
    chosen = np.sort(np.random.default_rng(seed).choice(len(patch_set), count, replace=False))
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    figure, grid = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.75 * rows), squeeze=False)
    for cell in grid.ravel():
        cell.axis("off")
    for cell, i in zip(grid.ravel(), chosen.tolist()):
        cell.imshow(patch_set.images[i], cmap="gray", interpolation="nearest")
        if patch_set.masks is not None:
            tint = np.ma.masked_equal(patch_set.masks[i], 0)
            cell.imshow(tint, cmap="autumn", alpha=0.3, interpolation="nearest", vmin=0, vmax=1)
        if patch_set.contours:
            loop = np.vstack([patch_set.contours[i], patch_set.contours[i][:1]])
            cell.plot(loop[:, 0], loop[:, 1], color="cyan", linewidth=0.8)
        title = f"{patch_set.image_ids[i]} {patch_set.labels[i]}\n"
        title += f"a={patch_set.alphas[i]:.1f} {patch_set.angles[i]:+.0f}deg"
        cell.set_title(title, fontsize=6)
    figure.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=110)
    finally:
        plt.close(figure)
    return path
