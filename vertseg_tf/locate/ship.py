"""Ship a trained locator beside the pretrained segmenter, with its record and test figures.

    python -m vertseg_tf.locate.ship RUN_DIR [--out vertseg_tf/pretrained]

The model is saved without its optimizer (`LOCATOR_FILE`); the record (`LOCATOR_RECORD_FILE`)
holds the recipe, the data, the epochs, the wall time and `evaluate_locator`'s figures on the
run's dataset's test split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vertseg_tf.atomic import atomic_path, write_json_atomic

__all__ = ["ship_locator"]


def ship_locator(run_dir, out_dir) -> dict:
    """Copy the run's locator (weights only, no optimizer) to `out_dir` and write its record."""
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.locate.evaluate import evaluate_locator
    from vertseg_tf.locate.locator import Locator
    from vertseg_tf.pretrained import LOCATOR_FILE, LOCATOR_RECORD_FILE
    from vertseg_tf.training.run_folder import RunFolder

    folder = RunFolder(run_dir)
    record, summary = folder.read_record(), folder.read_summary()
    # Loaded uncompiled, the model saves without its optimizer.
    trained = Locator(folder.path)
    target = Path(out_dir) / LOCATOR_FILE
    with atomic_path(target) as temporary:
        trained.model.save(temporary)
    dataset = load_dataset(record["dataset"])
    locator = Locator(target)
    figures = evaluate_locator(locator, dataset, "test")
    shipped = {
        "recipe": "training/locator_demo.toml",
        "config": record["config"],
        "parameters": int(trained.model.count_params()),
        "canvas": {"long_side": locator.spec.long_side, "stride": locator.spec.stride},
        "data": {**record["data"], "dataset": Path(record["dataset"]).name,
                 "generator": _generator_note(dataset)},
        "epochs": summary.get("epochs"),
        "wall_time_s": summary.get("wall_time_s"),
        "final": summary.get("final"),
        "decoder": f"decode_chain (levels placed jointly in spine order), missing under "
                   f"confidence {locator.threshold:g}",
        "test": figures,
        "status": _status(figures["all"]),
        "validated_on": "synthetic v2 films only",
        "measured_with": "python -m vertseg_tf.locate.ship RUN_DIR (evaluate_locator on the "
                         "test split of the run's dataset)",
    }
    write_json_atomic(shipped, Path(out_dir) / LOCATOR_RECORD_FILE)
    return shipped


IDENTIFICATION_TARGET = 0.95
MEDIAN_ERROR_TARGET_MM = 2.0
"""The automatic mode's targets on the synthetic test split (identification, centre error)."""


def _generator_note(dataset) -> str:
    """What made a synthetic dataset: generator version, seed, films per split."""
    synthetic = [record.extra.get("synthetic", {}) for record in dataset.images]
    if not synthetic or not all(synthetic):
        return "not synthetic"
    versions = sorted({s.get("generator_version") for s in synthetic}, key=str)
    seeds = sorted({s.get("seed") for s in synthetic}, key=str)
    splits = {name: len(dataset.split(name)) for name in ("train", "test")}
    return (f"synthetic v{'/'.join(map(str, versions))}, seed {'/'.join(map(str, seeds))}, "
            f"{len(synthetic)} films ({splits['train']} train, {splits['test']} test)")


def _status(overall: dict) -> str:
    rate, median = overall["identification_rate"], overall["median_mm"]
    meets = (rate is not None and rate >= IDENTIFICATION_TARGET and median is not None
             and median <= MEDIAN_ERROR_TARGET_MM)
    verdict = "meets" if meets else "misses"
    return (f"{verdict} the automatic-mode targets on the synthetic test split (identification "
            f">= {IDENTIFICATION_TARGET:.0%}, median centre error <= "
            f"{MEDIAN_ERROR_TARGET_MM:g} mm); never checked on real films: review every "
            "automatic result (--review)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "pretrained"))
    args = parser.parse_args(argv)
    shipped = ship_locator(args.run_dir, args.out)
    print(json.dumps(shipped["test"]["all"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
