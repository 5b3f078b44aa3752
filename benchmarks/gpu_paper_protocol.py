"""The paper's protocol on one GPU under the Keras JAX backend, without TensorFlow.

Phases, each timed (wall clock) and printed:

1. generation: the paper-size synthetic dataset (`--images` 296 radiographs, 124 train : 172
   test) rendered by `vertseg_tf.data.synthetic.synthesize` in parallel processes, image by
   image, into exactly the files `vertseg_tf.data.synthetic.generate(296, seed)` writes
   (`generate` is that same loop on one core);
2. patches: 45 augmented patches per training vertebra and one per test vertebra with
   `PatchSet.from_dataset`, the images shared out over parallel processes;
3. UNet training and 4. UNet-S training: `build_unet(--preset)`, RMSprop (learning rate 1e-3,
   times batch / 25 with `--scale-lr`), `--epochs` epochs of `--batch-size` with `model.fit`
   on the numpy arrays; UNet-S adds the in-graph shape term
   (`ShapeAwareLoss(e_mode="graph")`);
5. evaluation: both models' test masks scored with `vertseg_tf.evaluation.metrics` (pixel
   accuracy, Dice, point-to-curve error, fit failure > 2 px).

Only numpy/scipy/scikit-image/OpenCV, Keras and JAX are used: no module on this path imports
TensorFlow, so it runs on a GPU machine with `pip install jax[cuda12] keras` and vertseg-tf's
pure-Python dependencies, and no TensorFlow.

    KERAS_BACKEND=jax python -m benchmarks.gpu_paper_protocol --out runs/gpu_protocol.json
    python -m benchmarks.gpu_paper_protocol --mixed-precision bfloat16 --batch-size 250 \\
        --scale-lr                      # the fast variant: learning rate x batch / 25
    python -m benchmarks.gpu_paper_protocol --images 6 --epochs 1 --preset smoke \\
        --max-steps 2 --size small      # a smoke run on a CPU

The JSON report goes to `--out`, else to `$OUT/gpu_paper_protocol.json` when `$OUT` is set.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def _render_images(seed: int, indices: list[int], size: str, folder: str) -> list:
    """Worker: synthesize images `indices` of `seed` and write their PNGs; return the records."""
    from vertseg_tf.data.images import write_image
    from vertseg_tf.data.synthetic import synthesize

    records = []
    for index in indices:
        item = synthesize(seed, index, size=size)
        write_image(Path(folder) / item.record.file, item.image,
                    pixel_spacing_mm=item.record.pixel_spacing_mm, photometric=item.photometric)
        records.append(item.record)
    return records


def generate_dataset(images: int, seed: int, size: str, folder: Path, workers: int):
    """The synthetic dataset of `generate(images, seed, folder, size=size)`, made in parallel."""
    from vertseg_tf.data.dataset import Dataset, save_dataset

    chunks = [list(range(images))[start::workers] for start in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_render_images, [seed] * workers, chunks, [size] * workers,
                              [str(folder)] * workers))
    by_index = {index: record for chunk, part in zip(chunks, parts)
                for index, record in zip(chunk, part)}
    dataset = Dataset([by_index[index] for index in range(images)], folder)
    save_dataset(dataset, folder)
    return dataset


def _cut_patches(folder: str, image_ids: list[str], split: str, augment: bool, cache: str):
    """Worker: the patch set of the images `image_ids` of the dataset in `folder`."""
    from vertseg_tf.data.dataset import Dataset, load_dataset
    from vertseg_tf.data.patches import PatchSet

    dataset = load_dataset(folder)
    wanted = set(image_ids)
    part = Dataset([record for record in dataset.images if record.id in wanted], dataset.root)
    return PatchSet.from_dataset(part, split, augment, cache_dir=cache, progress=False)


def cut_patches(dataset, split: str, augment: bool, workers: int, cache: Path):
    """`PatchSet.from_dataset(dataset, split, augment)`, the images shared out over processes."""
    from vertseg_tf.data.patches import PatchSet

    ids = [record.id for record in dataset.split(split)]
    chunks = [chunk for chunk in (ids[start::workers] for start in range(workers)) if chunk]
    with ProcessPoolExecutor(len(chunks)) as pool:
        parts = list(pool.map(
            _cut_patches, [str(dataset.root)] * len(chunks), chunks, [split] * len(chunks),
            [augment] * len(chunks), [str(cache / f"{split}-{k}") for k in range(len(chunks))],
        ))
    return PatchSet.concatenate(parts)


METHODS = {"UNet": "unet", "UNet-S": "unet-s"}


def train_config(method: str, args):
    """The package's paper `TrainConfig` with this run's settings."""
    from vertseg_tf.training import TRAIN_PRESETS

    return TRAIN_PRESETS["paper"].replace(
        method=METHODS[method], model=args.preset, epochs=args.epochs, seed=args.seed,
        batch_size=args.batch_size, scale_lr=args.scale_lr, jit_compile=args.jit,
        mixed_precision=args.mixed_precision,
    )


def train(method: str, x: np.ndarray, y_true: np.ndarray, args) -> tuple[object, dict]:
    """Train "UNet" (log loss) or "UNet-S" (log loss + shape term) with `model.fit`, compiled
    by the package's `compile_unet` from the paper preset."""
    import keras

    from vertseg_tf.training.fit_loop import compile_unet

    started = time.perf_counter()
    config = train_config(method, args)
    keras.utils.set_random_seed(config.seed)
    model = compile_unet(config)
    learning_rate = config.effective_learning_rate

    class EpochTimes(keras.callbacks.Callback):
        """Wall time of every epoch (the first includes compiling the step)."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    epochs = EpochTimes()
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    history = model.fit(x, y_true, batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
                        callbacks=[epochs], verbose=2)
    seconds = time.perf_counter() - started
    steps_per_epoch = -(-len(x) // args.batch_size)
    steady = epochs.seconds[1:]
    print(f"[protocol] {method}: model built in {build_seconds:.1f} s, fit {seconds:.1f} s "
          f"({len(x) * args.epochs / seconds:.0f} patches/s)", file=sys.stderr, flush=True)
    return model, {
        "parameters": int(model.count_params()),
        "learning_rate": learning_rate,
        "training_patches": len(x),
        "steps_per_epoch": steps_per_epoch,
        "build_seconds": build_seconds,
        "fit_seconds": seconds,
        "epoch_seconds": epochs.seconds,
        "patches_per_second": len(x) * args.epochs / seconds,
        "steady_patches_per_second": (len(x) * len(steady) / sum(steady)) if steady else None,
        "final_loss": float(history.history["loss"][-1]),
    }


def evaluate(model, test, batch_size: int) -> dict:
    """Paper metrics of `model`'s argmax masks on the test patches."""
    from vertseg_tf.channels import predicted_mask
    from vertseg_tf.evaluation.metrics import (
        dice,
        fit_failure_rate,
        pixel_accuracy,
        point_to_curve_error,
    )

    probabilities = model.predict(test.x(), batch_size=batch_size, verbose=0)
    masks = predicted_mask(np.asarray(probabilities)).astype(np.uint8)
    errors = np.array([point_to_curve_error(mask, contour)
                       for mask, contour in zip(masks, test.contours)])
    finite = errors[np.isfinite(errors)]
    return {
        "test_patches": len(test),
        "pixel_accuracy_percent_mean": float(np.mean(pixel_accuracy(test.masks, masks))),
        "dice_mean": float(np.mean(dice(test.masks, masks))),
        "point_to_curve_error_px_median": float(np.median(errors)),
        "point_to_curve_error_px_mean": float(finite.mean()) if finite.size else None,
        "empty_predictions": int(np.sum(~np.isfinite(errors))),
        "fit_failure_percent": 100.0 * fit_failure_rate(errors),
    }


def _machine() -> dict:
    import jax
    import keras

    devices = jax.devices()
    return {
        "jax_devices": [f"{device.platform}:{device.device_kind}" for device in devices],
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from vertseg_tf.training.config import TRAIN_PRESETS

    paper = TRAIN_PRESETS["paper"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="JSON report (default $OUT/gpu_paper_protocol.json)")
    parser.add_argument("--preset", default="paper", help="UNet preset: paper, demo, smoke")
    parser.add_argument("--images", type=int, default=296, help="radiographs (296, 124:172)")
    parser.add_argument("--size", choices=("full", "small"), default="full",
                        help="synthetic image size (full: 1500-2500 px)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=paper.epochs)
    parser.add_argument("--batch-size", type=int, default=paper.batch_size)
    parser.add_argument("--mixed-precision", choices=("none", "bfloat16"), default="none",
                        help="bfloat16: Keras 'mixed_bfloat16' policy (float32 weights)")
    parser.add_argument("--scale-lr", action="store_true",
                        help="learning rate 1e-3 x batch-size / 25 (linear scaling)")
    parser.add_argument("--jit", action=argparse.BooleanOptionalAction, default=True,
                        help="XLA-compile the train step (default on; --no-jit for eager)")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="train on at most this many batches per epoch (0: all; smoke runs)")
    parser.add_argument("--methods", default="UNet,UNet-S", help="UNet, UNet-S or both")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for generation and patch cutting (default: all cores)")
    parser.add_argument("--work-dir", help="keep the dataset and patch cache here")
    args = parser.parse_args(argv)
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    if not methods or set(methods) - {"UNet", "UNet-S"}:
        parser.error("--methods: UNet, UNet-S or UNet,UNet-S")
    if min(args.images, args.epochs, args.batch_size, args.workers) < 1 or args.max_steps < 0:
        parser.error("--images, --epochs, --batch-size, --workers must be >= 1, --max-steps >= 0")
    args.methods = methods
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) if args.out else (
        Path(os.environ["OUT"]) / "gpu_paper_protocol.json" if os.environ.get("OUT") else None)

    from vertseg_tf.data.dataset import write_json_atomic

    phases: dict[str, float] = {}
    report = {
        "benchmark": "gpu_paper_protocol",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": {key: value for key, value in vars(args).items() if key != "out"},
        "phase_seconds": phases,
    }

    def phase(name: str, started: float) -> None:
        phases[name] = time.perf_counter() - started
        print(f"[protocol] {name}: {phases[name]:.1f} s", file=sys.stderr, flush=True)

    # The data phases fork worker processes: Keras (and with it JAX's threads) loads after them.
    with tempfile.TemporaryDirectory(prefix="vertseg-protocol-") as scratch:
        work = Path(args.work_dir) if args.work_dir else Path(scratch)
        started = time.perf_counter()
        dataset = generate_dataset(args.images, args.seed, args.size, work / "dataset",
                                   min(args.workers, args.images))
        phase("generation", started)

        started = time.perf_counter()
        train_set = cut_patches(dataset, "train", True, args.workers, work / "cache")
        test_set = cut_patches(dataset, "test", False, args.workers, work / "cache")
        phase("patches", started)
        report["data"] = {
            "images": {split: len(dataset.split(split)) for split in ("train", "test")},
            "train_patches": len(train_set),
            "test_patches": len(test_set),
        }

        import keras

        if keras.backend.backend() != "jax":
            print(f"warning: Keras backend is {keras.backend.backend()!r}, not 'jax' "
                  "(set KERAS_BACKEND=jax)", file=sys.stderr)
        if args.mixed_precision == "bfloat16":
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        x, y_true = train_set.x(), train_set.y_true()
        if args.max_steps:
            keep = np.random.default_rng(args.seed).permutation(len(x))
            keep = np.sort(keep[:args.max_steps * args.batch_size])
            x, y_true = x[keep], y_true[keep]
        report["training"], report["test_metrics"] = {}, {}
        for method in args.methods:
            started = time.perf_counter()
            model, report["training"][method] = train(method, x, y_true, args)
            phase(f"{method} training", started)
            started = time.perf_counter()
            report["test_metrics"][method] = evaluate(model, test_set, args.batch_size)
            phase(f"{method} evaluation", started)
    report["machine"] = _machine()
    report["total_seconds"] = sum(phases.values())
    print(json.dumps({"phase_seconds": phases, "test_metrics": report["test_metrics"]}, indent=1))
    if out is not None:
        write_json_atomic(report, out)
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
