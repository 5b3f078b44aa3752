"""`RunFolder`: the one owner of a training run folder's layout.

Every module that reads or writes a run folder (both training loops, the ASM runs, `eval`,
`export`, `reproduce`) goes through this class; none spells a file name itself.

Run folder (RUN_DIR) contents, every file written to a temporary name and renamed:
    config.json      the run record: {"config": the resolved `TrainConfig`, "dataset": the
                     dataset folder, "data": the data counts, "effective_learning_rate"};
                     ASM runs add "asm": {"method", "seed", "options"}
    history.csv      one row per epoch (`HISTORY_COLUMNS`; UNet runs)
    checkpoints/     config.json (the run record again, so the folder describes itself);
                     custom loop: last/ (the last K) and best/ (lowest monitored loss after
                     the shape term's warm-up),
                     `tf.train.CheckpointManager` checkpoints; fit loop: last.weights.h5,
                     best.weights.h5 and backup/ (the `BackupAndRestore` state: a folder
                     state-N per backup, the newest two)
    tensorboard/     TensorBoard scalars and predicted masks (TensorFlow backend)
    model.keras      the final UNet (when training ends; the last epoch's weights, or the best
                     epoch's with `model_selection = "best"`), or, for an ASM run,
    model.json       + model.npz, the fitted active shape model
    summary.json     epochs, wall time, final and best metrics, `model_selection` and
                     `selected_epoch` (when training ends)

numpy-free and TensorFlow-free: importing this module costs nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

from vertseg_tf.atomic import atomic_path, write_json_atomic, write_text_atomic
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.training.config import TrainConfig

__all__ = [
    "HISTORY_COLUMNS",
    "RunFolder",
    "read_run_config",
    "recorded_dataset",
    "restore_newest_readable",
]

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


class RunFolder:
    """A training run folder: the paths of its files and the readers and writers of each.

    Args:
        path: the run folder RUN_DIR (need not exist yet).

    Example:
        >>> folder = RunFolder("runs/demo")
        >>> folder.model_path.as_posix(), folder.checkpoint_dir("last").as_posix()
        ('runs/demo/model.keras', 'runs/demo/checkpoints/last')
    """

    CONFIG_FILE = "config.json"
    SUMMARY_FILE = "summary.json"
    HISTORY_FILE = "history.csv"
    MODEL_FILE = "model.keras"
    ASM_MODEL_FILE = "model.json"
    CHECKPOINTS_DIR = "checkpoints"
    TENSORBOARD_DIR = "tensorboard"

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY_FILE

    @property
    def history_path(self) -> Path:
        return self.path / self.HISTORY_FILE

    @property
    def model_path(self) -> Path:
        """The final UNet, `model.keras`."""
        return self.path / self.MODEL_FILE

    @property
    def asm_model_path(self) -> Path:
        """The fitted active shape model, `model.json` (its arrays beside it in `model.npz`)."""
        return self.path / self.ASM_MODEL_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS_DIR

    @property
    def tensorboard(self) -> Path:
        return self.path / self.TENSORBOARD_DIR

    def checkpoint_dir(self, name: str) -> Path:
        """`checkpoints/<name>`: a checkpoint folder ("last", "best", "backup")."""
        return self.checkpoints / name

    def write_record(self, record: dict) -> None:
        """Write the run record as `config.json`."""
        write_json_atomic(record, self.config_path)

    def write_checkpoint_record(self, record: dict) -> None:
        """Write the run record as `checkpoints/config.json`, beside the checkpoints."""
        write_json_atomic(record, self.checkpoints / self.CONFIG_FILE)

    def read_record(self) -> dict:
        """The run record (`config.json`).

        Raises:
            DataError: the folder has no `config.json`, or it is not a JSON object.
        """
        return _read_json_object(self.config_path, "not a run folder (config.json missing)")

    def read_config(self) -> TrainConfig:
        """The `TrainConfig` the run was started with.

        Raises:
            ConfigError: the folder has no readable `config.json` (nothing to resume).
        """
        try:
            record = self.read_record()
        except DataError as error:
            if not self.config_path.is_file():
                raise ConfigError(f"{self.config_path}: no run to resume (config.json missing)")
            raise ConfigError(str(error)) from None
        return TrainConfig.from_dict(record.get("config"), source=str(self.config_path))

    def method(self) -> str:
        """The method the run was trained with ("unet", "unet-s", "asm-g", ...).

        Raises:
            DataError: no readable `config.json`, or no method in it.
        """
        try:
            return str(self.read_record()["config"]["method"])
        except (KeyError, TypeError):
            raise DataError(self.config_path, "no method recorded", field="config.method") from None

    def finished_model_path(self) -> Path:
        """The final model of a finished run: `model.keras` (UNet) or `model.json` (ASM).

        Raises:
            DataError: no readable `config.json`, or the model has not been written (yet).
        """
        path = self.asm_model_path if self.method().startswith("asm") else self.model_path
        if not path.is_file():
            raise DataError(path, "run has no finished model (training incomplete?)")
        return path

    def dataset(self) -> Path | None:
        """The dataset folder the run was trained on, when it is recorded and still exists."""
        try:
            return recorded_dataset(self.read_record())
        except DataError:
            return None

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(dict(summary), self.summary_path)

    def read_summary(self) -> dict:
        """`summary.json` ({} while the run has not finished).

        Raises:
            DataError: the file is there but not a JSON object.
        """
        if not self.summary_path.is_file():
            return {}
        return _read_json_object(self.summary_path, "cannot be read")

    def write_history(self, rows: list[dict]) -> None:
        """Write the per-epoch history as CSV (atomically); missing values are left empty."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in HISTORY_COLUMNS})
        write_text_atomic(buffer.getvalue(), self.history_path)

    def keep_history(self, epochs: int) -> None:
        """Drop the rows of `history.csv` after epoch `epochs` (a resume from an older
        checkpoint redoes them), keeping the other lines as they are written."""
        if not self.history_path.is_file():
            return
        header, *rows = self.history_path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [row for row in rows if int(row.split(",", 1)[0]) <= epochs]
        write_text_atomic("".join([header, *kept]), self.history_path)

    def read_history(self) -> list[dict]:
        """The rows of `history.csv` (numbers as floats, the epoch as int); [] if absent."""
        if not self.history_path.is_file():
            return []
        with self.history_path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
        return [
            {k: (int(v) if k == "epoch" else float(v) if v not in ("", None) else None)
             for k, v in row.items()}
            for row in rows
        ]

    def save_model(self, model) -> None:
        """`model.save` to `model.keras` through a temporary `.keras` file and a rename."""
        with atomic_path(self.model_path) as temporary:
            model.save(temporary)

    def check_usable(self, config: TrainConfig, resume: bool, overwrite: bool) -> None:
        """Refuse, before any work, a run folder that cannot be (re)used as asked.

        Raises:
            ConfigError: `resume` with `overwrite`, a file in the way, an existing run
                without `resume`/`overwrite`, a resumed run with other settings, or a
                folder that cannot be written.
        """
        run_dir = self.path
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"{run_dir}: exists and is not a folder")
        existing = run_dir.is_dir() and any(run_dir.iterdir())
        if resume:
            stored = self.read_config().to_dict()
            differing = [
                name
                for name, value in config.to_dict().items()
                if name != "epochs" and stored[name] != value
            ]
            if differing:
                raise ConfigError(
                    f"{run_dir}: the run was started with other settings "
                    f"({', '.join(differing)}); resume with the stored config (only --epochs "
                    "may change)"
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


def _read_json_object(path: Path, missing: str) -> dict:
    """The JSON object in `path`, or a `DataError` naming it (`missing` when it is absent)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise DataError(path, missing) from None
    except ValueError as error:
        raise DataError(path, f"not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise DataError(path, "expected a JSON object")
    return record


def recorded_dataset(record: dict | None) -> Path | None:
    """The "dataset" folder of a run record, when it is given and still holds a dataset."""
    value = (record or {}).get("dataset")
    if isinstance(value, str) and (Path(value) / "dataset.json").is_file():
        return Path(value)
    return None


def read_run_config(run_dir) -> TrainConfig:
    """The `TrainConfig` stored in a run folder's `config.json` (`RunFolder.read_config`).

    Raises:
        ConfigError: the folder has no readable `config.json`.
    """
    return RunFolder(run_dir).read_config()


def restore_newest_readable(candidates: list[str], restore, folder) -> str | None:
    """Restore the newest of `candidates` (checkpoints, newest first) that reads back whole.

    A checkpoint torn by a crash, a full disk or a copy cut short is skipped with a warning
    naming it and the one restored instead. Every checkpoint holds every variable, so the
    older one overwrites whatever the torn one had assigned before it failed. Both training
    loops resume through here.

    Args:
        candidates: the checkpoints' paths, newest first.
        restore: restores the checkpoint at a path; raises (anything) when it is unreadable.
        folder: the checkpoint folder, named in the error.

    Returns:
        The restored checkpoint's path, or None when there is none (a fresh start).

    Raises:
        DataError: there are checkpoints and none of them is readable.
    """
    for index, path in enumerate(candidates):
        try:
            restore(path)
        except Exception as error:  # noqa: BLE001 - TensorFlow, Keras and h5py raise many types
            fallback = candidates[index + 1] if index + 1 < len(candidates) else None
            reason = " ".join(str(error).split())[:120] or type(error).__name__
            instead = f"resuming from {fallback} instead" if fallback else "no older one left"
            print(f"warning: {path}: unreadable checkpoint ({reason}); {instead}",
                  file=sys.stderr, flush=True)
            continue
        return path
    if candidates:
        raise DataError(
            folder, "no readable checkpoint to resume from (all torn); start again with --overwrite"
        )
    return None
