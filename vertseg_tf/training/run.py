"""`train`: one training run from a config, a dataset and a run folder.

This module imports no TensorFlow: the "fit" loop runs on any Keras backend (under
`KERAS_BACKEND=jax` with no TensorFlow installed); the "custom" loop and the tf.distribute
strategies import TensorFlow when they are used.

Run folder (RUN_DIR) contents, every file written to a temporary name and renamed:
    config.json      the resolved `TrainConfig`, the dataset and the data counts
    history.csv      one row per epoch (loss, mean E, validation metrics, seconds)
    checkpoints/     custom loop: last/ (the last K) and best/ (lowest validation loss),
                     `tf.train.CheckpointManager` checkpoints, each folder with config.json;
                     fit loop: last.weights.h5, best.weights.h5 and the BackupAndRestore state
    tensorboard/     TensorBoard scalars and predicted masks (TensorFlow backend)
    model.keras      the final model (when training ends): the last epoch's weights, or the
                     best epoch's with `model_selection = "best"`
    summary.json     epochs, wall time, final and best metrics, the selected epoch

Under the "multiworker" strategy only the chief (see `is_multiworker_chief`) writes RUN_DIR;
the other workers write to a temporary folder.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vertseg_tf.atomic import atomic_path, write_json_atomic, write_text_atomic
from vertseg_tf.errors import ConfigError
from vertseg_tf.training.config import TrainConfig
from vertseg_tf.training.data import TrainingData, load_training_data, resolve_dataset

__all__ = [
    "CONFIG_FILE",
    "HISTORY_COLUMNS",
    "StepCallback",
    "TrainResult",
    "is_multiworker_chief",
    "read_run_config",
    "train",
]

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.keras"
HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "shape_error",
    "val_loss",
    "val_pixel_accuracy",
    "val_dice",
    "val_shape_error",
    "seconds",
)

StepCallback = Callable[[int], None]
"""Called with the global step number after every optimisation step; raising stops training."""


class TrainResult(dict):
    """`summary.json` as a dict, plus `run_dir`: the run folder."""

    @property
    def run_dir(self) -> Path:
        return Path(self["run_dir"])


def read_run_config(run_dir) -> TrainConfig:
    """The `TrainConfig` stored in a run folder's `config.json`.

    Raises:
        ConfigError: the folder has no readable `config.json`.
    """
    path = Path(run_dir) / CONFIG_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError(f"{path}: no run to resume (config.json missing)") from None
    except ValueError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    return TrainConfig.from_dict(stored.get("config"), source=str(path))


def is_multiworker_chief() -> bool:
    """Whether this process is the chief of the `TF_CONFIG` cluster (the task "chief", or
    worker 0 of a cluster without one); True without `TF_CONFIG`."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except ValueError:
        raise ConfigError("TF_CONFIG is not valid JSON") from None
    task = cluster.get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    has_chief = "chief" in cluster.get("cluster", {})
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and not has_chief


def _check_run_dir(run_dir: Path, config: TrainConfig, resume: bool, overwrite: bool) -> None:
    """Refuse, before any work, a run folder that cannot be (re)used as asked."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: exists and is not a folder")
    existing = run_dir.is_dir() and any(run_dir.iterdir())
    if resume:
        stored = read_run_config(run_dir)
        differing = [
            name
            for name, value in config.to_dict().items()
            if name != "epochs" and stored.to_dict()[name] != value
        ]
        if differing:
            raise ConfigError(
                f"{run_dir}: the run was started with other settings ({', '.join(differing)}); "
                "resume with the stored config (only --epochs may change)"
            )
    elif existing and not overwrite:
        raise ConfigError(
            f"{run_dir}: run folder exists; pass --resume to continue it or --overwrite to "
            "replace it"
        )
    ancestor = run_dir
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{run_dir}: cannot write the run folder here (permission denied)")


def write_history(rows: list[dict], path: Path) -> None:
    """Write the per-epoch history as CSV (atomically); missing values are left empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in HISTORY_COLUMNS})
    write_text_atomic(buffer.getvalue(), path)


def read_history(path: Path) -> list[dict]:
    """The rows of a `history.csv` (numbers as floats, the epoch as int); [] if absent."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    return [
        {k: (int(v) if k == "epoch" else float(v) if v not in ("", None) else None)
         for k, v in row.items()}
        for row in rows
    ]


def save_model_atomic(model, path: Path) -> None:
    """`model.save(path)` through a temporary `.keras` file beside it and a rename."""
    with atomic_path(path) as temporary:
        model.save(temporary)


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
    run_dir = Path(out)
    if config.strategy == "multiworker" and not is_multiworker_chief():
        # Every worker runs the same steps; only the chief's files are the run.
        run_dir = Path(tempfile.mkdtemp(prefix="vertseg-tf-worker-"))
        resume, overwrite = False, True
    _check_run_dir(run_dir, config, resume, overwrite)
    dataset_dir = resolve_dataset(dataset, config)
    data = load_training_data(dataset_dir, config, cache_dir=cache_dir)
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "config": config.to_dict(),
        "dataset": str(Path(dataset_dir).resolve()),
        "data": data.describe(),
        "effective_learning_rate": config.effective_learning_rate,
    }
    write_json_atomic(record, run_dir / CONFIG_FILE)
    started = time.monotonic()
    if not config.is_unet:
        return _train_asm(config, data, run_dir, record, started)
    with _dtype_policy(config.mixed_precision):
        if config.loop == "custom":
            from vertseg_tf.training.custom_loop import run_custom_loop

            model, history = run_custom_loop(config, data, run_dir, record, resume, step_callback)
        else:
            from vertseg_tf.training.fit_loop import run_fit_loop

            model, history = run_fit_loop(config, data, run_dir, resume, step_callback)
    save_model_atomic(model, run_dir / MODEL_FILE)
    return _write_summary(config, run_dir, record, history, started)


def _write_summary(config, run_dir: Path, record: dict, history: list[dict], started: float):
    final = history[-1] if history else {}
    best = _best_row(config, history) or final
    selected = best if config.model_selection == "best" else final
    summary = TrainResult(
        method=config.method,
        loop=config.loop,
        epochs=int(final.get("epoch", 0)),
        wall_time_s=round(time.monotonic() - started, 3),
        final={k: v for k, v in final.items() if v is not None and not _is_nan(v)},
        best={k: v for k, v in best.items() if v is not None and not _is_nan(v)},
        data=record["data"],
        model=MODEL_FILE,
        model_selection=config.model_selection,
        selected_epoch=int(selected.get("epoch", 0)),
        run_dir=str(run_dir),
    )
    if all(row.get("seconds") is not None for row in history):
        summary["train_time_s"] = round(sum(row["seconds"] for row in history), 3)
    write_json_atomic(dict(summary), run_dir / SUMMARY_FILE)
    return summary


def _best_row(config: TrainConfig, history: list[dict]) -> dict | None:
    """The epoch the loops keep as "best": the lowest validation loss (the training loss
    without validation data) from `config.first_selectable_epoch` on; None if there is none."""
    rows = [row for row in history if row["epoch"] >= config.first_selectable_epoch]
    monitor = "val_loss" if any(row.get("val_loss") is not None for row in rows) else "loss"
    ranked = [row for row in rows if row.get(monitor) is not None and not _is_nan(row[monitor])]
    return min(ranked, key=lambda row: row[monitor]) if ranked else None


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _train_asm(config, data: TrainingData, run_dir: Path, record: dict, started: float):
    """Fit an ASM baseline with `vertseg_tf.asm.fit_asm_run`; add the run's record to its files."""
    from vertseg_tf.asm import fit_asm_run

    fit_asm_run(
        config.method, data.x[..., 0], data.contours, run_dir, seed=config.seed
    )
    asm_config = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    write_json_atomic({**record, "asm": asm_config}, run_dir / CONFIG_FILE)
    asm_summary = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    summary = TrainResult(
        **asm_summary,
        wall_time_s=round(time.monotonic() - started, 3),
        data=record["data"],
        run_dir=str(run_dir),
    )
    write_json_atomic(dict(summary), run_dir / SUMMARY_FILE)
    return summary
