"""Inference throughput of Keras, SavedModel and TFLite float32/int8, and whole-radiograph latency.

In one run: a UNet of `--preset` (weights as initialised: speed does not depend on training)
is exported with `vertseg_tf.deploy.export.export_run` (SavedModel + TFLite float32 and int8,
calibrated on patches cut from a synthetic radiograph), then each of the four copies is loaded
into a `vertseg_tf.deploy.Segmenter` and timed, interleaved round by round so that load on a
shared machine hits them alike:

- `patches_per_second`: `Segmenter.predict_patches` on a batch of `--batch` patches (median);
- `radiograph_latency_ms`: `Segmenter.segment` of one full-size synthetic radiograph with its
  five clicked centres (patch cutting, prediction, contours mapped back; median).

Usage (from the repository root, with vertseg-tf installed or PYTHONPATH=.):
    python benchmarks/inference.py --out runs/bench/inference.json --preset demo

`run(quick)` is the same measurement as a function (`vertseg-tf bench` calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

KINDS = ("keras", "saved_model", "tflite_float32", "tflite_int8")
QUICK = {"preset": "smoke", "batch": 25, "rounds": 3}
FULL = {"preset": "demo", "batch": 100, "rounds": 10}


def radiograph_and_patches(seed: int = 0):
    """One full-size synthetic radiograph, its centres, and its augmented normalised patches."""
    from vertseg_tf.data.patches import TRAIN_ALPHAS, TRAIN_ANGLES, extract_patches
    from vertseg_tf.data.synthetic import synthesize

    item = synthesize(seed, 0, size="full")
    centers = [vertebra.center for vertebra in item.record.vertebrae]
    cut = extract_patches(item.image, centers, alphas=TRAIN_ALPHAS, angles=TRAIN_ANGLES)
    return item.image, centers, cut.x()


def run(quick: bool, **overrides) -> dict:
    """Export a UNet, then time the four inference paths side by side.

    Args:
        quick: `QUICK` (smoke preset, batch 25, 3 rounds) instead of `FULL` (demo, 100, 10).
        **overrides: any key of `QUICK` / `FULL`.

    Returns:
        {"preset", "batch", "rounds", "export_seconds", "kinds": {kind: {"patches_per_second",
        "radiograph_latency_ms", "raw_predict_seconds", "raw_segment_seconds"}},
        "ratios_vs_keras": {kind: patches/s of kind / patches/s of Keras}}.
    """
    import keras

    from vertseg_tf import build_unet
    from vertseg_tf.deploy import Segmenter
    from vertseg_tf.deploy.export import export_run

    settings = {**(QUICK if quick else FULL), **overrides}
    image, centers, patches = radiograph_and_patches()
    rng = np.random.default_rng(0)
    batch = patches[rng.integers(0, len(patches), settings["batch"])]
    keras.utils.set_random_seed(0)
    model = build_unet(settings["preset"])
    with tempfile.TemporaryDirectory(prefix="vertseg-bench-") as scratch:
        started = time.perf_counter()
        version = export_run(model, Path(scratch) / "models", 1, tflite=("float32", "int8"),
                             representative=(patches, patches[:8]), progress=False)
        export_seconds = time.perf_counter() - started
        segmenters = {
            "keras": Segmenter(model),
            "saved_model": Segmenter(version),
            "tflite_float32": Segmenter(version / "tflite" / "vertseg_float32.tflite"),
            "tflite_int8": Segmenter(version / "tflite" / "vertseg_int8.tflite"),
        }
        for segmenter in segmenters.values():  # first calls build graphs and allocate tensors
            segmenter.predict_patches(batch)
            segmenter.segment(image, centers)
        predict = {kind: [] for kind in KINDS}
        segment = {kind: [] for kind in KINDS}
        for round_index in range(settings["rounds"]):
            for kind, segmenter in segmenters.items():
                tick = time.perf_counter()
                segmenter.predict_patches(batch)
                predict[kind].append(time.perf_counter() - tick)
                tick = time.perf_counter()
                segmenter.segment(image, centers)
                segment[kind].append(time.perf_counter() - tick)
            print(f"[inference] round {round_index + 1}/{settings['rounds']}",
                  file=sys.stderr, flush=True)
    kinds = {
        kind: {
            "patches_per_second": len(batch) / statistics.median(predict[kind]),
            "radiograph_latency_ms": 1000.0 * statistics.median(segment[kind]),
            "raw_predict_seconds": predict[kind],
            "raw_segment_seconds": segment[kind],
        }
        for kind in KINDS
    }
    return {
        "benchmark": "inference",
        "preset": settings["preset"],
        "parameters": int(model.count_params()),
        "batch": len(batch),
        "rounds": settings["rounds"],
        "vertebrae_per_radiograph": len(centers),
        "radiograph_shape": list(image.shape),
        "export_seconds": export_seconds,
        "kinds": kinds,
        "ratios_vs_keras": {
            kind: kinds[kind]["patches_per_second"] / kinds["keras"]["patches_per_second"]
            for kind in KINDS
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--preset", default=FULL["preset"], help="build_unet preset (demo)")
    parser.add_argument("--batch", type=int, default=FULL["batch"], help="patches per call")
    parser.add_argument("--rounds", type=int, default=FULL["rounds"], help="timed rounds")
    args = parser.parse_args(argv)

    from vertseg_tf.data.dataset import write_json_atomic

    result = run(False, preset=args.preset, batch=args.batch, rounds=args.rounds)
    write_json_atomic(result, args.out)
    print(json.dumps({key: value for key, value in result.items() if key != "kinds"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
