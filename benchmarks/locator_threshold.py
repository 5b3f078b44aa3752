"""The locator's missing threshold swept on the films its run held out for validation.

The held-out films are the ones `vertseg-tf-train --method locator` validated on (the
dataset's "val" split, else the share `validation_fraction` of its training films);
`vertseg_tf.locate.evaluate.evaluate_locator` scores each threshold on them.

    python -m benchmarks.locator_threshold --run runs/locator --dataset runs/v2_960 \\
        --out runs/bench/locator_threshold.json
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from vertseg_tf.atomic import write_json_atomic

THRESHOLDS = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def held_out_films(dataset, validation_fraction: float):
    """The films a locator run validated on, relabelled as the "test" split."""
    from vertseg_tf.data.dataset import Dataset
    from vertseg_tf.training.data import _held_out_ids

    films = dataset.split("val")
    if not films:
        train = dataset.split("train")
        held = _held_out_ids([im.id for im in train], validation_fraction)
        films = [im for im in train if im.id in held]
    return Dataset([dataclasses.replace(im, split="test") for im in films], dataset.root)


def measure(run_dir, dataset_dir, thresholds=THRESHOLDS) -> dict:
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.locate.evaluate import evaluate_locator
    from vertseg_tf.locate.locator import Locator
    from vertseg_tf.training.run_folder import RunFolder

    config = RunFolder(run_dir).read_config()
    films = held_out_films(load_dataset(dataset_dir), config.validation_fraction)
    rows = []
    for threshold in thresholds:
        figures = evaluate_locator(Locator(run_dir, threshold=threshold), films)
        rows.append({"threshold": threshold, "all": figures["all"],
                     "segmented": figures.get("segmented")})
    return {"benchmark": "locator_threshold", "run": str(run_dir),
            "dataset": str(dataset_dir), "films": len(films.images), "thresholds": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n")[-1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a locator run folder")
    parser.add_argument("--dataset", required=True, help="the dataset it was trained on")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    args = parser.parse_args(argv)
    result = measure(args.run, args.dataset)
    write_json_atomic(result, Path(args.out))
    for row in result["thresholds"]:
        overall, segmented = row["all"], row["segmented"] or row["all"]
        print(f"threshold {row['threshold']:g}: identified {overall['identified']}/"
              f"{overall['n']} ({segmented['identified']}/{segmented['n']} of C3-C7), "
              f"{overall['false']} false")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
