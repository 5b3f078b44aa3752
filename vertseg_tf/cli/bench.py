"""`vertseg-tf bench`: the benchmark suite of a source checkout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vertseg_tf.cli.common import Command
from vertseg_tf.errors import ConfigError

__all__ = ["COMMANDS", "benchmark_suite"]


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="FILE.json", help="JSON report to write")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few steps: the whole suite in about 2 minutes "
                             "on 2 cores")
    parser.add_argument("--only", metavar="A,B",
                        help="sections to run: train_step, pipeline, synthetic, asm, "
                             "inference, memory (default: all)")


def benchmark_suite(repository: Path | None = None):
    """`benchmarks.suite` of `repository`: the source checkout this package was imported from."""
    import importlib

    repository = repository or Path(__file__).resolve().parents[2]
    if not (repository / "benchmarks" / "suite.py").is_file():
        raise ConfigError(
            f"{repository / 'benchmarks'}: not found; 'vertseg-tf bench' runs the scripts in "
            "benchmarks/ of a source checkout: clone vertseg-tf and run it there "
            "(pip install -e . or python -m vertseg_tf bench)"
        )
    if str(repository) not in sys.path:
        sys.path.insert(0, str(repository))
    return importlib.import_module("benchmarks.suite")


def _bench(args: argparse.Namespace) -> int:
    from vertseg_tf.data.dataset import write_json_atomic

    suite = benchmark_suite()
    only = [name.strip() for name in (args.only or "").split(",") if name.strip()]
    unknown = [name for name in only if name not in suite.SECTIONS]
    if unknown:
        raise ConfigError(f"--only: unknown section(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(suite.SECTIONS)}")
    report = suite.run_suite(args.quick, only or None)
    write_json_atomic(report, args.out)
    print(suite.format_table(report))
    print(f"wrote {args.out}")
    return 0


BENCH = Command(
    "bench",
    "Run the benchmark suite (benchmarks/): speed and memory figures as ratios, printed and "
    "written as JSON.",
    "vertseg-tf bench --quick --out runs/bench_quick.json\n"
    "vertseg-tf bench --out runs/bench.json --only train_step,inference",
    _bench_arguments,
    _bench,
)

COMMANDS = (BENCH,)
