"""Inference speed: one radiograph with 5 vertebrae end to end, and patch throughput.

The paper preset (25.9 M parameters) is built with untrained weights (timing only: the
arithmetic does not depend on the values), saved as `.keras`, exported with `export_run`
(SavedModel + int8 TFLite) and timed side by side in one run with TensorFlow and LiteRT limited
to the same number of threads (default 2):

- `radiograph_s`: `Segmenter.segment` on one full-size synthetic radiograph with C3-C7 clicked
  (patch cutting, one batched prediction, contours, mapping back), median of `--repeats`;
  targets: SavedModel <= 1 s, TFLite int8 <= 0.3 s on 2 cores;
- `patches_per_s`: batched prediction of `--batch` patches, median of `--repeats`;
- `throughput_ratio_int8_over_saved_model`: TFLite int8 patches/s / SavedModel patches/s.

    python benchmarks/inference.py --out runs/bench_inference.json [--threads 2]
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


def _median_seconds(function, repeats: int) -> float:
    function()  # warm-up: graph tracing, tensor allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs each (default 5)")
    parser.add_argument("--batch", type=int, default=32, help="patches per batch (default 32)")
    parser.add_argument("--preset", default="paper", help="UNet preset (default paper)")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from vertseg_tf import build_unet
    from vertseg_tf.data.patches import extract_patches
    from vertseg_tf.data.synthetic import synthesize
    from vertseg_tf.deploy.export import export_run, representative_patches
    from vertseg_tf.deploy.inference import Segmenter

    item = synthesize(0, 0, size="full")
    image = item.image.astype(np.float32)
    centers = np.array([v.center for v in item.record.vertebrae])
    calibration, test, _ = representative_patches(None, count=16)
    patches = extract_patches(image, centers).x()
    batch = np.resize(patches, (args.batch, *patches.shape[1:])).astype(np.float32)

    with tempfile.TemporaryDirectory(prefix="vertseg-bench-") as work:
        work = Path(work)
        model = build_unet(args.preset)
        model.save(work / "model.keras")
        start = time.perf_counter()
        target = export_run(work / "model.keras", work / "models", 1, tflite="int8",
                            representative=(calibration, test[:8]), progress=False)
        export_s = time.perf_counter() - start
        forms = {
            "keras": work / "model.keras",
            "saved_model": target,
            "tflite_int8": target / "tflite" / "vertseg_int8.tflite",
        }
        results = {}
        for name, path in forms.items():
            segmenter = Segmenter(path, num_threads=args.threads)
            radiograph_s = _median_seconds(lambda s=segmenter: s.segment(image, centers),
                                           args.repeats)
            batch_s = _median_seconds(lambda s=segmenter: s.predict_patches(batch), args.repeats)
            results[name] = {
                "radiograph_s": radiograph_s,
                "patches_per_s": args.batch / batch_s,
            }
            print(f"{name}: radiograph {radiograph_s:.3f} s, "
                  f"{args.batch / batch_s:.1f} patches/s", file=sys.stderr)

    report = {
        "benchmark": "inference",
        "weights": "untrained (timing only; the arithmetic does not depend on the values)",
        "preset": args.preset,
        "parameters": int(model.count_params()),
        "threads": args.threads,
        "machine": {"cpus_visible": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "tensorflow": tf.__version__},
        "radiograph": {"shape": list(image.shape), "vertebrae": len(centers)},
        "batch": args.batch,
        "repeats": args.repeats,
        "export_s": export_s,
        "results": results,
        "targets": {"saved_model_radiograph_s": 1.0, "tflite_int8_radiograph_s": 0.3},
        "meets_targets": {
            "saved_model": results["saved_model"]["radiograph_s"] <= 1.0,
            "tflite_int8": results["tflite_int8"]["radiograph_s"] <= 0.3,
        },
        "throughput_ratio_int8_over_saved_model": results["tflite_int8"]["patches_per_s"]
        / results["saved_model"]["patches_per_s"],
        "throughput_ratio_saved_model_over_keras": results["saved_model"]["patches_per_s"]
        / results["keras"]["patches_per_s"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
