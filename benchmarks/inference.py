"""Inference speed: one radiograph with 5 vertebrae end to end, and patch throughput.

A UNet of `--preset` (default paper, 25.9 M parameters) is built with untrained weights
(timing only: the arithmetic does not depend on the values), saved as `.keras`, exported with
`export_run` (SavedModel + TFLite float32 and int8) and its four forms - Keras, SavedModel,
TFLite float32, TFLite int8 - are timed side by side in one run, interleaved round by round so
that load on a shared machine hits them alike, with LiteRT limited to `--threads` threads
(default 2; the script also limits TensorFlow's, which the suite cannot once TensorFlow runs):

- `radiograph_s`: `Segmenter.segment` on one full-size synthetic radiograph with C3-C7 clicked
  (patch cutting, one batched prediction, contours, mapping back), median of `--repeats`;
  targets (paper preset): SavedModel <= 1 s, TFLite int8 <= 0.3 s on 2 cores;
- `patches_per_s`: batched prediction of `--batch` patches, median of `--repeats`;
- `throughput_ratio_int8_over_saved_model`: TFLite int8 patches/s / SavedModel patches/s, and
  each form's patches/s over Keras's (`throughput_ratio_over_keras`).

    python -m benchmarks.inference --out runs/bench_inference.json [--threads 2]

`run(quick)` is the same measurement as a function (`vertseg-tf bench` calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

FORMS = ("keras", "saved_model", "tflite_float32", "tflite_int8")
TARGETS = {"saved_model_radiograph_s": 1.0, "tflite_int8_radiograph_s": 0.3}
# Quick: the export checks the SavedModel in this process, sparing two TensorFlow start-ups.
QUICK = {"preset": "smoke", "batch": 25, "repeats": 3, "threads": 2,
         "fresh_process_parity": False, "forms": FORMS}
FULL = {"preset": "paper", "batch": 32, "repeats": 5, "threads": 2,
        "fresh_process_parity": True, "forms": FORMS}


def run(quick: bool, **overrides) -> dict:
    """Export a UNet and time its four forms side by side.

    Args:
        quick: `QUICK` (smoke preset, 3 repeats, export parity checked in this process)
            instead of `FULL` (paper preset, 5 repeats, parity checked in fresh processes).
        **overrides: any key of `QUICK` / `FULL` (preset, batch, repeats, threads,
            fresh_process_parity).

    Returns:
        The report: per form `radiograph_s` and `patches_per_s`, the ratios, the targets.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from vertseg_tf import build_unet
    from vertseg_tf.data.patches import extract_patches
    from vertseg_tf.data.synthetic import synthesize
    from vertseg_tf.deploy.export import export_run, representative_patches
    from vertseg_tf.deploy.inference import Segmenter

    settings = {**(QUICK if quick else FULL), **overrides}
    item = synthesize(0, 0, size="full")
    image = item.image.astype(np.float32)
    centers = np.array([v.center for v in item.record.vertebrae])
    calibration, test, _ = representative_patches(None, count=16)
    patches = extract_patches(image, centers).x()
    batch = np.resize(patches, (settings["batch"], *patches.shape[1:])).astype(np.float32)

    with tempfile.TemporaryDirectory(prefix="vertseg-bench-") as work:
        work = Path(work)
        model = build_unet(settings["preset"])
        model.save(work / "model.keras")
        start = time.perf_counter()
        chosen = [name for name in FORMS if name in settings["forms"]]
        tflite = tuple(name.split("_")[1] for name in chosen if name.startswith("tflite"))
        target = export_run(work / "model.keras", work / "models", 1,
                            tflite=tflite, representative=(calibration, test[:8]),
                            progress=False,
                            fresh_process_parity=settings["fresh_process_parity"])
        export_s = time.perf_counter() - start
        forms = {
            "keras": work / "model.keras",
            "saved_model": target,
            "tflite_float32": target / "tflite" / "vertseg_float32.tflite",
            "tflite_int8": target / "tflite" / "vertseg_int8.tflite",
        }
        segmenters = {name: Segmenter(forms[name], num_threads=settings["threads"])
                      for name in chosen}
        for segmenter in segmenters.values():  # warm-up: graph tracing, tensor allocation
            segmenter.segment(image, centers)
            segmenter.predict_patches(batch)
        radiograph = {name: [] for name in chosen}
        predict = {name: [] for name in chosen}
        for repeat in range(settings["repeats"]):
            for name, segmenter in segmenters.items():
                start = time.perf_counter()
                segmenter.segment(image, centers)
                radiograph[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                segmenter.predict_patches(batch)
                predict[name].append(time.perf_counter() - start)
            print(f"[inference] round {repeat + 1}/{settings['repeats']}", file=sys.stderr,
                  flush=True)

    results = {
        name: {
            "radiograph_s": statistics.median(radiograph[name]),
            "patches_per_s": settings["batch"] / statistics.median(predict[name]),
            "raw_radiograph_s": radiograph[name],
            "raw_batch_s": predict[name],
        }
        for name in chosen
    }
    for name in chosen:
        print(f"{name}: radiograph {results[name]['radiograph_s']:.3f} s, "
              f"{results[name]['patches_per_s']:.1f} patches/s", file=sys.stderr)
    return {
        "benchmark": "inference",
        "weights": "untrained (timing only; the arithmetic does not depend on the values)",
        "preset": settings["preset"],
        "parameters": int(model.count_params()),
        "threads": settings["threads"],
        "tensorflow_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "machine": {"cpus_visible": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "tensorflow": tf.__version__},
        "radiograph": {"shape": list(image.shape), "vertebrae": len(centers)},
        "batch": settings["batch"],
        "repeats": settings["repeats"],
        "export_s": export_s,
        "export_parity_in_fresh_processes": settings["fresh_process_parity"],
        "results": results,
        "targets": TARGETS,
        "meets_targets": {
            name: results[name]["radiograph_s"] <= TARGETS[f"{name}_radiograph_s"]
            for name in ("saved_model", "tflite_int8") if name in results
        },
        **_ratios(results, radiograph),
    }


def _ratios(results: dict, radiograph: dict) -> dict:
    """Throughput ratios, and Keras over SavedModel radiograph latency paired round by round."""
    ratios = {}
    if {"tflite_int8", "saved_model"} <= set(results):
        ratios["throughput_ratio_int8_over_saved_model"] = (
            results["tflite_int8"]["patches_per_s"] / results["saved_model"]["patches_per_s"]
        )
    if {"keras", "saved_model"} <= set(results):
        ratios["throughput_ratio_saved_model_over_keras"] = (
            results["saved_model"]["patches_per_s"] / results["keras"]["patches_per_s"]
        )
        paired = [k / s for k, s in zip(radiograph["keras"], radiograph["saved_model"])]
        ratios["radiograph_ratio_keras_over_saved_model"] = statistics.median(paired)
        ratios["radiograph_ratio_keras_over_saved_model_target"] = 1.2
    if "keras" in results:
        ratios["throughput_ratio_over_keras"] = {
            name: results[name]["patches_per_s"] / results["keras"]["patches_per_s"]
            for name in results
        }
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--threads", type=int, default=FULL["threads"],
                        help="CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=FULL["repeats"],
                        help="timed runs each (default 5)")
    parser.add_argument("--batch", type=int, default=FULL["batch"],
                        help="patches per batch (default 32)")
    parser.add_argument("--preset", default=FULL["preset"], help="UNet preset (default paper)")
    parser.add_argument("--forms", default=",".join(FORMS),
                        help=f"comma-separated forms to time (default {','.join(FORMS)})")
    args = parser.parse_args()
    forms = tuple(args.forms.split(","))
    if not forms or not set(forms) <= set(FORMS):
        parser.error(f"--forms takes names out of {','.join(FORMS)}, got {args.forms!r}")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    # Before TensorFlow's runtime starts: the thread limits cannot change afterwards.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    report = run(False, preset=args.preset, batch=args.batch, repeats=args.repeats,
                 threads=args.threads, forms=forms)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({key: value for key, value in report.items() if key != "results"},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
