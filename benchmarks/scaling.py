"""Scaling curves: how the cost of four kinds of work grows with the amount of work.

Measured in one run, each curve written to the JSON report and drawn as a small PNG:

- `build`: the cold `PatchSet.from_dataset` build of both paper splits (training patches
  augmented, 45 per vertebra; test patches one per vertebra) of the first N of 296
  synthetic radiographs (the paper's 124 : 172 split, kept in every prefix), with the default
  worker count; wall seconds and CPU seconds (this process and its workers);
- `train`: CPU training throughput (patches/s) of `build_unet(--preset)` with the pixel log
  loss against the batch size (`train_on_batch` on fixed patches, median of timed steps);
- `segment`: `Segmenter.segment` latency against the number of clicked vertebrae (1 to 7) on
  one full-size radiograph, Keras form of an untrained `--segment-preset` UNet (timing only);
- `render`: rendering time of one synthetic radiograph (`synthesize`, one thread) against its
  size in megapixels, "small" and "full" images.

    python -m benchmarks.scaling --out scaling.json --plots benchmarks/plots
    python -m benchmarks.scaling --only render,segment --out /tmp/s.json --plots /tmp/plots

`--quick` shrinks every curve (seconds, for a smoke test).
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CURVES = ("render", "build", "segment", "train")
FULL = {
    "build_images": (1, 4, 16, 64, 296),
    "batch_sizes": (1, 2, 5, 10, 25, 50, 100),
    "train_steps": 3,
    "vertebrae": (1, 2, 3, 4, 5, 6, 7),
    "segment_repeats": 5,
    "render_images": {"small": 6, "full": 8},
}
QUICK = {
    "build_images": (1, 4),
    "batch_sizes": (1, 4),
    "train_steps": 1,
    "vertebrae": (1, 3),
    "segment_repeats": 1,
    "render_images": {"small": 2, "full": 0},
}


def _cpu_seconds() -> float:
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def build_curve(counts, work: Path, seed: int = 0) -> list[dict]:
    """Cold builds of both splits of the first N images, for each N in `counts`."""
    from vertseg_tf.data.dataset import Dataset
    from vertseg_tf.data.patches import PatchSet
    from vertseg_tf.data.synthetic import generate

    dataset = generate(max(counts), seed, out_dir=work / "synthetic", size="full",
                       progress=False)
    points = []
    for count in counts:
        subset = Dataset(dataset.images[:count], dataset.root)
        wall, cpu, patches = time.perf_counter(), _cpu_seconds(), 0
        for split, augment in (("train", True), ("test", False)):
            if subset.split(split):
                patches += len(PatchSet.from_dataset(
                    subset, split, augment, cache_dir=work / f"cache-{count}", progress=False
                ))
        points.append({"images": count, "patches": patches,
                       "wall_seconds": time.perf_counter() - wall,
                       "cpu_seconds": _cpu_seconds() - cpu})
        print(f"[build] {points[-1]}", file=sys.stderr, flush=True)
    return points


def train_curve(preset: str, batch_sizes, steps: int) -> list[dict]:
    """Training patches/s against the batch size; one warm-up step per size (tracing)."""
    import keras
    import numpy as np

    from vertseg_tf import build_unet
    from vertseg_tf.losses import pixel_log_loss

    model = build_unet(preset)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=pixel_log_loss)
    rng = np.random.default_rng(0)
    points = []
    for batch in batch_sizes:
        x = rng.normal(size=(batch, 64, 64, 1)).astype(np.float32)
        y_true = np.stack([rng.integers(0, 2, (batch, 64, 64)),
                           rng.uniform(0, 20, (batch, 64, 64))], axis=-1).astype(np.float32)
        model.train_on_batch(x, y_true)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            model.train_on_batch(x, y_true)
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        points.append({"batch_size": batch, "seconds_per_step": seconds,
                       "patches_per_second": batch / seconds})
        print(f"[train] {points[-1]}", file=sys.stderr, flush=True)
    return points


def _spine_of(count: int, centers):
    """`count` centres out of C3-C7, extended by one step above (6) and below (7)."""
    import numpy as np

    above, below = 2 * centers[0] - centers[1], 2 * centers[-1] - centers[-2]
    if count <= len(centers):
        return centers[:count]
    return np.vstack([above, centers, below][: 2 + (count > len(centers) + 1)])


def segment_curve(preset: str, counts, repeats: int) -> list[dict]:
    """`Segmenter.segment` median latency against the number of vertebrae, interleaved."""
    import numpy as np

    from vertseg_tf import build_unet
    from vertseg_tf.data.synthetic import synthesize
    from vertseg_tf.deploy.inference import Segmenter

    item = synthesize(0, 0, size="full")
    image = item.image.astype(np.float32)
    centers = np.array([v.center for v in item.record.vertebrae])
    segmenter = Segmenter(build_unet(preset))
    spines = {count: _spine_of(count, centers) for count in counts}
    # A lone centre has no neighbour to set the patch scale: give it the radiograph's mean.
    scale = float(np.linalg.norm(np.diff(centers, axis=0), axis=1).mean())
    scales = {count: scale if count == 1 else None for count in counts}
    for count, spine in spines.items():
        segmenter.segment(image, spine, scale=scales[count])
    times = {count: [] for count in counts}
    for _ in range(repeats):
        for count, spine in spines.items():
            start = time.perf_counter()
            segmenter.segment(image, spine, scale=scales[count])
            times[count].append(time.perf_counter() - start)
    points = [{"vertebrae": count, "seconds": statistics.median(values), "raw": values}
              for count, values in times.items()]
    print(f"[segment] {[(p['vertebrae'], round(p['seconds'], 3)) for p in points]}",
          file=sys.stderr, flush=True)
    return points


def render_curve(per_size: dict, seed: int = 0) -> list[dict]:
    """CPU seconds to render one radiograph against its megapixels, every pool at one thread."""
    import cv2
    from threadpoolctl import threadpool_limits

    from vertseg_tf.data.synthetic import synthesize

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    points = []
    try:
        with threadpool_limits(1):
            synthesize(seed, 0, size="small")  # imports and first-call set-up
            for size, count in per_size.items():
                for index in range(count):
                    start = time.process_time()
                    pixels = synthesize(seed, index, size=size).image.size
                    points.append({"size": size, "index": index, "megapixels": pixels / 1e6,
                                   "cpu_seconds": time.process_time() - start})
    finally:
        cv2.setNumThreads(threads)
    return points


def plot(name: str, points: list[dict], out_dir: Path) -> Path:
    """One small PNG per curve (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(4.2, 3.0), dpi=90)
    if name == "build":
        x = [p["images"] for p in points]
        axis.plot(x, [p["wall_seconds"] for p in points], "o-", label="wall")
        axis.plot(x, [p["cpu_seconds"] for p in points], "s--", label="CPU (all processes)")
        axis.set(xscale="log", yscale="log", xlabel="images (124 : 172 train : test)",
                 ylabel="seconds", title="cold patch-set build")
        axis.legend(fontsize=7)
    elif name == "train":
        axis.plot([p["batch_size"] for p in points],
                  [p["patches_per_second"] for p in points], "o-")
        axis.set(xscale="log", xlabel="batch size", ylabel="patches / s",
                 title="CPU training throughput")
    elif name == "segment":
        axis.plot([p["vertebrae"] for p in points], [p["seconds"] for p in points], "o-")
        axis.set(xlabel="vertebrae clicked", ylabel="seconds", ylim=(0, None),
                 title="Segmenter.segment latency")
    else:
        for size, marker in (("small", "o"), ("full", "s")):
            chosen = [p for p in points if p["size"] == size]
            axis.plot([p["megapixels"] for p in chosen], [p["cpu_seconds"] for p in chosen],
                      marker, label=size)
        axis.set(xlabel="megapixels", ylabel="CPU seconds", xlim=(0, None), ylim=(0, None),
                 title="synthetic rendering")
        axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"scaling_{name}.png"
    figure.savefig(path)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--plots", required=True, help="folder for the PNG plots")
    parser.add_argument("--only", help=f"comma-separated curves out of {','.join(CURVES)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--train-preset", default="demo", help="UNet preset trained (demo)")
    parser.add_argument("--segment-preset", default="paper", help="UNet preset used (paper)")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(CURVES)
    if not set(chosen) <= set(CURVES):
        parser.error(f"--only takes {','.join(CURVES)}, got {args.only!r}")
    settings = QUICK if args.quick else FULL
    report = {"benchmark": "scaling", "quick": args.quick, "curves": {},
              "load_average_at_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="vertseg-scaling-") as scratch:
        for name in chosen:
            start = time.perf_counter()
            if name == "build":
                points = build_curve(settings["build_images"], Path(scratch))
            elif name == "train":
                points = train_curve(args.train_preset, settings["batch_sizes"],
                                     settings["train_steps"])
            elif name == "segment":
                points = segment_curve(args.segment_preset, settings["vertebrae"],
                                       settings["segment_repeats"])
            else:
                points = render_curve(settings["render_images"])
            report["curves"][name] = {"points": points,
                                      "seconds": time.perf_counter() - start,
                                      "plot": str(plot(name, points, Path(args.plots)))}
    from benchmarks.suite import machine_description

    report["machine"] = {**machine_description("tensorflow" in sys.modules),
                         "load_average_at_end": list(os.getloadavg())}
    report["train_preset"], report["segment_preset"] = args.train_preset, args.segment_preset
    from vertseg_tf.atomic import write_json_atomic

    write_json_atomic(report, args.out)
    print(json.dumps({name: curve["points"] for name, curve in report["curves"].items()},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
