"""The patches a training run uses: training set, held-out validation set, data order.

numpy only (no TensorFlow): the same arrays feed the TensorFlow custom loop and `model.fit`
on any Keras backend.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from vertseg_tf.data.dataset import Dataset, load_dataset, require_valid_dataset
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.training.config import TrainConfig

__all__ = ["TrainingData", "load_training_data", "mirror_choice", "resolve_dataset"]

# Seeds the mirror choice apart from the data order and the patch subset of the same seed.
_MIRROR_STREAM = 7


@dataclasses.dataclass
class TrainingData:
    """Training and validation patches as numpy arrays.

    Args:
        x: (N, 64, 64, 1) float32 training patches.
        y_true: (N, 64, 64, 2) float32 targets (mask, distance map).
        val_x: (M, 64, 64, 1) validation patches (one un-augmented patch per vertebra).
        val_y_true: (M, 64, 64, 2) validation targets.
        train_image_ids: ids of the images the training patches come from.
        val_image_ids: ids of the held-out images.
        val_source: "val split" or "held-out training images".
        contours: patch-space training contours (the ASM baselines fit on them).
    """

    x: np.ndarray
    y_true: np.ndarray
    val_x: np.ndarray
    val_y_true: np.ndarray
    train_image_ids: list[str]
    val_image_ids: list[str]
    val_source: str
    contours: list[np.ndarray]

    def describe(self) -> dict:
        """Counts and ids for `config.json` / `summary.json`."""
        return {
            "train_patches": len(self.x),
            "val_patches": len(self.val_x),
            "train_images": len(self.train_image_ids),
            "val_images": self.val_image_ids,
            "val_source": self.val_source,
        }


def resolve_dataset(
    dataset, config: TrainConfig, *, generator_version: int | None = None,
    hard_share: float | None = None,
) -> Path:
    """The dataset folder to train on: `dataset`, or the embedded synthetic one when None.

    The synthetic dataset (`config.synthetic_images` images of size `config.synthetic_size`,
    seed 0) is generated into the cache on first use and reused afterwards.

    Args:
        dataset: a native dataset folder, or None.
        config: the training configuration.
        generator_version: synthetic generator version (None: the current one, 2).
        hard_share: the synthetic test split's exact share of hard vertebrae (v2), or None.

    Raises:
        DataError: `dataset` is not a folder holding `dataset.json`.
    """
    if dataset is None:
        from vertseg_tf.data.synthetic import default_dataset_path
        from vertseg_tf.data.synthetic.generator import GENERATOR_VERSION

        return default_dataset_path(config.synthetic_size, config.synthetic_images,
                                    version=generator_version or GENERATOR_VERSION,
                                    hard_share=hard_share)
    path = Path(dataset)
    if not (path / "dataset.json").is_file():
        problem = "not a folder" if not path.is_dir() else "no dataset.json in this folder"
        raise DataError(path, f"{problem}; expected a native dataset (see 'vertseg-tf validate')")
    return path


def _held_out_ids(ids: list[str], fraction: float) -> set[str]:
    """`round(fraction * n)` image ids (at least one when fraction > 0 and n >= 2), by hash."""
    if fraction <= 0.0 or len(ids) < 2:
        return set()
    count = min(max(1, round(fraction * len(ids))), len(ids) - 1)
    ranked = sorted(ids, key=lambda image_id: hashlib.sha256(image_id.encode()).hexdigest())
    return set(ranked[:count])


def load_training_data(
    dataset_dir, config: TrainConfig, *, cache_dir=None, workers: int | None = None
) -> TrainingData:
    """Cut (or read from the patch cache) the training and validation patches of a dataset.

    Validation uses the dataset's "val" split when it has one, else `config.validation_fraction`
    of the training images (chosen by a hash of their ids, so every seed holds out the same
    images). Validation patches are never augmented.

    Args:
        dataset_dir: a native dataset folder.
        config: the run's config (`augment`, `augment_mirror`, `validation_fraction`,
            `max_train_patches`, `seed`).
        cache_dir: patch cache folder; default `vertseg_tf.data.patches.default_cache_dir()`.
        workers: processes that cut patches (`PatchSet.from_dataset`); None = every core.

    Returns:
        The `TrainingData`.

    Raises:
        DataError: a dataset `vertseg-tf validate` rejects (checked first, its warnings
            printed), no training image.
    """
    from vertseg_tf.data.patches import PatchSet, mirror_patches

    require_valid_dataset(dataset_dir)
    dataset = load_dataset(dataset_dir)
    train_records = dataset.split("train")
    if not train_records:
        raise DataError(
            Path(dataset_dir) / "dataset.json", "no images in split 'train'", field="images[].split"
        )
    if dataset.split("val"):
        val_records, val_source = dataset.split("val"), "val split"
    else:
        held_out = _held_out_ids([r.id for r in train_records], config.validation_fraction)
        val_records = [
            dataclasses.replace(r, split="val") for r in train_records if r.id in held_out
        ]
        train_records = [r for r in train_records if r.id not in held_out]
        val_source = "held-out training images"
    train_set = PatchSet.from_dataset(
        Dataset(train_records, dataset.root), "train", config.augment, cache_dir=cache_dir,
        workers=workers,
    )
    if config.max_train_patches and len(train_set) > config.max_train_patches:
        chosen = np.random.default_rng(config.seed).choice(
            len(train_set), config.max_train_patches, replace=False
        )
        train_set = train_set.select(np.sort(chosen))
    if config.augment_mirror:
        train_set = mirror_patches(train_set, mirror_choice(len(train_set), config.seed))
    if len(train_set) < config.batch_size:
        raise ConfigError(
            f"batch_size {config.batch_size} is larger than the {len(train_set)} training patches"
        )
    if val_records:
        val_set = PatchSet.from_dataset(
            Dataset(val_records, dataset.root), "val", False, cache_dir=cache_dir,
            workers=workers,
        )
        val_x, val_y_true = val_set.x(), val_set.y_true()
    else:
        val_x = np.zeros((0, *train_set.x().shape[1:]), np.float32)
        val_y_true = np.zeros((0, *train_set.images.shape[1:], 2), np.float32)
    return TrainingData(
        x=train_set.x(),
        y_true=train_set.y_true(),
        val_x=val_x,
        val_y_true=val_y_true,
        train_image_ids=sorted({r.id for r in train_records}),
        val_image_ids=[r.id for r in val_records],
        val_source=val_source,
        contours=list(train_set.contours),
    )


def mirror_choice(count: int, seed: int) -> np.ndarray:
    """Which training patches `augment_mirror` reflects: exactly `count // 2`, chosen by `seed`.

    Example:
        >>> int(mirror_choice(45, seed=0).sum())
        22
    """
    chosen = np.zeros(count, dtype=bool)
    chosen[np.random.default_rng([seed, _MIRROR_STREAM]).permutation(count)[: count // 2]] = True
    return chosen
