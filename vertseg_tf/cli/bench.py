"""`vertseg-tf bench`: the benchmark suite of a source checkout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vertseg_tf.cli.common import Command
from vertseg_tf.errors import ConfigError

__all__ = ["COMMANDS", "benchmarks_checkout"]


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="FILE.json", help="JSON report to write")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few steps: the whole suite in about 2 minutes "
                             "on 2 cores")
    parser.add_argument("--only", metavar="A,B",
                        help="sections to run: train_step, pipeline, synthetic, asm, "
                             "inference, memory (default: all)")


def benchmarks_checkout(repository: Path | None = None) -> Path:
    """The source checkout this package was imported from, which holds `benchmarks/`.

    Raises:
        ConfigError: there is no `benchmarks/` beside the package (an installed wheel).
    """
    repository = repository or Path(__file__).resolve().parents[2]
    if not (repository / "benchmarks" / "__main__.py").is_file():
        raise ConfigError(
            f"{repository / 'benchmarks'}: not found; 'vertseg-tf bench' runs the scripts in "
            "benchmarks/ of a source checkout: clone vertseg-tf and run it there "
            "(pip install -e . or python -m vertseg_tf bench)"
        )
    return repository


def _bench(args: argparse.Namespace) -> int:
    """`python -m benchmarks` in the checkout, its output passed through."""
    import subprocess

    repository = benchmarks_checkout()
    command = [sys.executable, "-m", "benchmarks", "--out", str(Path(args.out).resolve())]
    if args.quick:
        command.append("--quick")
    if args.only:
        command += ["--only", args.only]
    return subprocess.run(command, cwd=repository, check=False).returncode


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
