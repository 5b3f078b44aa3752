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
    from vertseg_tf.locate.network import LOCATOR_SPECS, build_locator
    from vertseg_tf.pretrained import LOCATOR_FILE, LOCATOR_RECORD_FILE
    from vertseg_tf.training.run_folder import RunFolder

    folder = RunFolder(run_dir)
    record, summary = folder.read_record(), folder.read_summary()
    trained = Locator(folder.path)
    model = build_locator(LOCATOR_SPECS[record["config"]["model"]])
    model.set_weights(trained.model.get_weights())
    target = Path(out_dir) / LOCATOR_FILE
    with atomic_path(target) as temporary:
        model.save(temporary)
    figures = evaluate_locator(Locator(target), load_dataset(record["dataset"]), "test")
    shipped = {
        "recipe": "training/locator_demo.toml",
        "config": record["config"],
        "data": {**record["data"], "dataset": Path(record["dataset"]).name,
                 "generator": "synthetic v2, size small, 240 films, seed 18, split 3:1"},
        "epochs": summary.get("epochs"),
        "wall_time_s": summary.get("wall_time_s"),
        "final": summary.get("final"),
        "test": figures,
        "validated_on": "synthetic v2 films only",
    }
    write_json_atomic(shipped, Path(out_dir) / LOCATOR_RECORD_FILE)
    return shipped


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
