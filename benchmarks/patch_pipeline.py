"""Patch pipeline benchmark: build time of the training patch set and tf.data throughput.

Measures, in one run on one machine:
    1. the cold build of the augmented training patch set (45 patches per vertebra) from a
       synthetic dataset of `--images` training images (124 = the paper's training set),
       and the warm reload of the same set from the on-disk cache;
    2. the throughput (patches/s) of `vertseg_tf.data.pipeline.make_dataset` over that set;
    3. the training throughput (patches/s) of `vertseg_tf.build_unet(--preset)` on batches of
       the same patches, and the ratio pipeline / training (issue target: at least 10x).

The paper preset is far too slow to train on a small CPU; the default `demo` preset trains
faster than the paper model, so its ratio is a lower bound of the ratio for the paper model.

Usage (from the repository root, with vertseg-tf installed or PYTHONPATH=.):
    python benchmarks/patch_pipeline.py --out runs/bench/patch_pipeline.json
    python benchmarks/patch_pipeline.py --images 8 --out /tmp/quick.json   # quick run

`run(quick)` is the same measurement as a function (`vertseg-tf bench` calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--images", type=int, default=124, help="training images (124)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=25, help="the paper's batch (25)")
    parser.add_argument("--pipeline-batches", type=int, default=400)
    parser.add_argument("--preset", default="demo", help="build_unet preset to train (demo)")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--work-dir", help="keep the synthetic data and cache here")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from vertseg_tf.data.dataset import write_json_atomic

    result = run(False, args.batch_size, args.seed, args.work_dir, images=args.images,
                 pipeline_batches=args.pipeline_batches, preset=args.preset,
                 train_steps=args.train_steps)
    result["machine"] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "tensorflow": tf.__version__,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }
    write_json_atomic(result, args.out)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
