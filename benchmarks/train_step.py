"""Time one training step of the UNet with the log loss and with the shape-aware loss.

For each preset, five variants train the same architecture on the same batch, interleaved
round by round so that load on a shared machine hits them alike; the median step time of each
is compared within the run:

- `logloss_xla`, `shape_graph_xla`: `PixelLogLoss` and `ShapeAwareLoss(e_mode="graph")`,
  compiled with XLA (`jit_compile=True`);
- `logloss_no_xla`, `shape_graph_no_xla`, `shape_py_function_no_xla`: the same without XLA,
  and `ShapeAwareLoss(e_mode="py_function")`, which cannot run under XLA.

Ratios: `ratio_shape_graph_vs_logloss` (XLA pair; target <= 1.05),
`ratio_shape_py_function_vs_logloss` (no-XLA pair: the cost of the host round trip), and
`ratio_shape_py_function_vs_logloss_xla` (what choosing py_function costs against the fast path).

Usage:
    python -m benchmarks.train_step --out runs/train_step.json --presets demo --steps 20

`run(quick)` is the same measurement as a function (`vertseg-tf bench` calls it); `run(True)`
times the smoke preset's three no-XLA variants only, and then `ratio_shape_graph_vs_logloss`
compares the no-XLA pair (`graph_ratio_pair` says which pair).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import scipy.ndimage

from vertseg_tf.data.dataset import write_json_atomic
from vertseg_tf.losses import PixelLogLoss, ShapeAwareLoss
from vertseg_tf.model import PRESETS, build_unet

VARIANTS = {
    "logloss_xla": (PixelLogLoss, {}, True),
    "shape_graph_xla": (ShapeAwareLoss, {"e_mode": "graph"}, True),
    "logloss_no_xla": (PixelLogLoss, {}, False),
    "shape_graph_no_xla": (ShapeAwareLoss, {"e_mode": "graph"}, False),
    "shape_py_function_no_xla": (ShapeAwareLoss, {"e_mode": "py_function"}, False),
}


def synthetic_batch(batch: int, size: int, seed: int):
    """Noisy ellipse patches with their masks and (pixel-accurate) distance-to-edge maps."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    patches = np.empty((batch, size, size, 1), np.float32)
    y_true = np.empty((batch, size, size, 2), np.float32)
    for index in range(batch):
        centre = size / 2 + rng.normal(0, 2, size=2)
        radii = rng.uniform(0.2, 0.35, size=2) * size
        mask = ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 < 1
        distance = np.where(
            mask, scipy.ndimage.distance_transform_edt(mask),
            scipy.ndimage.distance_transform_edt(~mask),
        ) - 0.5
        patches[index, ..., 0] = mask * 0.6 + rng.normal(0.2, 0.1, size=(size, size))
        y_true[index, ..., 0] = mask
        y_true[index, ..., 1] = distance
    return patches, y_true


def time_preset(preset: str, batch: int, steps: int, warmup: int,
                variants: tuple[str, ...] = tuple(VARIANTS)) -> dict:
    """Median step time of each of `variants` (keys of `VARIANTS`), interleaved, and the ratios.

    `ratio_shape_graph_vs_logloss` compares the XLA pair when both XLA variants ran, else the
    no-XLA pair; `graph_ratio_pair` names the pair used.
    """
    patches, y_true = synthetic_batch(batch, PRESETS[preset].input_size, seed=0)
    models = {}
    for variant in variants:
        loss_class, options, jit = VARIANTS[variant]
        keras.utils.set_random_seed(0)
        model = build_unet(preset)
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss_class(**options),
                      jit_compile=jit)
        for _ in range(warmup):
            model.train_on_batch(patches, y_true)
        models[variant] = model
        print(f"[{preset}] {variant}: compiled and warmed up", file=sys.stderr, flush=True)
    raw = {variant: [] for variant in variants}
    started = time.perf_counter()
    for step in range(steps):
        for variant, model in models.items():
            tick = time.perf_counter()
            model.train_on_batch(patches, y_true)
            raw[variant].append(time.perf_counter() - tick)
        elapsed = time.perf_counter() - started
        eta = elapsed / (step + 1) * (steps - step - 1)
        print(f"[{preset}] round {step + 1}/{steps}, {elapsed:.0f} s, ETA {eta:.0f} s",
              file=sys.stderr, flush=True)
    median = {variant: statistics.median(times) for variant, times in raw.items()}
    pair = "xla" if {"shape_graph_xla", "logloss_xla"} <= median.keys() else "no_xla"
    result = {
        "parameters": models[variants[0]].count_params(),
        "seconds_per_step_median": median,
        "patches_per_second": {variant: batch / seconds for variant, seconds in median.items()},
        "raw_seconds": raw,
        "graph_ratio_pair": pair,
        "ratio_shape_graph_vs_logloss": median[f"shape_graph_{pair}"] / median[f"logloss_{pair}"],
    }
    if {"shape_graph_no_xla", "logloss_no_xla"} <= median.keys():
        result["ratio_shape_graph_vs_logloss_no_xla"] = (
            median["shape_graph_no_xla"] / median["logloss_no_xla"]
        )
    if {"shape_py_function_no_xla", "logloss_no_xla"} <= median.keys():
        result["ratio_shape_py_function_vs_logloss"] = (
            median["shape_py_function_no_xla"] / median["logloss_no_xla"]
        )
    if {"shape_py_function_no_xla", "logloss_xla"} <= median.keys():
        result["ratio_shape_py_function_vs_logloss_xla"] = (
            median["shape_py_function_no_xla"] / median["logloss_xla"]
        )
    return result


def machine_description() -> dict:
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "devices": [device.device_type for device in tf.config.list_physical_devices()],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


NO_XLA_VARIANTS = ("logloss_no_xla", "shape_graph_no_xla", "shape_py_function_no_xla")
# Quick: the no-XLA trio only (an XLA compile of the UNet takes tens of seconds on a small CPU).
QUICK = {"presets": ("smoke",), "steps": 3, "warmup": 1, "batch": 8, "variants": NO_XLA_VARIANTS}
FULL = {"presets": ("smoke", "demo"), "steps": 20, "warmup": 3, "batch": 25,
        "variants": tuple(VARIANTS)}


def run(quick: bool, presets=None, steps: int | None = None, warmup: int | None = None,
        batch: int | None = None) -> dict:
    """Time the loss variants of every preset side by side (see the module docstring).

    Args:
        quick: small defaults (`QUICK`: the smoke preset, the three no-XLA variants, 3 timed
            steps of 8 patches) instead of `FULL`.
        presets, steps, warmup, batch: override the defaults of the chosen mode.

    Returns:
        {"benchmark", "machine", "batch", "steps", "warmup", "train_step": {preset: figures},
        "ratios": {"train_step.<preset>.ratio_...": value}}.
    """
    defaults = QUICK if quick else FULL
    presets = tuple(presets or defaults["presets"])
    result = {
        "benchmark": "train_step",
        "machine": machine_description(),
        "batch": batch or defaults["batch"],
        "steps": steps or defaults["steps"],
        "warmup": warmup or defaults["warmup"],
        "variants": list(defaults["variants"]),
        "train_step": {},
    }
    for preset in presets:
        result["train_step"][preset] = time_preset(
            preset, result["batch"], result["steps"], result["warmup"], defaults["variants"]
        )
    result["ratios"] = {
        f"train_step.{preset}.{key}": value
        for preset, numbers in result["train_step"].items()
        for key, value in numbers.items()
        if key.startswith("ratio_")
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--presets", default="demo", help="comma-separated presets (demo,paper)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant")
    parser.add_argument("--batch", type=int, default=25, help="patches per step (paper: 25)")
    args = parser.parse_args(argv)
    presets = [name.strip() for name in args.presets.split(",") if name.strip()]
    unknown = [name for name in presets if name not in PRESETS]
    if unknown or args.steps < 1 or args.warmup < 1 or args.batch < 1:
        parser.error(f"bad options: unknown presets {unknown}" if unknown
                     else "--steps, --warmup and --batch must be >= 1")
    result = run(False, presets, args.steps, args.warmup, args.batch)
    write_json_atomic(result, args.out)
    for key, value in result["ratios"].items():
        print(f"{key} = {value:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
