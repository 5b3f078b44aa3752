"""Seconds until `vertseg-tf --help` and `vertseg-tf COMMAND --help` answer, whole process.

Each case is a fresh interpreter (`python -m vertseg_tf ... --help`), started `--repeats`
times in turns with the others, so a busy moment of a shared machine hits every case alike.
Side by side in the same run: the bare interpreter (`python -c pass`) and `import tensorflow`,
the cost the help avoids. Wall-clock seconds count other processes' turns on a busy machine;
CPU seconds (user + system of the child) do not. One `-X importtime` run per help case checks
that TensorFlow, Keras and JAX stay unimported.

    python -m benchmarks.cli_startup --repeats 10 --out cli_startup.json
"""

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from vertseg_tf.cli import commands

ROOT = Path(__file__).resolve().parents[1]
TARGET_HELP_SECONDS = 1.0
HEAVY_MODULES = ("tensorflow", "keras", "jax")


def _cases() -> dict[str, list[str]]:
    python = [sys.executable]
    cases = {"python -c pass": [*python, "-c", "pass"],
             "vertseg-tf --help": [*python, "-m", "vertseg_tf", "--help"]}
    for command in commands():
        cases[f"vertseg-tf {command.name} --help"] = [
            *python, "-m", "vertseg_tf", command.name, "--help"
        ]
    return cases


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv`, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=_environment(), cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _heavy_imports(argv: list[str]) -> list[str]:
    """The heavy top-level modules an `-X importtime` run of `argv` imported."""
    result = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=_environment(),
                            cwd=ROOT, check=True, capture_output=True, text=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    return sorted(name for name in HEAVY_MODULES if name in imported)


def _summary(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def measure(repeats: int, tensorflow_repeats: int) -> dict:
    cases = _cases()
    walls = {name: [] for name in cases}
    cpus = {name: [] for name in cases}
    for name, argv in cases.items():  # one untimed run each: file-system caches warm
        _timed(argv)
    for _ in range(repeats):
        for name, argv in cases.items():
            wall, cpu = _timed(argv)
            walls[name].append(wall)
            cpus[name].append(cpu)
    tensorflow = [_timed([sys.executable, "-c", "import tensorflow"])
                  for _ in range(tensorflow_repeats)]
    results = {}
    for name, argv in cases.items():
        results[name] = {"wall_seconds": _summary(walls[name]),
                         "cpu_seconds": _summary(cpus[name])}
        if name != "python -c pass":
            results[name]["heavy_modules_imported"] = _heavy_imports(argv)
    if tensorflow:
        results["import tensorflow"] = {
            "wall_seconds": _summary([wall for wall, _ in tensorflow]),
            "cpu_seconds": _summary([cpu for _, cpu in tensorflow]),
        }
    helps = {name: result for name, result in results.items() if "--help" in name}
    return {
        "benchmark": "cli_startup",
        "repeats": repeats,
        "tensorflow_repeats": tensorflow_repeats,
        "target_help_seconds": TARGET_HELP_SECONDS,
        "machine": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
        "slowest_help_median_wall_seconds": max(
            r["wall_seconds"]["median"] for r in helps.values()),
        "meets_target": all(
            r["wall_seconds"]["median"] < TARGET_HELP_SECONDS and not r["heavy_modules_imported"]
            for r in helps.values()
        ),
        "results": results,
    }


def main() -> None:
    from benchmarks.suite import print_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs per case (default 10)")
    parser.add_argument("--tensorflow-repeats", type=int, default=3,
                        help="runs of 'import tensorflow' (default 3; 0 leaves it out)")
    parser.add_argument("--out", help="JSON file to write (default: print only)")
    args = parser.parse_args()
    report = measure(args.repeats, args.tensorflow_repeats)
    print_report(report, args.out)


if __name__ == "__main__":
    main()
