"""Evaluate trained run folders on a dataset split: the `vertseg-tf eval` command's library.

A run folder is what `vertseg-tf train` writes (`vertseg_tf.training.run_folder.RunFolder`):
a UNet run holds `model.keras`, an active shape model run holds `model.json` + `model.npz`;
both hold `config.json` naming the method.
Networks predict masks (argmax of the softmax, ties to background as in the loss); ASMs
predict contours, rasterised like the ground truth by `evaluate_patch_set`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import require_new_folder
from vertseg_tf.channels import predicted_mask
from vertseg_tf.errors import ConfigError
from vertseg_tf.training.run_folder import RunFolder

__all__ = ["evaluate_runs", "predict_run", "run_method"]


def run_method(run_dir) -> str:
    """The method a run folder was trained with ("unet", "unet-s", "asm-g", ...).

    Raises:
        DataError: the folder has no readable `config.json` or no finished model.
    """
    folder = RunFolder(run_dir)
    folder.finished_model_path()
    return folder.method()


def predict_run(run_dir, images: np.ndarray, *, batch_size: int = 64):
    """Predict normalised (N, 64, 64) test patches with the model of a run folder.

    Returns:
        ("mask", (N, 64, 64) uint8 masks) for a UNet run, or ("contour", list of (K, 2)
        patch-space contours) for an active shape model run.
    """
    folder = RunFolder(run_dir)
    model_path = folder.finished_model_path()
    if folder.method().startswith("asm"):
        from vertseg_tf.asm import load_asm

        return "contour", load_asm(model_path).predict(images)
    from vertseg_tf.models_io import load_keras_model

    model = load_keras_model(model_path)
    probabilities = model.predict(images[..., None], batch_size=batch_size, verbose=0)
    return "mask", predicted_mask(probabilities).astype(np.uint8)


def evaluate_runs(
    dataset_dir,
    runs: Mapping[str, Path],
    out_dir,
    *,
    split: str = "test",
    cache_dir=None,
    workers: int | None = None,
    title: str = "vertseg-tf evaluation",
    command_line: str | None = None,
    progress: Callable[[str], None] | None = None,
    notes: Sequence[str] = (),
    overwrite: bool = False,
    locator=None,
) -> Path:
    """Predict the un-augmented patches of `split` with every run and write the report.

    With a `locator`, the report gains the automatic mode's section
    (`vertseg_tf.evaluation.automatic`): the locator's centre figures on `split` and every
    network run's segmentation from the located centres against the true ones.

    Args:
        dataset_dir: a native dataset folder.
        runs: report name (e.g. "UNet-S") -> run folder.
        out_dir: the report folder; must not exist or be empty unless `overwrite`.
        split: the dataset split to evaluate.
        cache_dir: patch cache folder.
        workers: processes that cut patches (`PatchSet.from_dataset`); None = every core.
        title: the report's heading.
        command_line: the command quoted in the report.
        progress: called with a line of text before each method is predicted.
        notes: lines the report lists under the command.
        overwrite: replace an existing non-empty `out_dir` (else it is refused before any
            work).
        locator: a locator run folder, `.keras` file, "pretrained" or a `Locator`; None
            leaves the automatic mode out.

    Returns:
        The path of `report.md`.

    Raises:
        ConfigError: no runs, an empty split, or an `out_dir` that may not be written.
        DataError: a dataset `vertseg-tf validate` rejects (checked before any work, its
            warnings printed), or a bad run folder.
    """
    from vertseg_tf.data.dataset import load_dataset, require_valid_dataset
    from vertseg_tf.data.patches import PatchSet
    from vertseg_tf.evaluation.records import evaluate_patch_set
    from vertseg_tf.evaluation.report import write_report

    if not runs:
        raise ConfigError("no model to evaluate (give at least one NAME=RUN_DIR)")
    require_new_folder(out_dir, overwrite=overwrite)
    for run_dir in runs.values():
        run_method(run_dir)
    require_valid_dataset(dataset_dir)
    dataset = load_dataset(dataset_dir)
    if not dataset.split(split):
        raise ConfigError(f"{dataset_dir}: no images in split {split!r}")
    patches = PatchSet.from_dataset(
        dataset, split, False, cache_dir=cache_dir, workers=workers
    )
    masks, contours = {}, {}
    for name, run_dir in runs.items():
        if progress:
            progress(f"predicting {len(patches)} {split} patches with {name} ({run_dir})")
        kind, prediction = predict_run(run_dir, patches.images)
        (masks if kind == "mask" else contours)[name] = prediction
    records, samples = evaluate_patch_set(patches, masks, contours)
    sections = []
    if locator is not None:
        sections.append(_automatic_section(dataset, runs, locator, split, progress))
    return write_report(
        records, out_dir, title=title, samples=samples, command_line=command_line,
        overwrite=overwrite, notes=notes, sections=sections,
    )


def _automatic_section(dataset, runs: Mapping[str, Path], locator, split, progress):
    """The automatic mode's report section for the network runs among `runs`."""
    from vertseg_tf.evaluation.automatic import (
        automatic_section,
        evaluate_automatic,
        network_predictor,
    )
    from vertseg_tf.locate.locator import Locator

    if not hasattr(locator, "locate"):
        locator = Locator(locator)
    networks = {name: network_predictor(run_dir) for name, run_dir in runs.items()
                if not run_method(run_dir).startswith("asm")}
    if progress:
        progress(f"automatic mode: locating the {split} films with {locator.source}")
    return automatic_section(evaluate_automatic(dataset, locator, networks, split))
