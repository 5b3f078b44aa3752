"""The benchmark suite behind `vertseg-tf bench`: every benchmark script's `run`, one JSON file.

Sections (`--only` takes a comma-separated subset), each calling the measuring function of the
script named beside it:

    train_step  benchmarks/train_step.py      step time per preset, log loss vs shape-aware
                                              loss (graph and py_function E), ratios
    pipeline    benchmarks/patch_pipeline.py  patch-set build time, tf.data throughput vs
                                              training throughput on the same patches
    synthetic   benchmarks/synthetic_rate.py  synthetic radiographs per second, one core
    asm         benchmarks/asm_speed.py       ASM-G/M/RF prediction time per patch, one core
    inference   benchmarks/inference.py       Keras, SavedModel, TFLite float32/int8 patches/s
                                              and whole-radiograph latency
    memory      benchmarks/train_memory.py    peak RSS of training per preset (fresh process)

The JSON file (`format` "vertseg-bench/1"):

    {"format", "quick", "date" (UTC, ISO 8601), "machine": {cpu_model, cpu_cores, ...,
     tensorflow, keras, numpy, python, platform, load_average_at_start},
     "sections": [run sections], "section_seconds": {section: wall seconds},
     "section_cpu_seconds": {section: CPU seconds of this process and its child processes},
     "schema": {key: {"unit", "description"}},
     "results": {key: number | {"not_measured": reason}},   # exactly the schema's keys
     "details": {section: the script's full `run` result (raw times, settings)}}

A figure the run did not produce (a section left out by `--only`, a variant the mode does not
time, a section that failed) is `{"not_measured": "<reason>"}`, never a made-up number.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FORMAT = "vertseg-bench/1"
SECTIONS = ("train_step", "pipeline", "synthetic", "asm", "inference", "memory")
PRESET_NAMES = ("smoke", "demo", "paper")
ASM_NAMES = ("asm-g", "asm-m", "asm-rf")
INFERENCE_KINDS = ("keras", "saved_model", "tflite_float32", "tflite_int8")
STEP_VARIANTS = {
    "logloss": ("logloss_no_xla", "PixelLogLoss, no XLA"),
    "shape_graph": ("shape_graph_no_xla", 'ShapeAwareLoss(e_mode="graph"), no XLA'),
    "shape_py_function": ("shape_py_function_no_xla", 'ShapeAwareLoss(e_mode="py_function")'),
    "logloss_xla": ("logloss_xla", "PixelLogLoss, XLA"),
    "shape_graph_xla": ("shape_graph_xla", 'ShapeAwareLoss(e_mode="graph"), XLA'),
}


def _schema() -> dict[str, dict[str, str]]:
    schema = {}

    def key(name: str, unit: str, description: str) -> None:
        schema[name] = {"unit": unit, "description": description}

    for preset in PRESET_NAMES:
        for name, (_, what) in STEP_VARIANTS.items():
            key(f"train_step.{preset}.{name}_s_per_step", "s",
                f"median training step time, {what}, {preset} preset")
        key(f"train_step.{preset}.ratio_shape_graph_vs_logloss", "ratio",
            "graph shape-aware / log-loss step time (XLA pair when timed, else no-XLA; "
            "target <= 1.05)")
        key(f"train_step.{preset}.ratio_shape_py_function_vs_logloss", "ratio",
            "py_function shape-aware / log-loss step time (no-XLA pair)")
    key("pipeline.patch_build_seconds", "s",
        "cold build of the augmented training patch set (45 per vertebra)")
    key("pipeline.patch_build_patches_per_second", "patches/s", "patch-set build rate")
    key("pipeline.patch_cache_load_seconds", "s", "reload of the same patch set from the cache")
    key("pipeline.tfdata_patches_per_second", "patches/s",
        "vertseg_tf.data.pipeline.make_dataset throughput")
    key("pipeline.training_patches_per_second", "patches/s",
        "training throughput of the UNet on the same patches")
    key("pipeline.ratio_tfdata_vs_training", "ratio", "tf.data / training (target >= 10)")
    for size in ("full", "small"):
        key(f"synthetic.{size}.images_per_cpu_second", "images/CPU s",
            f"{size}-size radiographs rendered and written as PNG, one core")
        key(f"synthetic.{size}.render_images_per_cpu_second", "images/CPU s",
            f"{size}-size radiographs rendered (no file), one core")
    for name in ASM_NAMES:
        key(f"asm.{name}.predict_cpu_ms_per_patch", "ms", f"{name} predict, CPU time per patch")
        key(f"asm.{name}.predict_wall_ms_per_patch", "ms", f"{name} predict, wall time per patch")
        key(f"asm.{name}.fit_seconds", "s", f"{name} fit on the training patches")
    key("inference.export_seconds", "s",
        "export_run: SavedModel + TFLite float32 and int8 with parity checks (SavedModel "
        "checked in fresh processes; --quick: in the exporting process)")
    for kind in INFERENCE_KINDS:
        key(f"inference.{kind}.patches_per_second", "patches/s",
            f"Segmenter.predict_patches throughput, {kind}")
        key(f"inference.{kind}.radiograph_latency_ms", "ms",
            f"Segmenter.segment of one full-size radiograph (5 vertebrae), {kind}")
        if kind != "keras":
            key(f"inference.{kind}.ratio_vs_keras", "ratio", f"{kind} / Keras patches per second")
    for preset in PRESET_NAMES:
        key(f"memory.{preset}.peak_rss_mb", "MiB",
            f"peak resident set size of a fresh process training the {preset} preset")
        key(f"memory.{preset}.training_increase_mb", "MiB",
            "peak RSS after training minus peak RSS before building the model")
    return schema


SCHEMA = _schema()


def _train_step(quick: bool) -> tuple[dict, dict]:
    from benchmarks import train_step

    result = train_step.run(quick)
    values = {}
    for preset, figures in result["train_step"].items():
        median = figures["seconds_per_step_median"]
        for name, (variant, _) in STEP_VARIANTS.items():
            if variant in median:
                values[f"train_step.{preset}.{name}_s_per_step"] = median[variant]
        for ratio in ("ratio_shape_graph_vs_logloss", "ratio_shape_py_function_vs_logloss"):
            values[f"train_step.{preset}.{ratio}"] = figures[ratio]
    return values, result


def _pipeline(quick: bool) -> tuple[dict, dict]:
    from benchmarks import patch_pipeline

    result = patch_pipeline.run(quick)
    return {
        "pipeline.patch_build_seconds": result["build_seconds"],
        "pipeline.patch_build_patches_per_second": result["build_patches_per_second"],
        "pipeline.patch_cache_load_seconds": result["cache_load_seconds"],
        "pipeline.tfdata_patches_per_second": result["pipeline_patches_per_second"],
        "pipeline.training_patches_per_second": result["model_train_patches_per_second"],
        "pipeline.ratio_tfdata_vs_training": result["pipeline_over_training"],
    }, result


def _per_item(section: str, items: dict, fields: dict[str, str]) -> dict:
    """`{section}.{item}.{key}` -> `figures[field]` for every item's figures and (key, field)."""
    return {
        f"{section}.{name}.{key}": figures[field]
        for name, figures in items.items()
        for key, field in fields.items()
    }


def _synthetic(quick: bool) -> tuple[dict, dict]:
    from benchmarks import synthetic_rate

    result = synthetic_rate.run(quick)
    return _per_item("synthetic", result["results"], {
        "images_per_cpu_second": "render_and_png_images_per_cpu_second",
        "render_images_per_cpu_second": "render_images_per_cpu_second",
    }), result


def _asm(quick: bool) -> tuple[dict, dict]:
    from benchmarks import asm_speed

    result = asm_speed.run(quick)
    return _per_item("asm", result["methods"], {
        "predict_cpu_ms_per_patch": "predict_cpu_ms_mean",
        "predict_wall_ms_per_patch": "predict_wall_ms_median",
        "fit_seconds": "fit_seconds",
    }), result


def _inference(quick: bool) -> tuple[dict, dict]:
    from benchmarks import inference

    result = inference.run(quick)
    values = {"inference.export_seconds": result["export_s"]}
    for kind, figures in result["results"].items():
        values[f"inference.{kind}.patches_per_second"] = figures["patches_per_s"]
        values[f"inference.{kind}.radiograph_latency_ms"] = 1000.0 * figures["radiograph_s"]
        if kind != "keras":
            values[f"inference.{kind}.ratio_vs_keras"] = (
                result["throughput_ratio_over_keras"][kind]
            )
    return values, result


def _memory(quick: bool) -> tuple[dict, dict]:
    from benchmarks import train_memory

    result = train_memory.run(quick)
    return _per_item("memory", result["presets"], {
        "peak_rss_mb": "peak_rss_mb",
        "training_increase_mb": "training_increase_mb",
    }), result


RUNNERS: dict[str, Callable[[bool], tuple[dict, dict]]] = {
    "train_step": _train_step,
    "pipeline": _pipeline,
    "synthetic": _synthetic,
    "asm": _asm,
    "inference": _inference,
    "memory": _memory,
}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def machine_description(tensorflow: bool = True) -> dict:
    """CPU model, cores, memory, accelerators, library versions and the load at the start.

    Args:
        tensorflow: also describe TensorFlow and Keras (and the accelerators they see); a
            script that never needed them passes False and does not import them.
    """
    import numpy as np

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    description = {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "memory_gib": _memory_total_gib(),
        "accelerators": None,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if tensorflow:
        import keras
        import tensorflow as tf

        description.update({
            "accelerators": [device.name for device in tf.config.list_physical_devices()
                             if device.device_type != "CPU"],
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_backend": keras.backend.backend(),
        })
    return description


def print_report(report: dict, out: str | None = None) -> None:
    """Print a script's report as indented JSON and, given `out`, write the same text there."""
    text = json.dumps(report, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")


def run_suite(quick: bool, only: Sequence[str] | None = None) -> dict:
    """Run the selected sections and return the report described in the module docstring.

    Args:
        quick: tiny sizes and few steps (the whole suite in about 2 minutes on 2 cores).
        only: sections to run (default all of `SECTIONS`).

    Returns:
        The report; `results` holds every key of `schema`.

    Raises:
        ValueError: an unknown section name in `only`.
    """
    selected = tuple(only) if only else SECTIONS
    unknown = [name for name in selected if name not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(SECTIONS)}")
    report = {
        "format": FORMAT,
        "quick": quick,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "sections": list(selected),
        "section_seconds": {},
        "section_cpu_seconds": {},
        "schema": SCHEMA,
        "results": {},
        "details": {},
    }
    reasons = {}
    for section in SECTIONS:
        if section not in selected:
            reasons[section] = "section not selected (--only)"
            continue
        print(f"bench: {section} ...", file=sys.stderr, flush=True)
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        try:
            values, details = RUNNERS[section](quick)
        except Exception as error:  # noqa: BLE001 - one failed section must not lose the rest
            reasons[section] = f"section failed: {type(error).__name__}: {error}"
            print(f"bench: {section} failed: {type(error).__name__}: {error}", file=sys.stderr)
        else:
            report["results"].update(values)
            report["details"][section] = details
            reasons[section] = _mode_reason(section, quick)
        report["section_seconds"][section] = time.perf_counter() - started
        report["section_cpu_seconds"][section] = _cpu_seconds() - cpu_started
        print(f"bench: {section} done in {report['section_seconds'][section]:.0f} s "
              f"({report['section_cpu_seconds'][section]:.0f} CPU s)",
              file=sys.stderr, flush=True)
    for key in SCHEMA:
        value = report["results"].get(key)
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            report["results"][key] = {"not_measured": reasons[key.split(".")[0]]}
    report["results"] = {key: report["results"][key] for key in SCHEMA}
    return report


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _mode_reason(section: str, quick: bool) -> str:
    """Why a key of a section that ran has no value."""
    if section == "train_step":
        return ("not timed in this mode: --quick times the smoke preset without XLA; the full "
                "suite adds demo and XLA; the paper preset (about 20.8 GFLOP per training "
                "patch) is timed on a GPU by benchmarks/gpu_paper_protocol.py"
                if quick else
                "not timed on this machine: the paper preset (about 20.8 GFLOP per training "
                "patch) takes minutes per step on a CPU; benchmarks/gpu_paper_protocol.py "
                "times it on a GPU")
    return "not produced by the section in this mode"


def format_table(report: dict) -> str:
    """The results as an aligned text table: key, value, unit (not measured: the reason)."""
    rows = []
    for key, value in report["results"].items():
        unit = report["schema"][key]["unit"]
        if isinstance(value, dict):
            rows.append((key, "-", "not measured"))
        else:
            rows.append((key, f"{value:.4g}", unit))
    width = max(len(row[0]) for row in rows)
    lines = [f"{'key':<{width}}  {'value':>10}  unit", "-" * (width + 30)]
    lines += [f"{key:<{width}}  {value:>10}  {unit}" for key, value, unit in rows]
    machine = report["machine"]
    lines.append("")
    lines.append(f"machine: {machine['cpu_model']}, {machine['cpu_cores']} cores, "
                 f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}; "
                 f"{'quick' if report['quick'] else 'full'} run {report['date']}")
    return "\n".join(lines)
