"""`train`: one training run from a config, a dataset and a run folder.

This module imports no TensorFlow: the "fit" loop runs on any Keras backend (under
`KERAS_BACKEND=jax` with no TensorFlow installed); the "custom" loop and the tf.distribute
strategies import TensorFlow when they are used. The run folder's layout is
`vertseg_tf.training.run_folder.RunFolder`'s.

Under the "multiworker" strategy only the chief (see `is_multiworker_chief`) writes RUN_DIR;
the other workers write to a temporary folder.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time
from pathlib import Path

from vertseg_tf.training.config import StepCallback, TrainConfig
from vertseg_tf.training.data import TrainingData, load_training_data, resolve_dataset
from vertseg_tf.training.distribute import is_multiworker_chief
from vertseg_tf.training.run_folder import RunFolder

__all__ = ["TrainResult", "fit_asm_run", "train"]

class TrainResult(dict):
    """`summary.json` as a dict, plus `run_dir`: the run folder."""

    @property
    def run_dir(self) -> Path:
        return Path(self["run_dir"])


@contextlib.contextmanager
def _dtype_policy(mixed_precision: str):
    """Set the Keras dtype policy for the run and restore the caller's afterwards."""
    import keras

    previous = keras.config.dtype_policy()
    if mixed_precision == "bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def train(
    config: TrainConfig,
    dataset=None,
    out="runs/train",
    *,
    resume: bool = False,
    overwrite: bool = False,
    cache_dir=None,
    workers: int | None = None,
    step_callback: StepCallback | None = None,
) -> TrainResult:
    """Train one method on a dataset and write the run folder.

    Nothing is written before the data is ready: a missing dataset, a bad option or an
    existing run folder (without `resume`/`overwrite`) raises before RUN_DIR is created.

    Args:
        config: the run's `TrainConfig` (e.g. `TRAIN_PRESETS["demo"]`).
        dataset: native dataset folder; None = the embedded synthetic dataset (generated and
            cached on first use).
        out: the run folder RUN_DIR.
        resume: continue the run in `out` from its last checkpoint (its config must equal
            `config` except for `epochs`).
        overwrite: delete an existing `out` when training starts.
        cache_dir: patch cache folder; default `vertseg_tf.data.patches.default_cache_dir()`.
        workers: processes that cut patches (`PatchSet.from_dataset`); None = every core.
        step_callback: called with the global step after every optimisation step (UNet
            methods); an exception raised there stops training like a kill (no final files;
            the checkpoints stay for `resume`).

    Returns:
        The summary (`summary.json` content) with `run_dir`.

    Raises:
        ConfigError: bad options, an unusable run folder, nothing to resume.
        DataError: a missing or invalid dataset.

    Example:
        >>> from vertseg_tf.training import TRAIN_PRESETS, train
        >>> result = train(TRAIN_PRESETS["smoke"], out="runs/smoke")  # doctest: +SKIP
        >>> result["final"]["val_dice"]  # doctest: +SKIP
    """
    if config.strategy == "multiworker" and not is_multiworker_chief():
        # Every worker runs the same steps; only the chief's files are the run. The other
        # workers' copies go to a temporary folder, removed when they are done.
        with tempfile.TemporaryDirectory(prefix="vertseg-tf-worker-") as scratch:
            return _train_into(
                config, dataset, Path(scratch) / "run", resume=False, overwrite=False,
                cache_dir=cache_dir, workers=workers, step_callback=step_callback,
            )
    return _train_into(
        config, dataset, Path(out), resume=resume, overwrite=overwrite, cache_dir=cache_dir,
        workers=workers, step_callback=step_callback,
    )


def _train_into(
    config: TrainConfig, dataset, run_dir: Path, *, resume: bool, overwrite: bool, cache_dir,
    workers: int | None, step_callback: StepCallback | None,
) -> TrainResult:
    folder = RunFolder(run_dir)
    folder.check_usable(config, resume, overwrite)
    dataset_dir = resolve_dataset(dataset, config)
    if config.method == "locator":
        return _train_locator(config, dataset_dir, folder, resume, overwrite, time.monotonic())
    data = load_training_data(dataset_dir, config, cache_dir=cache_dir, workers=workers)
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "config": config.to_dict(),
        "dataset": str(Path(dataset_dir).resolve()),
        "data": data.describe(),
        "effective_learning_rate": config.effective_learning_rate,
    }
    folder.write_record(record)
    started = time.monotonic()
    if not config.is_unet:
        return _train_asm(config, data, folder, record, started)
    folder.write_checkpoint_record(record)
    with _dtype_policy(config.mixed_precision):
        if config.loop == "custom":
            from vertseg_tf.training.custom_loop import run_custom_loop

            model, history = run_custom_loop(config, data, folder, resume, step_callback)
        else:
            from vertseg_tf.training.fit_loop import run_fit_loop

            model, history = run_fit_loop(config, data, folder, resume, step_callback)
    folder.save_model(model)
    return _write_summary(config, folder, record, history, started)


def _train_locator(
    config: TrainConfig, dataset_dir, folder: RunFolder, resume: bool, overwrite: bool,
    started: float,
) -> TrainResult:
    """The locator's run (`vertseg_tf.locate.training`), in the same run-folder layout."""
    from vertseg_tf.locate.network import LOCATOR_SPECS
    from vertseg_tf.locate.training import load_locator_data, run_locator_training

    data = load_locator_data(dataset_dir, LOCATOR_SPECS[config.model],
                             config.validation_fraction)
    if overwrite and folder.path.exists():
        shutil.rmtree(folder.path)
    folder.path.mkdir(parents=True, exist_ok=True)
    record = {"config": config.to_dict(), "dataset": str(Path(dataset_dir).resolve()),
              "data": data.describe(), "effective_learning_rate": config.effective_learning_rate}
    folder.write_record(record)
    folder.write_checkpoint_record(record)
    model, history = run_locator_training(config, data, folder, resume)
    folder.save_model(model)
    return _write_summary(config, folder, record, history, started)


def _write_summary(
    config: TrainConfig, folder: RunFolder, record: dict, history: list[dict], started: float
) -> TrainResult:
    final = history[-1] if history else {}
    ranked = [row for row in history if row.get("val_loss") is not None]
    best = min(ranked, key=lambda row: row["val_loss"]) if ranked else final
    summary = TrainResult(
        method=config.method,
        loop=config.loop,
        epochs=int(final.get("epoch", 0)),
        wall_time_s=round(time.monotonic() - started, 3),
        final={k: v for k, v in final.items() if v is not None and not _is_nan(v)},
        best={k: v for k, v in best.items() if v is not None and not _is_nan(v)},
        data=record["data"],
        model=folder.MODEL_FILE,
        run_dir=str(folder.path),
    )
    if all(row.get("seconds") is not None for row in history):
        summary["train_time_s"] = round(sum(row["seconds"] for row in history), 3)
    folder.write_summary(summary)
    return summary


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _train_asm(
    config: TrainConfig, data: TrainingData, folder: RunFolder, record: dict, started: float
) -> TrainResult:
    """Fit an ASM baseline on the training patches; the summary adds the data and wall time."""
    summary = fit_asm_run(
        config.method, data.x[..., 0], data.contours, folder.path, seed=config.seed,
        record=record,
    )
    summary = TrainResult(
        **summary,
        wall_time_s=round(time.monotonic() - started, 3),
        data=record["data"],
        run_dir=str(folder.path),
    )
    folder.write_summary(summary)
    return summary


def fit_asm_run(
    method: str, images, contours, out_dir, *, seed: int = 0, record: dict | None = None,
    **options,
) -> dict:
    """Fit one ASM (progress lines on stderr) and write it as a run folder.

    Writes `model.json` + `model.npz`, `config.json` (the run record with an "asm" entry:
    method, seed and every constructor option) and `summary.json`.

    Args:
        method: "asm-g", "asm-m" or "asm-rf".
        images: (n, 64, 64) training patches.
        contours: n patch-space training contours.
        out_dir: run folder (created if missing).
        seed: random seed (used by ASM-RF; ASM-G and ASM-M are deterministic).
        record: the run record to extend; default `{"config": TrainConfig(method, seed)}`.
        **options: constructor arguments of the method's class (e.g. `n_landmarks=40`).

    Returns:
        The summary (`summary.json` content); `vertseg_tf.asm.load_asm(out_dir)` loads the
        model.

    Example:
        >>> summary = fit_asm_run("asm-rf", patches, contours, "runs/asm-rf", seed=1,
        ...                       n_trees=20)  # doctest: +SKIP
    """
    from vertseg_tf.asm import fit_asm

    model, fit_seconds = fit_asm(method, images, contours, seed=seed, **options)
    folder = RunFolder(out_dir)
    model_path = model.save(folder.asm_model_path)
    if record is None:
        record = {"config": TrainConfig(method=method, seed=seed).to_dict()}
    asm = {"method": method, "seed": seed, "options": model.get_config()}
    folder.write_record({**record, "asm": asm})
    summary = {
        "method": method,
        "model": model_path.name,
        "n_training_patches": len(images),
        "n_landmarks": model.pdm.n_landmarks,
        "n_shape_modes": model.pdm.n_modes,
        "fit_seconds": round(fit_seconds, 3),
    }
    folder.write_summary(summary)
    return summary
