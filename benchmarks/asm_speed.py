"""Predict time per 64x64 patch of ASM-G, ASM-M and ASM-RF on one CPU core; writes JSON.

Usage (from the repository root):
    python benchmarks/asm_speed.py --out asm_speed.json [--train 100] [--test 30]

Each method is fitted with its default parameters on `--train` vertebra-like fixture patches
(the generator of tests/asm), then `predict` is timed one patch at a time on `--test`
held-out patches, all methods in the same run. The target is <= 50 ms per patch each.
"""

from __future__ import annotations

import os

# One core: pin BLAS/OpenMP thread pools before numpy loads, and the process where possible.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.asm.vertebra_fixture import make_vertebra_patches
from vertseg_tf.asm import ASM_METHODS

TARGET_MS = 50.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--train", type=int, default=100, help="training patches")
    parser.add_argument("--test", type=int, default=30, help="timed held-out patches")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    train_images, train_contours = make_vertebra_patches(args.train, seed=0)
    test_images, _ = make_vertebra_patches(args.test, seed=1)
    results = {}
    for name, cls in ASM_METHODS.items():
        started = time.perf_counter()
        model = cls().fit(train_images, train_contours)
        fit_seconds = time.perf_counter() - started
        model.predict(test_images[:2])  # warm-up
        times = []
        for image in test_images:
            started = time.perf_counter()
            model.predict(image[None])
            times.append((time.perf_counter() - started) * 1000.0)
        results[name] = {
            "fit_seconds": round(fit_seconds, 3),
            "predict_ms_mean": round(float(np.mean(times)), 3),
            "predict_ms_median": round(float(np.median(times)), 3),
            "predict_ms_max": round(float(np.max(times)), 3),
            "meets_target": bool(np.mean(times) <= TARGET_MS),
            "config": model.get_config(),
        }
        print(
            f"{name}: fit {fit_seconds:.1f} s, predict {np.mean(times):.1f} ms/patch "
            f"(max {np.max(times):.1f})",
            file=sys.stderr,
            flush=True,
        )
    report = {
        "benchmark": "asm_speed",
        "target_ms_per_patch": TARGET_MS,
        "n_train_patches": args.train,
        "n_test_patches": args.test,
        "cpu_cores_used": 1,
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "methods": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all(r["meets_target"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
