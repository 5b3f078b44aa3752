"""Vertebra patch sets: the cut of one image, the cached set of a dataset split, mirroring.

A `PatchSet` holds the patches of many vertebrae with their targets, geometry and provenance;
`extract_patches` cuts one image, `PatchSet.from_dataset` a whole split (cached on disk), and
`mirror_patches` reflects chosen patches. The pieces live below this module, which imports
them and re-exports their public names (none of them imports this module):

    - `patch_geometry`: vertebra poses, the image -> patch maps (docs/architecture.md, patch
      geometry), the way back to the image;
    - `patch_cut`: the content of each patch (resampled image, mask, distance map);
    - `patch_build`: the image jobs, the cache key and the worker processes of a split;
    - `patch_sheet`: contact sheets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import atomic_path, write_json_atomic
from vertseg_tf.data.dataset import Dataset
from vertseg_tf.data.patch_build import (
    PATCHES_PER_WORKER,
    cache_path,
    cut_images,
    default_cache_dir,
    image_jobs,
    worker_count,
)
from vertseg_tf.data.patch_cut import FLAT_RELATIVE_STD, cut_patch_fields
from vertseg_tf.data.patch_geometry import (
    PATCH_SIZE,
    TEST_ALPHA,
    TRAIN_ALPHAS,
    TRAIN_ANGLES,
    mask_to_image,
    patch_affine,
    patch_to_image,
    vertebra_poses,
)
from vertseg_tf.data.patch_sheet import save_contact_sheet
from vertseg_tf.errors import ConfigError, DataError
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

CACHE_FORMAT = "vertseg-patches/1"
_ARRAY_FIELDS = (
    "images", "masks", "dist_maps", "affines", "vertebra_index", "alphas", "angles"
)
_LIST_FIELDS = ("contours", "image_ids", "labels", "conditions")


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
        return cls._gathered((vars(part) for part in parts), sum(len(part) for part in parts))

    @classmethod
    def _gathered(cls, parts: Iterable[dict], count: int) -> PatchSet:
        """The patch set of `count` patches whose fields come in `parts`, copied in as they come
        (a part's arrays can be freed before the next one arrives)."""
        arrays = {name: None for name in _ARRAY_FIELDS}
        lists = {name: [] for name in _LIST_FIELDS}
        filled, with_targets = 0, None
        for part in parts:
            if with_targets is None:
                with_targets = part["masks"] is not None
            elif (part["masks"] is not None) != with_targets:
                raise ConfigError("cannot mix patch sets with and without contours")
            size = len(part["images"])
            for name in _ARRAY_FIELDS:
                value = part[name]
                if value is None:
                    continue
                if arrays[name] is None:
                    arrays[name] = np.empty((count, *value.shape[1:]), value.dtype)
                arrays[name][filled : filled + size] = value
            for name, values in lists.items():
                values.extend(part[name])
            filled += size
        lists["conditions"] = [list(c) for c in lists["conditions"]]
        return cls(**arrays, **lists)

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
            _write_npz(stream, arrays)
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
        jobs = image_jobs(dataset, split, alphas, angles)
        path = cache_path(dataset, split, augment, jobs, cache_dir, CACHE_FORMAT)
        if path.with_suffix(".json").is_file():
            try:
                return cls.load(path)
            except DataError:
                pass
        report = progress_callback(progress, f"patches {split}", "images")
        parts = cut_images(jobs, worker_count(workers, jobs), report)
        grid = len(alphas) * len(angles)
        patch_set = cls._gathered(parts, sum(grid * len(job.record.vertebrae) for job in jobs))
        patch_set.save(path)
        return patch_set


def _write_npz(stream, arrays: dict[str, np.ndarray]) -> None:
    """`np.savez`'s file (a zip of .npy files, stored), without copying the arrays into bytes."""
    import zipfile

    with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            with archive.open(f"{name}.npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array_header_1_0(
                    entry, np.lib.format.header_data_from_array_1_0(array)
                )
                entry.write(memoryview(array.reshape(-1)).cast("B"))


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
    return PatchSet(**cut_patch_fields(
        image, centers, contours, alphas=alphas, angles=angles, size=size, scale=scale,
        image_id=image_id, labels=labels, conditions=conditions,
    ))


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
