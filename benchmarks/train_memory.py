"""Peak memory (resident set size) of training each UNet preset, one fresh process per preset.

Each preset trains in its own child process (`python -m benchmarks.train_memory --child PRESET
...`), one after the other (side by side in the quick mode): TensorFlow backend,
`ShapeAwareLoss(e_mode="graph")`, Adam, `train_on_batch` on a fixed synthetic batch, no XLA. The
child reports its peak resident set size (the operating system's high-water mark of the whole
process: Python, TensorFlow's runtime, the model, its gradients and optimizer slots, the batch)
twice: after the imports and the batch are made (`baseline_peak_rss_mb`) and after training
(`peak_rss_mb`). The difference, `training_increase_mb`, is what building and training the model
added. On Linux the figure is `VmHWM` of /proc/self/status: `ru_maxrss` would also count the
parent's size at the fork that started the child. Elsewhere it is `ru_maxrss`. tracemalloc would
miss TensorFlow's native allocations, so it is not used.

Usage (from the repository root, with vertseg-tf installed or PYTHONPATH=.):
    python -m benchmarks.train_memory --out runs/bench/train_memory.json --presets smoke,demo

`run(quick)` is the same measurement as a function (`vertseg-tf bench` calls it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRESET_NAMES = ("smoke", "demo", "paper")
# Quick: one step (the first step already allocates the gradients and the optimizer slots)
# and the children side by side: their start-up is mostly one-threaded, and timing
# interference does not move a high-water mark.
QUICK = {"presets": PRESET_NAMES, "batch": 2, "steps": 1, "parallel": True}
FULL = {"presets": PRESET_NAMES, "batch": 25, "steps": 2, "parallel": False}


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def train_in_this_process(preset: str, batch: int, steps: int) -> dict:
    """Train `preset` for `steps` steps here and return the peak RSS figures (child side)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    from benchmarks.train_step import synthetic_batch
    from vertseg_tf.losses import ShapeAwareLoss
    from vertseg_tf.model import PRESETS, build_unet

    patches, y_true = synthetic_batch(batch, PRESETS[preset].input_size, seed=0)
    baseline = _peak_rss_mb()
    keras.utils.set_random_seed(0)
    model = build_unet(preset)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=ShapeAwareLoss(e_mode="graph"),
                  jit_compile=False)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(patches, y_true)
    seconds = time.perf_counter() - started
    peak = _peak_rss_mb()
    return {
        "preset": preset,
        "parameters": int(model.count_params()),
        "batch": batch,
        "steps": steps,
        "baseline_peak_rss_mb": baseline,
        "peak_rss_mb": peak,
        "training_increase_mb": peak - baseline,
        "seconds": seconds,
    }


def run(quick: bool, **overrides) -> dict:
    """Train every preset in its own fresh child process; collect the peaks.

    Args:
        quick: `QUICK` (batch 2, 1 step, the children side by side) instead of `FULL`
            (batch 25, 2 steps, one child after the other).
        **overrides: any key of `QUICK` / `FULL`.

    Returns:
        {"benchmark", "measure", "batch", "steps", "parallel",
        "presets": {preset: child figures}}.

    Raises:
        RuntimeError: a child process failed (its stderr is in the message).
    """
    settings = {**(QUICK if quick else FULL), **overrides}
    repository = Path(__file__).resolve().parent.parent
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow",
                   "PYTHONPATH": os.pathsep.join(
                       filter(None, [str(repository), os.environ.get("PYTHONPATH")]))}

    def start(preset: str, stderr) -> subprocess.Popen:
        print(f"[train_memory] {preset}: training in a child process", file=sys.stderr,
              flush=True)
        return subprocess.Popen(
            [sys.executable, "-m", "benchmarks.train_memory", "--child", preset,
             "--batch", str(settings["batch"]), "--steps", str(settings["steps"])],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=environment,
        )

    def collect(preset: str, child: subprocess.Popen, stderr) -> dict:
        stdout, _ = child.communicate()
        if child.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"train_memory child for {preset} failed:\n"
                               f"{stderr.read()[-2000:]}")
        return json.loads(stdout.strip().splitlines()[-1])

    presets = {}
    # Stderr goes to files, not pipes: a child filling a pipe nobody reads yet would stall.
    with contextlib.ExitStack() as files:
        stderrs = {preset: files.enter_context(tempfile.TemporaryFile("w+"))
                   for preset in settings["presets"]}
        if settings["parallel"]:
            children = {preset: start(preset, stderrs[preset]) for preset in settings["presets"]}
            for preset, child in children.items():
                presets[preset] = collect(preset, child, stderrs[preset])
        else:
            # One child at a time: concurrent TensorFlow processes fight over the cores'
            # thread pools, which would stretch the full run's per-child training time.
            for preset in settings["presets"]:
                child = start(preset, stderrs[preset])
                presets[preset] = collect(preset, child, stderrs[preset])
    return {
        "benchmark": "train_memory",
        "measure": "peak resident set size (VmHWM, else ru_maxrss) of a fresh process per "
                   "preset, MiB",
        "batch": settings["batch"],
        "steps": settings["steps"],
        "parallel": settings["parallel"],
        "presets": presets,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="JSON file to write")
    parser.add_argument("--presets", default=",".join(PRESET_NAMES),
                        help="comma-separated presets (smoke,demo,paper)")
    parser.add_argument("--batch", type=int, default=FULL["batch"], help="patches per step")
    parser.add_argument("--steps", type=int, default=FULL["steps"], help="training steps")
    parser.add_argument("--child", metavar="PRESET", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(train_in_this_process(args.child, args.batch, args.steps)))
        return 0
    if not args.out:
        parser.error("--out is required")

    from vertseg_tf.data.dataset import write_json_atomic

    presets = tuple(name.strip() for name in args.presets.split(",") if name.strip())
    result = run(False, presets=presets, batch=args.batch, steps=args.steps)
    write_json_atomic(result, args.out)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
