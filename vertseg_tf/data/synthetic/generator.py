"""`generate`: a synthetic native dataset of lateral cervical radiographs, reproducible per seed.

Image `index` of seed `seed` is drawn from `numpy.random.default_rng([seed, index])` alone, so
it does not depend on how many images are generated, and the same seed gives byte-identical
files. Images are split train/test in the paper's 124:172 proportion by a fixed interleave.
Two generator versions exist: 2 (the default; `scene_v2`, `render_v2`, `overlays`: films with
wide per-film randomisation, both facings, and ground truth for morphometry) and 1 (the first
generator, kept byte for byte so that earlier results can be reproduced).
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
    save_dataset,
)
from vertseg_tf.data.images import write_image
from vertseg_tf.data.synthetic.anatomy import ANNOTATED_LEVELS
from vertseg_tf.data.synthetic.conditions import sample_conditions, sample_conditions_v2
from vertseg_tf.data.synthetic.options import (
    FACINGS,
    GENERATOR_VERSION,
    GENERATOR_VERSIONS,
    IMAGE_FORMATS,
    IMAGE_SIZES,
)
from vertseg_tf.data.synthetic.overlays import (
    JPEG_PROBABILITY,
    TEXT_PROBABILITY,
    burn_text,
    draw_endplate_lines,
    jpeg,
)
from vertseg_tf.data.synthetic.preview import PREVIEW_IMAGES, contact_sheet, preview_tile
from vertseg_tf.data.synthetic.render import MAX_VALUE, burn_marker, render_scene
from vertseg_tf.data.synthetic.render_v2 import render_film
from vertseg_tf.data.synthetic.scene import build_scene
from vertseg_tf.data.synthetic.scene_v2 import build_film_scene
from vertseg_tf.errors import ConfigError
from vertseg_tf.geometry import inside_image, polygon_centroid
from vertseg_tf.progress import progress_callback

__all__ = [
    "GENERATOR_VERSION",
    "GENERATOR_VERSIONS",
    "PAPER_SPLIT",
    "SyntheticImage",
    "cache_key",
    "default_dataset_path",
    "generate",
    "synthesize",
]

PAPER_SPLIT = (124, 172)
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


def _hard_levels(index: int, split_ratio: tuple[int, int], hard_share: float) -> int:
    """Hard vertebrae of test image `index`: every prefix of the test split keeps the share.

    The j-th test image gets round((j + 1) * 5 * share) - round(j * 5 * share) hard vertebrae
    (halves rounded up), so the first n test images hold round(5 * n * share) of them.
    """
    train_share = split_ratio[0] / (split_ratio[0] + split_ratio[1])
    test_index = index - int(index * train_share)  # test images before this one (see _split)
    per_image = len(ANNOTATED_LEVELS) * hard_share

    def cumulative(count: int) -> int:
        return int(np.floor(count * per_image + 0.5 + 1e-9))

    return cumulative(test_index + 1) - cumulative(test_index)


def _check_options(size, image_format, hard_fraction, facing, split_ratio, hard_share=None,
                   version=GENERATOR_VERSION) -> None:
    if version not in GENERATOR_VERSIONS:
        raise ConfigError(f"version must be one of {GENERATOR_VERSIONS}, got {version!r}")
    if hard_share is not None:
        if version == 1:
            raise ConfigError("hard_share needs generator version 2 (version 1 has no such option)")
        if not 0.0 <= float(hard_share) <= 1.0:
            raise ConfigError(f"hard_share must be between 0 and 1, got {hard_share!r}")
    if size not in IMAGE_SIZES:
        raise ConfigError(f"size must be one of {IMAGE_SIZES}, got {size!r}")
    if image_format not in IMAGE_FORMATS:
        raise ConfigError(
            f"image_format must be one of {tuple(IMAGE_FORMATS)}, got {image_format!r}")
    if not 0.0 <= float(hard_fraction) <= 1.0:
        raise ConfigError(f"hard_fraction must be between 0 and 1, got {hard_fraction!r}")
    if facing is not None and facing not in FACINGS:
        raise ConfigError(f"facing must be one of {FACINGS}, got {facing!r}")
    if (len(split_ratio) != 2 or min(split_ratio) < 0 or sum(split_ratio) <= 0):
        raise ConfigError(f"split_ratio must be two non-negative counts, got {split_ratio!r}")


def _resolved_facing(facing: str | None, version: int) -> str:
    """None: "random" (left and right 50/50) for version 2, "left" for version 1."""
    if facing is None:
        return "random" if version >= 2 else "left"
    return facing


def synthesize(
    seed: int,
    index: int,
    *,
    size: str = "full",
    image_format: str = "png",
    hard_fraction: float = 0.2,
    facing: str | None = None,
    split_ratio: tuple[int, int] = PAPER_SPLIT,
    hard_share: float | None = None,
    version: int = GENERATOR_VERSION,
) -> SyntheticImage:
    """Generate image `index` of seed `seed` in memory (see `generate` for the options).

    Returns:
        The `SyntheticImage`; its record's file is `images/syn_<index>.<png|dcm>`.

    Example:
        >>> item = synthesize(0, 3, size="small")
        >>> [v.label for v in item.record.vertebrae]
        ['C3', 'C4', 'C5', 'C6', 'C7']
    """
    _check_options(size, image_format, hard_fraction, facing, split_ratio, hard_share, version)
    if int(seed) < 0 or int(index) < 0:
        raise ConfigError(f"seed and index must be non-negative, got {seed!r} and {index!r}")
    facing = _resolved_facing(facing, version)
    if version == 1:
        return _synthesize_v1(int(seed), int(index), size, image_format, hard_fraction, facing,
                              split_ratio)
    return synthesize_v2(int(seed), int(index), size, image_format, hard_fraction, facing,
                         split_ratio, hard_share)


def _mirror(cols: int, mirrored: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Points (K, 2) as written: rounded to 1e-4 px, x mirrored for a right-facing patient."""
    def place(points: np.ndarray) -> np.ndarray:
        points = np.round(np.asarray(points, np.float64), 4)
        if mirrored:
            points = np.stack([(cols - 1) - points[:, 0], points[:, 1]], axis=1)
        return points

    return place


def _synthesize_v1(seed, index, size, image_format, hard_fraction, facing, split_ratio):
    rng = np.random.default_rng([seed, index])
    plan = sample_conditions(rng, hard_fraction)
    scene = build_scene(rng, plan, size)
    rendered = render_scene(scene, plan.artefacts, rng)
    flip_draw = rng.uniform() < 0.5
    monochrome1 = rng.uniform() < MONOCHROME1_PROBABILITY
    mirrored = facing == "right" or (facing == "random" and flip_draw)
    place = _mirror(scene.shape[1], mirrored)
    image = rendered.image
    if mirrored:
        image = np.ascontiguousarray(image[:, ::-1])
    bodies = {label: place(outline) for label, outline in scene.bodies.items()}
    image_extra = {
        "facing": "right" if mirrored else "left",
        "generator_version": 1,
        "seed": seed,
        "index": index,
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
        vertebrae.append(VertebraRecord(label, polygon_centroid(contour), contour,
                                        plan.of_level(label), extra))
    record = ImageRecord(
        id=f"syn_{index:05d}",
        file=f"images/syn_{index:05d}{IMAGE_FORMATS[image_format]}",
        split=_split(index, split_ratio),
        pixel_spacing_mm=(scene.spacing_mm, scene.spacing_mm),
        vertebrae=vertebrae,
        extra={"synthetic": image_extra},
    )
    photometric = "MONOCHROME1" if monochrome1 and image_format == "dicom" else "MONOCHROME2"
    return SyntheticImage(image, record, photometric)


def _truth(label: str, scene, plan, place) -> dict:
    """The ground truth of one vertebra for clinical read-outs (see docs/data.md)."""
    fracture = scene.spine.level(label).params.fracture
    points = scene.six_points[label]
    return {
        "six_points": {name: place(point[None])[0].tolist() for name, point in points.items()},
        "height_loss": float(fracture.height_loss) if fracture is not None else 0.0,
        "fracture_type": fracture.kind if fracture is not None else "none",
        "listhesis_mm": float(plan.listhesis.get(label, 0.0)),
    }


def _centers_on_film(scene, place) -> dict[str, np.ndarray]:
    """The drawn but not outlined levels (C2, T1) whose centre lies on the film, shoulders or
    not: a centre off the film is left out, so that the locator learns it as missing."""
    centers = {label: place(center[None])[0] for label, center in scene.located_only.items()}
    return {label: center for label, center in centers.items()
            if inside_image(center[None], scene.shape)[0]}


def synthesize_v2(seed: int, index: int, size: str, image_format: str, hard_fraction: float,
                  facing: str, split_ratio: tuple[int, int],
                  hard_share: float | None) -> SyntheticImage:
    """Generator v2 (`synthesize` with `version=2`; options checked there)."""
    rng = np.random.default_rng([seed, index])
    split = _split(index, split_ratio)
    hard_levels = None
    if hard_share is not None and split == "test":
        hard_levels = _hard_levels(index, split_ratio, float(hard_share))
    plan = sample_conditions_v2(rng, hard_fraction, hard_levels)
    scene = build_film_scene(rng, plan, size)
    rendered = render_film(scene, plan.artefacts, rng)
    image, imaging = rendered.image, dict(rendered.extra)
    lines = draw_endplate_lines(image, scene.six_points, plan.artefact_levels, rng)
    flip_draw = rng.uniform() < 0.5
    monochrome1 = rng.uniform() < MONOCHROME1_PROBABILITY
    with_text = rng.uniform() < TEXT_PROBABILITY
    quality = int(rng.integers(25, 86)) if rng.uniform() < JPEG_PROBABILITY else None
    mirrored = facing == "right" or (facing == "random" and flip_draw)
    cols = scene.shape[1]
    place = _mirror(cols, mirrored)
    if mirrored:
        image = np.ascontiguousarray(image[:, ::-1])
    bodies = {label: place(outline) for label, outline in scene.bodies.items()}
    text = burn_text(image, np.vstack(list(bodies.values())), rng) if with_text else []
    if quality is not None:
        image = jpeg(image, quality)
    image_extra = {
        "generator_version": 2,
        "seed": seed,
        "index": index,
        "conditions": list(plan.conditions),
        "artefacts": list(plan.artefacts),
        "artefact_levels": list(plan.artefact_levels),
        "metal": [place(polygon).tolist() for polygon in scene.metal],
        "endplate_lines": [place(np.reshape(line, (2, 2))).ravel().tolist() for line in lines],
        "text": text,
        "jpeg_quality": quality,
        **scene.extra,
        **imaging,
    }
    vertebrae = [
        VertebraRecord(label, polygon_centroid(bodies[label]), bodies[label],
                       plan.of_level(label), {"truth": _truth(label, scene, plan, place)})
        for label in ANNOTATED_LEVELS
    ]
    record = ImageRecord(
        id=f"syn_{index:05d}",
        file=f"images/syn_{index:05d}{IMAGE_FORMATS[image_format]}",
        split=split,
        pixel_spacing_mm=(scene.spacing_mm, scene.spacing_mm),
        vertebrae=vertebrae,
        extra={"facing": "right" if mirrored else "left", "synthetic": image_extra},
        level_centers=_centers_on_film(scene, place),
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
    facing: str | None = None,
    split_ratio: tuple[int, int] = PAPER_SPLIT,
    hard_share: float | None = None,
    version: int = GENERATOR_VERSION,
    preview: bool = False,
    preview_width: int | None = None,
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
        hard_fraction: probability that an image shows at least one condition (for every
            image, or for the training images only when `hard_share` is given).
        facing: "left" (anterior towards smaller x), "right" or "random" (50/50); None is
            "random" for version 2 and "left" for version 1.
        split_ratio: (train, test) proportions, the paper's 124:172 by default.
        hard_share: version 2: the exact share of hard vertebrae (with any condition) in the
            test split, e.g. 0.5 puts round(0.5 x test vertebrae) hard ones there, spread so
            that every prefix of the test split keeps the share. None: `hard_fraction` rules.
        version: the generator version, 2 (default) or 1 (the first generator, unchanged).
        preview: also write a contact sheet of the first 12 images with outlines drawn.
        preview_width: width of one preview tile in pixels (default 420).
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
    _check_options(size, image_format, hard_fraction, facing, split_ratio, hard_share, version)
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
                                  split_ratio=split_ratio, hard_share=hard_share,
                                  version=version)
                records.append(item.record)
                if folder is not None:
                    stored = (item.image if item.photometric == "MONOCHROME2"
                              else MAX_VALUE - item.image)
                    write_image(folder / item.record.file, stored,
                                pixel_spacing_mm=item.record.pixel_spacing_mm,
                                photometric=item.photometric)
                    if preview and index < PREVIEW_IMAGES:
                        tiles.append(preview_tile(item.image, item.record, preview_width))
                if report is not None:
                    report(index + 1, int(n_images))
            if folder is not None:
                save_dataset(Dataset(records), folder)
                if preview:
                    import cv2

                    cv2.imwrite(str(folder / PREVIEW_FILE), contact_sheet(tiles),
                                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    except OSError as error:
        # also a concurrent generate() publishing the same folder first (default_dataset_path)
        raise ConfigError(f"{out_dir}: cannot write the dataset there ({error.strerror})") from None
    return Dataset(records, out_dir)


def _cache_root() -> Path:
    configured = os.environ.get("VERTSEG_TF_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "vertseg-tf"
    return base / "synthetic"


def cache_key(size: str, n_images: int, seed: int, *, version: int = GENERATOR_VERSION,
              hard_share: float | None = None) -> str:
    """The cache folder name of a default dataset: version, size, count, seed (and hard share)."""
    _check_options(size, "png", 0.2, None, PAPER_SPLIT, hard_share, version)
    key = f"v{int(version)}-{size}-n{int(n_images)}-seed{int(seed)}"
    return key if hard_share is None else f"{key}-hardshare{float(hard_share):g}"


def default_dataset_path(
    size: str = "small",
    n_images: int = 296,
    seed: int = 0,
    *,
    version: int = GENERATOR_VERSION,
    hard_share: float | None = None,
) -> Path:
    """The embedded default dataset: generated once into the cache, then reused.

    The cache is `$VERTSEG_TF_CACHE/synthetic/<key>` (default `~/.cache/vertseg-tf/...`),
    the key naming the generator version and the options, so a set of one version is never
    reused for another. The folder appears atomically, so two processes never see a
    half-written dataset; the second one to finish reuses the first.

    Args:
        size: "small" or "full".
        n_images: number of images (296, the paper's count, by default).
        seed: the seed.
        version: the generator version (2 by default; 1 reproduces earlier results).
        hard_share: the test split's exact share of hard vertebrae (version 2), or None.

    Returns:
        The dataset folder (holding `dataset.json`).

    Example:
        >>> from vertseg_tf.data import load_dataset
        >>> dataset = load_dataset(default_dataset_path(n_images=24))
    """
    path = _cache_root() / cache_key(size, n_images, seed, version=version, hard_share=hard_share)
    if (path / DATASET_FILE).is_file():
        return path
    try:
        generate(n_images, seed, path, size=size, version=version, hard_share=hard_share)
    except ConfigError:
        if not (path / DATASET_FILE).is_file():
            raise
    return path
