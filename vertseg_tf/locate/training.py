"""Training the locator (`train(config)` with `config.method == "locator"`).

The whole radiographs of the dataset's training images (a held-out share for validation when
it has no "val" split) are resized once to the canvas; every batch then cuts some of them
across their rows above C3 or below C5-C7 (`cut_film`: a level cut off the film must be found
missing), places each at a random offset on the canvas and mirrors a random half left to right
(a lateral film may face either way; mirroring moves no level up or down, so no label
changes). The run folder is a `RunFolder`: `config.json`, `history.csv`,
`checkpoints/last.keras` (the model with its optimizer after every epoch, from which `resume`
continues), `model.keras`, `summary.json`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vertseg_tf.errors import DataError
from vertseg_tf.locate.heatmaps import (
    LOCATED_LEVELS,
    CanvasGeometry,
    level_centers,
    render_heatmaps,
)
from vertseg_tf.locate.network import (
    LOCATOR_SPECS,
    LocatorSpec,
    build_locator,
    heatmap_loss,
    locator_levels,
    normalise_canvas,
    prepare_canvas,
)

__all__ = ["LocatorData", "load_locator_data", "run_locator_training"]

CHECKPOINT_FILE = "last.keras"


@dataclass
class LocatorData:
    """Resized training and validation films with their level centres in resized pixels.

    `images[k]` is (h, w) float32 (normalised), `centers[k]` (L, 2) per level of `levels`,
    NaN for a level the image does not annotate.
    """

    train_images: list[np.ndarray]
    train_centers: list[np.ndarray]
    val_images: list[np.ndarray]
    val_centers: list[np.ndarray]
    levels: tuple[str, ...] = LOCATED_LEVELS

    def describe(self) -> dict:
        return {"train_images": len(self.train_images), "val_images": len(self.val_images),
                "levels": list(self.levels)}


def annotated_span(records) -> tuple[str, ...]:
    """The consecutive levels of `LOCATED_LEVELS` from the highest to the lowest that any
    record annotates: a locator gets no channel for a level it never sees (an untrained
    channel could report one), and a level inside the span that a film lacks adds no loss.

    Example:
        >>> from vertseg_tf.data.dataset import ImageRecord
        >>> annotated_span([ImageRecord("a", "a.png", level_centers={"C4": [0, 0],
        ...                                                          "C6": [0, 9]})])
        ('C4', 'C5', 'C6')
    """
    seen = [k for k, label in enumerate(LOCATED_LEVELS)
            if any(np.isfinite(level_centers(record, (label,))).all() for record in records)]
    return LOCATED_LEVELS[seen[0]:seen[-1] + 1] if seen else ()


def load_locator_data(dataset_dir, spec: LocatorSpec, validation_fraction: float) -> LocatorData:
    """Read and resize every training (and validation) film of a native dataset.

    Raises:
        DataError: no training image annotates any of C2-T1.
    """
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.data.images import read_image
    from vertseg_tf.training.data import _held_out_ids

    dataset = load_dataset(dataset_dir)
    train = [im for im in dataset.split("train") if np.isfinite(level_centers(im)).any()]
    val = [im for im in dataset.split("val") if np.isfinite(level_centers(im)).any()]
    if not val:
        held = _held_out_ids([im.id for im in train], validation_fraction)
        val = [im for im in train if im.id in held]
        train = [im for im in train if im.id not in held]
    if not train:
        raise DataError(Path(dataset_dir) / "dataset.json",
                        "no training image has a centre of C2-T1", field="images")
    levels = annotated_span(train)
    groups = []
    for records in (train, val):
        images, centers = [], []
        for record in records:
            image, _ = read_image(dataset.image_path(record))
            canvas, geometry = prepare_canvas(image, spec)
            height, width = geometry.resized_shape(image.shape)
            images.append(canvas[:height, :width].copy())
            centers.append((level_centers(record, levels) + 0.5) * geometry.scale - 0.5)
        groups += [images, centers]
    return LocatorData(*groups, levels)


BOTTOM_CUT_PROBABILITY = 0.25
TOP_CUT_PROBABILITY = 0.1
"""Shares of training films cut across their rows between two levels of C5-T1 (the rows
below go) and between two of C2-C4 (the rows above go). Real films often end above T1 or C7;
the cut teaches the locator that a level whose centre is off the film is missing."""
_BOTTOM_CUTS, _TOP_CUTS = ("C5", "C6", "C7"), ("C2", "C3")


def _cut_row(xy, levels, uppers, rng) -> float | None:
    """A row between two consecutive annotated levels whose upper one is in `uppers`."""
    pairs = [k for k in range(len(levels) - 1) if levels[k] in uppers
             and np.isfinite(xy[k, 1]) and np.isfinite(xy[k + 1, 1])]
    if not pairs:
        return None
    k = pairs[int(rng.integers(len(pairs)))]
    return float(xy[k, 1] + rng.uniform(0.25, 0.75) * (xy[k + 1, 1] - xy[k, 1]))


def cut_film(image, xy, levels, rng, long_side: int):
    """Maybe cut a resized film across its rows (`BOTTOM_CUT_PROBABILITY`,
    `TOP_CUT_PROBABILITY`), then resize what is left to the canvas's long side and normalise
    it, as the locator sees a film that was taken that way.

    Args:
        image: (h, w) resized film; xy: (L, 2) its centres per level of `levels` (NaN: not
            annotated).
        rng: the batch's random generator; long_side: the canvas side.

    Returns:
        (image, xy, absent): absent (L,) marks the annotated levels whose centre the cut
        removed (their target is a uniform distribution: no place is that level).
    """
    import cv2

    top, bottom = 0, image.shape[0]
    if rng.uniform() < BOTTOM_CUT_PROBABILITY:
        row = _cut_row(xy, levels, _BOTTOM_CUTS, rng)
        bottom = bottom if row is None else round(row)
    if rng.uniform() < TOP_CUT_PROBABILITY:
        row = _cut_row(xy, levels, _TOP_CUTS, rng)
        top = top if row is None else round(row)
    absent = np.zeros(len(xy), bool)
    if (top, bottom) == (0, image.shape[0]) or bottom - top < image.shape[0] // 4:
        return image, xy, absent
    absent = (xy[:, 1] < top - 0.5) | (xy[:, 1] > bottom - 0.5)
    kept = image[top:bottom]
    scale = long_side / max(kept.shape)
    size = (min(long_side, round(kept.shape[1] * scale)),
            min(long_side, round(kept.shape[0] * scale)))
    resized = cv2.resize(kept, size, interpolation=cv2.INTER_LINEAR)
    moved = (xy - [0.0, top] + 0.5) * scale - 0.5
    moved[absent] = np.nan
    return normalise_canvas(resized), moved, absent


def _batch(images, centers, spec: LocatorSpec, rng: np.random.Generator | None, levels=()):
    """Canvases (N, S, S, 1) and target heatmaps (N, S/stride, S/stride, L); with `rng`, a
    random cut (`cut_film`), a random offset and a random left-right mirror per film."""
    side, stride = spec.long_side, spec.stride
    canvases = np.zeros((len(images), side, side, 1), np.float32)
    targets = []
    for k, (image, xy) in enumerate(zip(images, centers)):
        xy, absent = xy.copy(), np.zeros(len(xy), bool)
        if rng is not None:
            image, xy, absent = cut_film(image, xy, levels, rng, side)
        height, width = image.shape
        x0 = y0 = 0
        if rng is not None:
            x0, y0 = int(rng.integers(0, side - width + 1)), int(rng.integers(0, side - height + 1))
            if rng.uniform() < 0.5:
                image = image[:, ::-1]
                xy[:, 0] = width - 1 - xy[:, 0]
        canvases[k, y0:y0 + height, x0:x0 + width, 0] = image
        geometry = CanvasGeometry(1.0, (float(x0), float(y0)), stride)
        target = render_heatmaps(geometry.to_heatmap(xy), (side // stride,) * 2, spec.sigma)
        target[..., absent] = 1.0
        targets.append(target)
    return canvases, np.stack(targets)


def _sequence(data: LocatorData, spec: LocatorSpec, batch_size: int, seed: int, epoch: int):
    import keras

    class Films(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = epoch

        def __len__(self):
            return max(1, int(np.ceil(len(data.train_images) / batch_size)))

        def on_epoch_end(self):
            self.epoch += 1

        def __getitem__(self, index):
            rng = np.random.default_rng([seed, self.epoch, index])
            order = np.random.default_rng([seed, self.epoch]).permutation(len(data.train_images))
            chosen = order[index * batch_size:(index + 1) * batch_size]
            return _batch([data.train_images[i] for i in chosen],
                          [data.train_centers[i] for i in chosen], spec, rng, data.levels)

    return Films()


def run_locator_training(config, data: LocatorData, folder, resume: bool):
    """Fit the locator, checkpointing after every epoch; returns (model, history rows)."""
    import keras

    spec = LOCATOR_SPECS[config.model]
    checkpoint = folder.checkpoint_dir(CHECKPOINT_FILE)
    history = folder.read_history() if resume else []
    if resume and checkpoint.is_file():
        from vertseg_tf import register_keras_objects

        register_keras_objects()
        model = keras.saving.load_model(checkpoint, custom_objects={"heatmap_loss": heatmap_loss})
        if locator_levels(model) != data.levels:
            raise DataError(checkpoint, f"the checkpoint finds {'-'.join(locator_levels(model))}"
                            f" but the dataset annotates {'-'.join(data.levels)}")
    else:
        keras.utils.set_random_seed(config.seed)
        from vertseg_tf.training.optimizer import make_optimizer

        model = build_locator(spec, data.levels)
        steps = int(np.ceil(len(data.train_images) / config.batch_size))
        model.compile(optimizer=make_optimizer(config, steps), loss=heatmap_loss,
                      jit_compile=config.jit_compile)
        history = []
    validation = _batch(data.val_images, data.val_centers, spec, None) if data.val_images else None
    rows = list(history)

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            rows.append({"epoch": epoch + 1, "loss": float(logs["loss"]),
                         "val_loss": logs.get("val_loss"),
                         "seconds": round(time.monotonic() - self.started, 3)})
            folder.checkpoints.mkdir(parents=True, exist_ok=True)
            from vertseg_tf.atomic import atomic_path

            with atomic_path(checkpoint) as temporary:
                model.save(temporary)
            folder.write_history(rows)

    if len(rows) < config.epochs:
        model.fit(_sequence(data, spec, config.batch_size, config.seed, len(rows)),
                  validation_data=validation, batch_size=config.batch_size,
                  epochs=config.epochs, initial_epoch=len(rows), verbose=2,
                  callbacks=[Checkpoint()])
    return model, rows
