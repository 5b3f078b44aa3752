"""Images per second of the synthetic generator on ONE core, full and small size.

Measures, side by side in one run, rendering alone (`synthesize`) and rendering plus writing
16-bit PNG files (`generate`), and writes the rates as JSON. Rates are given per wall-clock
second and per CPU second of this process: with every library held to one thread, the CPU
rate is the one-core rate even on a busy shared machine, where wall-clock time also counts
other processes' turns.

    python -m benchmarks.synthetic_rate --images 10 --out synthetic_rate.json

`run(quick)` is the same measurement as a function (`vertseg-tf bench` calls it); it holds the
native thread pools to one thread while it runs and restores them after.
"""

import os

if __name__ == "__main__":
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import platform
import tempfile
import time
from pathlib import Path

import cv2
from threadpoolctl import threadpool_limits

from vertseg_tf.data.synthetic import generate, synthesize

TARGET_FULL_IMAGES_PER_SECOND = 2.0


def measure(images: int, seed: int) -> dict:
    cv2.setNumThreads(1)
    results = {}
    synthesize(seed, 0, size="small")  # imports and first-call set-up are not timed
    for size in ("full", "small"):
        wall, cpu = time.perf_counter(), time.process_time()
        pixels = sum(synthesize(seed, index, size=size).image.size for index in range(images))
        render = (images / (time.perf_counter() - wall), images / (time.process_time() - cpu))
        with tempfile.TemporaryDirectory() as folder:
            wall, cpu = time.perf_counter(), time.process_time()
            generate(images, seed, Path(folder) / "ds", size=size, progress=False)
            written = (images / (time.perf_counter() - wall), images / (time.process_time() - cpu))
        results[size] = {
            "images": images,
            "mean_megapixels": pixels / images / 1e6,
            "render_images_per_second": render[0],
            "render_images_per_cpu_second": render[1],
            "render_and_png_images_per_second": written[0],
            "render_and_png_images_per_cpu_second": written[1],
        }
    results["full"]["meets_target"] = (
        results["full"]["render_and_png_images_per_cpu_second"] >= TARGET_FULL_IMAGES_PER_SECOND
    )
    return {
        "benchmark": "synthetic_rate",
        "threads": 1,
        "seed": seed,
        "target_full_images_per_second": TARGET_FULL_IMAGES_PER_SECOND,
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }


def run(quick: bool, images: int | None = None, seed: int = 0) -> dict:
    """`measure` with every native thread pool held to one thread, restored afterwards.

    Args:
        quick: 1 image per size instead of 10.
        images: override the image count of the chosen mode.
        seed: the generator seed.

    Returns:
        The `measure` report.
    """
    threads = cv2.getNumThreads()
    try:
        with threadpool_limits(1):
            return measure(images or (1 if quick else 10), seed)
    finally:
        cv2.setNumThreads(threads)


def main() -> None:
    from benchmarks.suite import print_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10, help="images per size (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="JSON file to write (default: print only)")
    args = parser.parse_args()
    report = run(False, args.images, args.seed)
    print_report(report, args.out)


if __name__ == "__main__":
    main()
