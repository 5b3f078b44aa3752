"""Choose and write the shipped pretrained model: `python -m vertseg_tf.build_pretrained`.

Given the run folders of UNet and UNet-S trained with the same recipe (`vertseg-tf-train
--config training/pretrained.toml`), this scores both on the validation images the runs held
out, keeps the one with the lower mean point-to-curve error (ties: the higher Dice), scores
both on the dataset's test split, and writes `MODEL_FILE` (the model without optimiser state)
and `RECORD_FILE` (how both were trained and how they scored) into the output folder,
`vertseg_tf/pretrained/` by default. Both files are written to temporary names and renamed.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vertseg_tf.atomic import atomic_path, write_json_atomic
from vertseg_tf.errors import ConfigError, DataError, VertsegError
from vertseg_tf.pretrained import MODEL_FILE, PRETRAINED_DIR, RECORD_FILE
from vertseg_tf.training.run_folder import RunFolder

__all__ = ["RECORD_FORMAT", "build_pretrained", "main", "score_run"]

RECORD_FORMAT = "vertseg-pretrained/1"
TRAINED_ON = "synthetic radiographs only (vertseg_tf.data.synthetic); never on real films"


def _finished_run(run) -> tuple[dict, dict]:
    """(summary, run record) of a finished run folder."""
    folder = RunFolder(run)
    summary = folder.read_summary()
    if not summary:
        raise DataError(folder.summary_path, "not found (is the run finished?)")
    return summary, folder.read_record()


def score_run(run_dir, patches) -> dict[str, Any]:
    """Dice, pixel accuracy, point-to-curve error and fit failure of a UNet run on patches.

    Args:
        run_dir: a finished UNet run folder.
        patches: un-augmented `PatchSet` with targets.

    Returns:
        `{"vertebrae", "dice", "pixel_accuracy", "mean_error_px", "fit_failure"}`: means over
        the vertebrae (the error over those with a finite error) and the share with an error
        over 2 px (empty predictions included).
    """
    from vertseg_tf.evaluation.metrics import fit_failure_rate
    from vertseg_tf.evaluation.records import evaluate_patch_set
    from vertseg_tf.evaluation.runs import predict_run

    kind, masks = predict_run(run_dir, patches.images)
    if kind != "mask":
        raise ConfigError(f"{run_dir}: not a UNet run")
    records, _ = evaluate_patch_set(patches, {"candidate": masks})
    errors = np.array([record.error for record in records], dtype=np.float64)
    finite = errors[np.isfinite(errors)]
    return {
        "vertebrae": len(records),
        "dice": float(np.mean([record.dice for record in records])),
        "pixel_accuracy": float(np.mean([record.pixel_accuracy for record in records])),
        "mean_error_px": float(finite.mean()) if len(finite) else float("inf"),
        "fit_failure": float(fit_failure_rate(errors)),
    }


def _split_patches(dataset, split: str, ids: list[str] | None, cache_dir):
    from vertseg_tf.data.dataset import Dataset
    from vertseg_tf.data.patches import PatchSet

    if ids is None:
        records = dataset.split(split)
    else:
        wanted = set(ids)
        records = [dataclasses.replace(r, split=split) for r in dataset.images if r.id in wanted]
    if not records:
        raise DataError(dataset.root, f"no {split} images to score on", field="images[].split")
    return PatchSet.from_dataset(Dataset(records, dataset.root), split, False,
                                 cache_dir=cache_dir, progress=False)


def _commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def build_pretrained(
    runs: dict[str, Path],
    dataset_dir,
    out_dir=None,
    *,
    recipe: str = "training/pretrained.toml",
    notes: str = "",
    commit: str | None = None,
    cache_dir=None,
) -> dict[str, Any]:
    """Score the candidate runs, keep the better and write the model and its record.

    Args:
        runs: method ("unet", "unet-s") -> finished run folder, trained on `dataset_dir`.
        dataset_dir: the native dataset the runs were trained on (with a "test" split).
        out_dir: where to write; default `vertseg_tf/pretrained/`.
        recipe: the recipe file named in the record.
        notes: free text for the record (hardware, contention, budget).
        commit: the source commit the runs were trained from; default this checkout's HEAD.
        cache_dir: patch cache folder.

    Returns:
        The record (also written as `RECORD_FILE`).

    Raises:
        ConfigError: no runs, or runs that held out different validation images.
        DataError: an unfinished run or a dataset without the images the runs used.
    """
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.pretrained import load_pretrained  # noqa: F401  (same Keras registration)

    if not runs:
        raise ConfigError("give at least one candidate run")
    dataset = load_dataset(dataset_dir)
    finished = {name: _finished_run(run) for name, run in runs.items()}
    summaries = {name: summary for name, (summary, _) in finished.items()}
    configs = {name: record for name, (_, record) in finished.items()}
    held_out = {tuple(s["data"]["val_images"]) for s in summaries.values()}
    if len(held_out) != 1:
        raise ConfigError("the candidate runs held out different validation images")
    val = _split_patches(dataset, "val", list(next(iter(held_out))), cache_dir)
    test = _split_patches(dataset, "test", None, cache_dir)
    candidates = {}
    for name, run in runs.items():
        summary = summaries[name]
        candidates[name] = {
            "run_dir": Path(run).name,
            "epochs": summary["epochs"],
            "wall_time_s": summary["wall_time_s"],
            "train_patches": summary["data"]["train_patches"],
            "config": configs[name]["config"],
            "validation": score_run(run, val),
            "test": score_run(run, test),
        }
    shipped = min(candidates, key=lambda n: (candidates[n]["validation"]["mean_error_px"],
                                             -candidates[n]["validation"]["dice"]))
    out = Path(out_dir) if out_dir is not None else PRETRAINED_DIR
    out.mkdir(parents=True, exist_ok=True)
    from vertseg_tf.models_io import load_keras_model

    model = load_keras_model(RunFolder(runs[shipped]).model_path)
    with atomic_path(out / MODEL_FILE) as temporary:
        model.save(temporary)
    config = candidates[shipped]["config"]
    record = {
        "format": RECORD_FORMAT,
        "trained_on": TRAINED_ON,
        "shipped": shipped,
        "selection": "lowest mean point-to-curve error on the validation images (then Dice)",
        "recipe": recipe,
        "model_preset": config["model"],
        "parameters": int(model.count_params()),
        "model_bytes": (out / MODEL_FILE).stat().st_size,
        "seed": config["seed"],
        "commit": commit or _commit(),
        "data": {
            "dataset": str(Path(dataset_dir).resolve().name),
            "generator_version": _generator_version(),
            "images": {split: len(dataset.split(split)) for split in ("train", "val", "test")},
            "validation_images": list(next(iter(held_out))),
            "validation_vertebrae": len(val),
            "test_vertebrae": len(test),
        },
        "epochs": candidates[shipped]["epochs"],
        "wall_time_s": candidates[shipped]["wall_time_s"],
        "test": candidates[shipped]["test"],
        "candidates": candidates,
        "notes": notes,
    }
    write_json_atomic(record, out / RECORD_FILE)
    return record


def _generator_version() -> int:
    from vertseg_tf.data.synthetic import generator

    return int(generator.GENERATOR_VERSION)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vertseg_tf.build_pretrained",
        description="Score UNet / UNet-S runs, ship the better as the pretrained model.",
        epilog="example:\n  python -m vertseg_tf.build_pretrained --run unet=runs/pre-unet "
        "--run unet-s=runs/pre-unet-s --dataset runs/synthetic-v2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", action="append", required=True, metavar="METHOD=RUN_DIR",
                        help="a candidate run folder (repeat)")
    parser.add_argument("--dataset", required=True, help="the dataset the runs trained on")
    parser.add_argument("--out", help="output folder (default: vertseg_tf/pretrained/)")
    parser.add_argument("--recipe", default="training/pretrained.toml")
    parser.add_argument("--notes", default="", help="free text for the record")
    parser.add_argument("--commit", help="source commit of the runs (default: git HEAD)")
    parser.add_argument("--cache-dir", help="patch cache folder")
    args = parser.parse_args(argv)
    try:
        runs = {}
        for spec in args.run:
            name, sep, path = spec.partition("=")
            if not sep:
                raise ConfigError(f"--run {spec!r}: expected METHOD=RUN_DIR")
            runs[name] = Path(path)
        record = build_pretrained(runs, args.dataset, args.out, recipe=args.recipe,
                                  notes=args.notes, commit=args.commit,
                                  cache_dir=args.cache_dir)
    except VertsegError as error:
        print(f"build: error: {error}", file=sys.stderr)
        return 1
    for name, figures in record["candidates"].items():
        print(f"{name}: validation {figures['validation']}, test {figures['test']}")
    print(f"shipped {record['shipped']} ({record['model_bytes']} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
