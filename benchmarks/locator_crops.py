"""Does the locator invent a level the film does not show? Films cropped above C3 or below C7.

Each test film of a synthetic v2 dataset (which records the C2 and T1 centres) is cut twice
across its rows: once halfway between the C7 and T1 centres (T1's centre is off the film, the
top of its body may show) and once halfway between the C2 and C3 centres (C2's centre is off
the film). The locator runs on the uncut film and on both cuts, and
`vertseg_tf.locate.evaluate.locator_figures` scores each against the centres that lie on that
film: a level found whose centre is off the film is a false detection. Films whose shoulders
cover C6-C7 are also scored apart.

    python -m benchmarks.locator_crops --dataset runs/v2_240 --out runs/bench/locator_crops.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import write_json_atomic
from vertseg_tf.locate.evaluate import found_centers, locator_figures

CUTS = ("uncut", "below_c7", "above_c3")


def _cut(image, truth, levels, cut):
    """(cropped image, its true centres (NaN off the film)) of one film for one cut."""
    rows = {label: truth[levels.index(label), 1] for label in ("C2", "C3", "C7", "T1")}
    top, bottom = 0, image.shape[0]
    if cut == "below_c7":
        bottom = round((rows["C7"] + rows["T1"]) / 2)
    elif cut == "above_c3":
        top = round((rows["C2"] + rows["C3"]) / 2)
    cropped = image[top:bottom]
    moved = truth - [0.0, top]
    off = (moved[:, 1] < -0.5) | (moved[:, 1] > cropped.shape[0] - 0.5)
    moved[off] = np.nan
    return cropped, moved


def measure(dataset_dir, locator_source="pretrained", split="test") -> dict:
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.data.images import read_image
    from vertseg_tf.locate.heatmaps import level_centers
    from vertseg_tf.locate.locator import Locator

    locator = Locator(locator_source)
    levels = list(locator.levels)
    if not {"C2", "C3", "C7", "T1"} <= set(levels):
        raise SystemExit(f"the locator finds {levels}: the cuts need C2, C3, C7 and T1")
    dataset = load_dataset(dataset_dir)
    records = [r for r in dataset.split(split)
               if np.isfinite(level_centers(r, ("C2", "C3", "C7", "T1"))).all()]
    if not records:
        raise SystemExit(f"{dataset_dir}: no {split} film records C2, C3, C7 and T1")
    found = {cut: [] for cut in CUTS}
    truth = {cut: [] for cut in CUTS}
    covered, spacing = [], []
    started = time.monotonic()
    for record in records:
        image, _ = read_image(dataset.image_path(record))
        centres = level_centers(record, levels)
        for cut in CUTS:
            cropped, moved = _cut(image, centres, levels, cut)
            found[cut].append(found_centers(locator.locate(cropped)))
            truth[cut].append(moved)
        covered.append(bool(record.extra.get("synthetic", {}).get("shoulders_cover_c6_c7")))
        spacing.append((record.pixel_spacing_mm or (1.0, 1.0))[0])
    spacing, covered = np.array(spacing), np.array(covered)
    figures = {cut: locator_figures(np.array(found[cut]), np.array(truth[cut]), spacing, levels)
               for cut in CUTS}
    if covered.any():
        figures["uncut_shoulders_cover_c6_c7"] = locator_figures(
            np.array(found["uncut"])[covered], np.array(truth["uncut"])[covered],
            spacing[covered], levels)
    return {"benchmark": "locator_crops", "dataset": str(dataset_dir), "split": split,
            "locator": locator.source, "films": len(records),
            "films_shoulders_cover_c6_c7": int(covered.sum()),
            "seconds": round(time.monotonic() - started, 1), "figures": figures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n")[-1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="a synthetic v2 dataset folder")
    parser.add_argument("--locator", default="pretrained", help="locator run or .keras file")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    args = parser.parse_args(argv)
    result = measure(args.dataset, args.locator, args.split)
    write_json_atomic(result, Path(args.out))
    for name, figures in result["figures"].items():
        counts = ", ".join(f"{label} {row['found']}/{row['n']} found, {row['false']} false"
                           for label, row in figures["levels"].items())
        print(f"{name}: {counts}")
    print(json.dumps({"films": result["films"], "seconds": result["seconds"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
