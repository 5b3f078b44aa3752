"""Patch pipeline benchmark: the cold build of the paper-size training set, old cutter against new.

`python -m benchmarks.patch_pipeline --out FILE.json` measures, in one run on one machine:
    1. `compare`: the previous one-patch-at-a-time cutter (`benchmarks/legacy_patches.py`) and
       `vertseg_tf.data.patches.extract_patches`, image by image and interleaved (read + cut,
       CPU seconds of this process with every thread pool at one thread: one core), on the
       augmented training grid (45 patches per vertebra) of `--images` synthetic training
       images (124 = the paper's training set, 27,900 patches); the largest difference of
       their distance maps and whether their masks are equal;
    2. `builds`: the cold `PatchSet.from_dataset` build of that set (read, cut, cache key and
       cache file) with `workers=1` and with every core (wall seconds, and CPU seconds of this
       process and its workers), the patch sets checked equal, and the warm reload;
    3. the throughput (patches/s) of `vertseg_tf.data.pipeline.make_dataset` over that set and
       the training throughput of `vertseg_tf.build_unet(--preset)` on batches of it.

The paper preset is far too slow to train on a small CPU; the default `demo` preset trains
faster than the paper model, so its ratio is a lower bound of the ratio for the paper model.

Usage (from the repository root, with vertseg-tf installed or PYTHONPATH=.):
    python -m benchmarks.patch_pipeline --out runs/bench/patch_pipeline.json
    python -m benchmarks.patch_pipeline --images 8 --out /tmp/quick.json   # quick run

`run(quick)` is the suite's measurement (3. and the build alone; `vertseg-tf bench` calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_patch_set(images: int, seed: int, work: Path):
    from vertseg_tf.data.patches import PatchSet
    from vertseg_tf.data.synthetic import generate

    dataset = generate(images, seed, out_dir=work / "synthetic", size="full")
    # Every generated image is a training image here: the benchmark sizes the training set.
    for record in dataset.images:
        record.split = "train"
    vertebrae = sum(len(record.vertebrae) for record in dataset.images)
    cache = work / "cache"
    start = time.perf_counter()
    patch_set = PatchSet.from_dataset(dataset, "train", augment=True, cache_dir=cache)
    build_seconds = time.perf_counter() - start
    start = time.perf_counter()
    PatchSet.from_dataset(dataset, "train", augment=True, cache_dir=cache, progress=False)
    load_seconds = time.perf_counter() - start
    cache_bytes = sum(path.stat().st_size for path in cache.iterdir())
    return patch_set, {
        "images": images,
        "vertebrae": vertebrae,
        "patches": len(patch_set),
        "patches_per_vertebra": len(patch_set) / vertebrae,
        "build_seconds": build_seconds,
        "build_patches_per_second": len(patch_set) / build_seconds,
        "cache_load_seconds": load_seconds,
        "cache_bytes": cache_bytes,
    }


def pipeline_throughput(patch_set, batch_size: int, batches: int) -> dict:
    from vertseg_tf.data.pipeline import make_dataset

    start = time.perf_counter()
    dataset = make_dataset(patch_set, batch_size, seed=0, repeat=True, drop_remainder=True)
    setup_seconds = time.perf_counter() - start
    iterator = iter(dataset)
    for _ in range(5):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        x, y_true = next(iterator)
    seconds = time.perf_counter() - start
    assert x.shape[1:] == (64, 64, 1) and y_true.shape[1:] == (64, 64, 2)
    return {
        "pipeline_setup_seconds": setup_seconds,
        "pipeline_batches": batches,
        "pipeline_patches_per_second": batches * batch_size / seconds,
    }


def training_throughput(patch_set, preset: str, batch_size: int, steps: int) -> dict:
    import keras

    from vertseg_tf import build_unet
    from vertseg_tf.losses import pixel_log_loss

    model = build_unet(preset)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=pixel_log_loss)
    batch = patch_set.select(range(batch_size))
    x, y_true = batch.x(), batch.y_true()
    for _ in range(2):
        model.train_on_batch(x, y_true)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y_true)
    seconds = time.perf_counter() - start
    return {
        "model_preset": preset,
        "model_parameters": int(model.count_params()),
        "model_steps": steps,
        "model_train_patches_per_second": steps * batch_size / seconds,
        "keras_backend": keras.backend.backend(),
    }


QUICK = {"images": 2, "pipeline_batches": 20, "preset": "smoke", "train_steps": 3}
# The suite's full run builds 24 images' patches (the script's own default is the paper's 124).
FULL = {"images": 24, "pipeline_batches": 400, "preset": "demo", "train_steps": 10}


def run(quick: bool, batch_size: int = 25, seed: int = 0, work_dir=None, **overrides) -> dict:
    """Build the patch set, time the tf.data pipeline and the model over it, in one run.

    Args:
        quick: `QUICK` sizes (2 images, 20 batches, the smoke preset) instead of `FULL`.
        batch_size: patches per batch for the pipeline and the training steps.
        seed: generator seed.
        work_dir: keep the synthetic data and the cache here (default: a temporary folder).
        **overrides: any key of `QUICK` / `FULL`.

    Returns:
        The build, pipeline and training figures, `pipeline_over_training` (target >= 10).
    """
    settings = {**(QUICK if quick else FULL), **overrides}
    with tempfile.TemporaryDirectory(prefix="vertseg-bench-") as scratch:
        work = Path(work_dir) if work_dir else Path(scratch)
        patch_set, result = build_patch_set(settings["images"], seed, work)
        result.update(pipeline_throughput(patch_set, batch_size, settings["pipeline_batches"]))
        result.update(training_throughput(
            patch_set, settings["preset"], batch_size, settings["train_steps"]
        ))
    ratio = result["pipeline_patches_per_second"] / result["model_train_patches_per_second"]
    result.update({
        "batch_size": batch_size,
        "pipeline_over_training": ratio,
        "target_ratio": 10.0,
        "meets_target": bool(ratio >= 10.0),
    })
    return result


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def compare_cutters(dataset, limit: int | None = None) -> dict:
    """Old and new cutter, image by image and interleaved, one core: CPU seconds and agreement."""
    import cv2
    import numpy as np
    from threadpoolctl import threadpool_limits

    from benchmarks.legacy_patches import legacy_extract
    from vertseg_tf.data.images import read_image
    from vertseg_tf.data.patches import TRAIN_ALPHAS, TRAIN_ANGLES, extract_patches

    grid = {"alphas": TRAIN_ALPHAS, "angles": TRAIN_ANGLES}
    cpu = {"legacy": 0.0, "vectorised": 0.0}
    worst, masks_equal, patches = 0.0, True, 0
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(1):
            for record in dataset.images[:limit]:
                centers = np.array([v.center for v in record.vertebrae])
                contours = [v.contour for v in record.vertebrae]
                cuts = {}
                for name, cutter in (("legacy", legacy_extract), ("vectorised", extract_patches)):
                    start = time.process_time()
                    image, _ = read_image(dataset.image_path(record))
                    cut = cutter(image, centers, contours, **grid)
                    cpu[name] += time.process_time() - start
                    cuts[name] = cut if isinstance(cut, dict) else vars(cut)
                legacy, new = cuts["legacy"], cuts["vectorised"]
                worst = max(worst, float(np.abs(legacy["dist_maps"] - new["dist_maps"]).max()))
                masks_equal &= bool(np.array_equal(legacy["masks"], new["masks"]))
                patches += len(new["images"])
    finally:
        cv2.setNumThreads(threads)
    return {
        "images": len(dataset.images[:limit]),
        "patches": patches,
        "legacy_cpu_seconds": cpu["legacy"],
        "vectorised_cpu_seconds": cpu["vectorised"],
        "legacy_patches_per_cpu_second": patches / cpu["legacy"],
        "vectorised_patches_per_cpu_second": patches / cpu["vectorised"],
        "speed_up": cpu["legacy"] / cpu["vectorised"],
        "max_dist_map_difference_px": worst,
        "masks_equal": masks_equal,
    }


def cold_builds(dataset, work: Path):
    """`PatchSet.from_dataset` cold with one worker and with every core, then warm.

    Returns:
        `(figures, patch_set)`.
    """
    import numpy as np

    from vertseg_tf.data.patches import PatchSet

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    results, built = {}, {}
    for workers in dict.fromkeys((1, cores)):
        wall, cpu = time.perf_counter(), _cpu_seconds()
        built[workers] = PatchSet.from_dataset(
            dataset, "train", True, cache_dir=work / f"cache-{workers}", progress=False,
            workers=workers,
        )
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        count = len(built[workers])
        results[f"workers_{workers}"] = {
            "workers": workers, "patches": count, "wall_seconds": wall, "cpu_seconds": cpu,
            "patches_per_second": count / wall, "patches_per_cpu_second": count / cpu,
        }
    first, last = built[1], built[cores]
    results["identical_for_any_worker_count"] = all(
        np.array_equal(getattr(first, name), getattr(last, name))
        for name in ("images", "masks", "dist_maps", "affines")
    )
    start = time.perf_counter()
    PatchSet.from_dataset(dataset, "train", True, cache_dir=work / "cache-1", progress=False)
    results["warm_reload_seconds"] = time.perf_counter() - start
    return results, first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--images", type=int, default=124, help="training images (124)")
    parser.add_argument("--legacy-images", type=int,
                        help="compare the cutters on the first N images only (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=25, help="the paper's batch (25)")
    parser.add_argument("--pipeline-batches", type=int, default=400)
    parser.add_argument("--preset", default="demo", help="build_unet preset to train (demo)")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--work-dir", help="keep the synthetic data and caches here")
    args = parser.parse_args(argv)

    from vertseg_tf.atomic import write_json_atomic
    from vertseg_tf.data.synthetic import generate

    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vertseg-bench-") as scratch:
        work = Path(args.work_dir) if args.work_dir else Path(scratch)
        dataset = generate(args.images, args.seed, out_dir=work / "synthetic", size="full",
                           progress=False)
        for record in dataset.images:
            record.split = "train"
        result = {"compare": compare_cutters(dataset, args.legacy_images)}
        print(json.dumps(result["compare"], indent=1), file=sys.stderr, flush=True)
        result["builds"], patch_set = cold_builds(dataset, work)
        print(json.dumps(result["builds"], indent=1), file=sys.stderr, flush=True)
        throughput = pipeline_throughput(patch_set, args.batch_size, args.pipeline_batches)
        throughput.update(
            training_throughput(patch_set, args.preset, args.batch_size, args.train_steps)
        )
        throughput["pipeline_over_training"] = (
            throughput["pipeline_patches_per_second"]
            / throughput["model_train_patches_per_second"]
        )
        result["pipeline"] = throughput

    from benchmarks.suite import machine_description

    result["machine"] = {
        **machine_description(),
        "load_average_at_start": list(load_at_start),
        "load_average_at_end": list(os.getloadavg()),
    }
    write_json_atomic(result, args.out)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
