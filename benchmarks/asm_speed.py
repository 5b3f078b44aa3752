"""Predict time per 64x64 patch of ASM-G, ASM-M and ASM-RF on one CPU core; writes JSON.

Usage (from the repository root):
    python -m benchmarks.asm_speed --out asm_speed.json [--train 100] [--test 30]

Each method is fitted with its default parameters on `--train` vertebra-like fixture patches
(the generator of tests/asm), then `predict` is timed one patch at a time on `--test`
held-out patches, all methods in the same run. The target is <= 50 ms per patch each, judged
on the process CPU time per patch (the process is pinned to one core and single-threaded, so
CPU time is the one-core cost even when other jobs share the machine); wall-clock times are
recorded beside it. The mean Dice of the mean-shape start and of each method's result on the
held-out patches (polygon fill at pixel centres) is recorded as a sanity check.

`run(quick)` is the same measurement as a function (`vertseg-tf bench` calls it); it holds the
calling thread to one core and the BLAS/OpenMP pools to one thread while it runs.
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    # One core: pin BLAS/OpenMP thread pools before numpy loads.
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_variable] = "1"

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from skimage.draw import polygon2mask
from threadpoolctl import threadpool_limits

from tests.asm.vertebra_fixture import make_vertebra_patches
from vertseg_tf.asm import ASM_METHODS

TARGET_MS = 50.0


def dice(contour_a, contour_b, shape) -> float:
    masks = [polygon2mask(shape, np.asarray(c)[:, ::-1]) for c in (contour_a, contour_b)]
    return float(2.0 * np.logical_and(*masks).sum() / (masks[0].sum() + masks[1].sum()))


@contextlib.contextmanager
def one_core():
    """Hold the calling thread to one CPU and the native thread pools to one thread."""
    pinned = hasattr(os, "sched_setaffinity")
    if pinned:
        previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(previous)})
    try:
        with threadpool_limits(1):
            yield
    finally:
        if pinned:
            os.sched_setaffinity(0, previous)


def run(quick: bool, n_train: int | None = None, n_test: int | None = None) -> dict:
    """Fit each ASM, then time `predict` one held-out patch at a time on one core.

    Args:
        quick: 40 training and 5 timed patches instead of 100 and 30.
        n_train, n_test: override the patch counts of the chosen mode.

    Returns:
        {"benchmark", "target_ms_per_patch", "n_train_patches", "n_test_patches",
        "cpu_cores_used", "machine", "python", "methods": {name: figures}}.
    """
    n_train = n_train or (40 if quick else 100)
    n_test = n_test or (5 if quick else 30)
    train_images, train_contours = make_vertebra_patches(n_train, seed=0)
    test_images, test_contours = make_vertebra_patches(n_test, seed=1)
    shape = test_images.shape[1:]
    results = {}
    with one_core():
        for name, cls in ASM_METHODS.items():
            started = time.perf_counter()
            model = cls().fit(train_images, train_contours)
            fit_seconds = time.perf_counter() - started
            model.predict(test_images[:2])  # warm-up
            wall, cpu, found = [], [], []
            for image in test_images:
                wall_start, cpu_start = time.perf_counter(), time.process_time()
                found.append(model.predict(image[None])[0])
                cpu.append((time.process_time() - cpu_start) * 1000.0)
                wall.append((time.perf_counter() - wall_start) * 1000.0)
            start = model.pdm.initial_points(shape)
            results[name] = {
                "fit_seconds": round(fit_seconds, 3),
                "predict_cpu_ms_mean": round(float(np.mean(cpu)), 3),
                "predict_cpu_ms_max": round(float(np.max(cpu)), 3),
                "predict_wall_ms_mean": round(float(np.mean(wall)), 3),
                "predict_wall_ms_median": round(float(np.median(wall)), 3),
                "predict_wall_ms_max": round(float(np.max(wall)), 3),
                "meets_target": bool(np.mean(cpu) <= TARGET_MS),
                "dice_mean_start": round(
                    np.mean([dice(start, c, shape) for c in test_contours]), 4
                ),
                "dice_mean": round(
                    np.mean([dice(f, c, shape) for f, c in zip(found, test_contours)]), 4
                ),
                "config": model.get_config(),
            }
            print(
                f"{name}: fit {fit_seconds:.1f} s, predict {np.mean(cpu):.1f} ms CPU / "
                f"{np.mean(wall):.1f} ms wall per patch, Dice {results[name]['dice_mean']:.3f}",
                file=sys.stderr,
                flush=True,
            )
    return {
        "benchmark": "asm_speed",
        "target_ms_per_patch": TARGET_MS,
        "n_train_patches": n_train,
        "n_test_patches": n_test,
        "cpu_cores_used": 1,
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "methods": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--train", type=int, default=100, help="training patches")
    parser.add_argument("--test", type=int, default=30, help="timed held-out patches")
    args = parser.parse_args(argv)
    report = run(False, args.train, args.test)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all(r["meets_target"] for r in report["methods"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
