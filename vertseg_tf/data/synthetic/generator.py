"""`generate`: a synthetic native dataset of lateral cervical radiographs, reproducible per seed.

Image `index` of seed `seed` is drawn from `numpy.random.default_rng([seed, index])` alone, so
it does not depend on how many images are generated, and the same seed gives byte-identical
files. Images are split train/test in the paper's 124:172 proportion by a fixed interleave.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import atomic_dir, require_new_folder
from vertseg_tf.data.dataset import (
    DATASET_FILE,
    Dataset,
    ImageRecord,
    VertebraRecord,
    polygon_area_centroid,
    save_dataset,
)
from vertseg_tf.data.images import write_image
from vertseg_tf.data.synthetic.anatomy import ANNOTATED_LEVELS
from vertseg_tf.data.synthetic.conditions import sample_conditions
from vertseg_tf.data.synthetic.preview import PREVIEW_IMAGES, contact_sheet, preview_tile
from vertseg_tf.data.synthetic.render import MAX_VALUE, burn_marker, render_scene
from vertseg_tf.data.synthetic.scene import SIZES, build_scene
from vertseg_tf.errors import ConfigError
from vertseg_tf.progress import progress_callback

__all__ = [
    "GENERATOR_VERSION",
    "PAPER_SPLIT",
    "SyntheticImage",
    "default_dataset_path",
    "generate",
    "synthesize",
]

GENERATOR_VERSION = 1
PAPER_SPLIT = (124, 172)
FORMATS = {"png": ".png", "dicom": ".dcm"}
FACINGS = ("left", "right", "random")
MONOCHROME1_PROBABILITY = 0.3
PREVIEW_FILE = "preview.png"


@dataclass
class SyntheticImage:
    """One generated radiograph.

    Args:
        image: (rows, cols) uint16, bone bright (the values a MONOCHROME2 file stores).
        record: its annotation; `file` is relative to a dataset folder.
        photometric: "MONOCHROME1" or "MONOCHROME2": how a DICOM file stores it.
    """

    image: np.ndarray
    record: ImageRecord
    photometric: str


def _split(index: int, split_ratio: tuple[int, int]) -> str:
    """Train if the running train quota grows at `index`: every prefix keeps the proportion."""
    share = split_ratio[0] / (split_ratio[0] + split_ratio[1])
    return "train" if int((index + 1) * share) > int(index * share) else "test"


def _check_options(size, image_format, hard_fraction, facing, split_ratio) -> None:
    if size not in SIZES:
        raise ConfigError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    if image_format not in FORMATS:
        raise ConfigError(f"image_format must be one of {tuple(FORMATS)}, got {image_format!r}")
    if not 0.0 <= float(hard_fraction) <= 1.0:
        raise ConfigError(f"hard_fraction must be between 0 and 1, got {hard_fraction!r}")
    if facing not in FACINGS:
        raise ConfigError(f"facing must be one of {FACINGS}, got {facing!r}")
    if (len(split_ratio) != 2 or min(split_ratio) < 0 or sum(split_ratio) <= 0):
        raise ConfigError(f"split_ratio must be two non-negative counts, got {split_ratio!r}")


def synthesize(
    seed: int,
    index: int,
    *,
    size: str = "full",
    image_format: str = "png",
    hard_fraction: float = 0.2,
    facing: str = "left",
    split_ratio: tuple[int, int] = PAPER_SPLIT,
) -> SyntheticImage:
    """Generate image `index` of seed `seed` in memory (see `generate` for the options).

    Returns:
        The `SyntheticImage`; its record's file is `images/syn_<index>.<png|dcm>`.

    Example:
        >>> item = synthesize(0, 3, size="small")
        >>> [v.label for v in item.record.vertebrae]
        ['C3', 'C4', 'C5', 'C6', 'C7']
    """
    _check_options(size, image_format, hard_fraction, facing, split_ratio)
    if int(seed) < 0 or int(index) < 0:
        raise ConfigError(f"seed and index must be non-negative, got {seed!r} and {index!r}")
    rng = np.random.default_rng([int(seed), int(index)])
    plan = sample_conditions(rng, hard_fraction)
    scene = build_scene(rng, plan, size)
    rendered = render_scene(scene, plan.artefacts, rng)
    flip_draw = rng.uniform() < 0.5
    monochrome1 = rng.uniform() < MONOCHROME1_PROBABILITY
    mirrored = facing == "right" or (facing == "random" and flip_draw)

    cols = scene.shape[1]
    image = rendered.image

    def place(points: np.ndarray) -> np.ndarray:
        points = np.round(np.asarray(points, np.float64), 4)
        if mirrored:
            points = np.stack([(cols - 1) - points[:, 0], points[:, 1]], axis=1)
        return points

    if mirrored:
        image = np.ascontiguousarray(image[:, ::-1])
    bodies = {label: place(outline) for label, outline in scene.bodies.items()}
    image_extra = {
        "facing": "right" if mirrored else "left",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "index": int(index),
        "conditions": list(plan.conditions),
        "artefacts": list(plan.artefacts),
        "metal": [place(polygon).tolist() for polygon in scene.metal],
        **scene.extra,
        **rendered.extra,
    }
    if "marker" in plan.artefacts:
        image_extra["marker"] = burn_marker(image, np.vstack(list(bodies.values())), rng)

    vertebrae = []
    for label in ANNOTATED_LEVELS:
        contour = bodies[label]
        fracture = scene.spine.level(label).params.fracture
        extra = {}
        if fracture is not None:
            extra = {"synthetic": {"fracture": fracture.kind,
                                   "anterior_height_loss": fracture.anterior_height_loss}}
        vertebrae.append(VertebraRecord(label, polygon_area_centroid(contour)[1], contour,
                                        plan.of_level(label), extra))
    record = ImageRecord(
        id=f"syn_{index:05d}",
        file=f"images/syn_{index:05d}{FORMATS[image_format]}",
        split=_split(index, split_ratio),
        pixel_spacing_mm=(scene.spacing_mm, scene.spacing_mm),
        vertebrae=vertebrae,
        extra={"synthetic": image_extra},
    )
    photometric = "MONOCHROME1" if monochrome1 and image_format == "dicom" else "MONOCHROME2"
    return SyntheticImage(image, record, photometric)


def generate(
    n_images: int,
    seed: int,
    out_dir=None,
    *,
    size: str = "full",
    image_format: str = "png",
    hard_fraction: float = 0.2,
    facing: str = "left",
    split_ratio: tuple[int, int] = PAPER_SPLIT,
    preview: bool = False,
    progress: bool | Callable[[int, int], None] = True,
    overwrite: bool = False,
) -> Dataset:
    """Generate a synthetic dataset of lateral cervical radiographs with C3-C7 annotated.

    Args:
        n_images: number of images.
        seed: the seed; the same seed gives byte-identical files.
        out_dir: folder to create (absent or empty) with `images/`, `dataset.json` and, with
            `preview`, `preview.png`; it appears complete or not at all. None keeps the
            dataset in memory only (no image files).
        size: "full" (1500-2500 px, 0.10-0.194 mm) or "small" (about 512 px, for tests).
        image_format: "png" (16 bit) or "dicom" (some images MONOCHROME1).
        hard_fraction: probability that an image shows at least one condition.
        facing: "left" (anterior towards smaller x), "right" or "random".
        split_ratio: (train, test) proportions, the paper's 124:172 by default.
        preview: also write a contact sheet of the first 12 images with outlines drawn.
        progress: True prints progress lines to stderr; a callable gets (done, total)
            after every image; False is silent.
        overwrite: replace an existing non-empty `out_dir` once the new one is complete.

    Returns:
        The `Dataset`; its root is `out_dir` when written, else None.

    Raises:
        ConfigError: for a bad option or an `out_dir` that exists and is not empty (without
            `overwrite`).

    Example:
        >>> dataset = generate(4, seed=0, out_dir="runs/synthetic", size="small")
        >>> len(dataset.images)
        4
    """
    _check_options(size, image_format, hard_fraction, facing, split_ratio)
    if int(n_images) < 1:
        raise ConfigError(f"n_images must be at least 1, got {n_images!r}")
    if out_dir is not None:
        out_dir = require_new_folder(out_dir, overwrite=overwrite)
    building = (
        contextlib.nullcontext() if out_dir is None else atomic_dir(out_dir, replace=overwrite)
    )
    try:
        with building as folder:
            records, tiles = [], []
            report = progress_callback(progress, "synth", "images")
            for index in range(int(n_images)):
                item = synthesize(seed, index, size=size, image_format=image_format,
                                  hard_fraction=hard_fraction, facing=facing,
                                  split_ratio=split_ratio)
                records.append(item.record)
                if folder is not None:
                    stored = (item.image if item.photometric == "MONOCHROME2"
                              else MAX_VALUE - item.image)
                    write_image(folder / item.record.file, stored,
                                pixel_spacing_mm=item.record.pixel_spacing_mm,
                                photometric=item.photometric)
                    if preview and index < PREVIEW_IMAGES:
                        tiles.append(preview_tile(item.image, item.record))
                if report is not None:
                    report(index + 1, int(n_images))
            if folder is not None:
                save_dataset(Dataset(records), folder)
                if preview:
                    import cv2

                    cv2.imwrite(str(folder / PREVIEW_FILE), contact_sheet(tiles))
    except OSError as error:
        # also a concurrent generate() publishing the same folder first (default_dataset_path)
        raise ConfigError(f"{out_dir}: cannot write the dataset there ({error.strerror})") from None
    return Dataset(records, out_dir)


def _cache_root() -> Path:
    configured = os.environ.get("VERTSEG_TF_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "vertseg-tf"
    return base / "synthetic"


def default_dataset_path(size: str = "small", n_images: int = 296, seed: int = 0) -> Path:
    """The embedded default dataset: generated once into the cache, then reused.

    The cache is `$VERTSEG_TF_CACHE/synthetic/<key>` (default `~/.cache/vertseg-tf/...`),
    the key naming the generator version and the options. The folder appears atomically, so
    two processes never see a half-written dataset; the second one to finish reuses the first.

    Args:
        size: "small" or "full".
        n_images: number of images (296, the paper's count, by default).
        seed: the seed.

    Returns:
        The dataset folder (holding `dataset.json`).

    Example:
        >>> from vertseg_tf.data import load_dataset
        >>> dataset = load_dataset(default_dataset_path(n_images=24))
    """
    key = f"v{GENERATOR_VERSION}-{size}-n{int(n_images)}-seed{int(seed)}"
    path = _cache_root() / key
    if (path / DATASET_FILE).is_file():
        return path
    try:
        generate(n_images, seed, path, size=size)
    except ConfigError:
        if not (path / DATASET_FILE).is_file():
            raise
    return path
