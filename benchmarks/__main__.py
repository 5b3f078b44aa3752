"""`python -m benchmarks`: run the benchmark suite and write its JSON report.

`vertseg-tf bench` runs this module in a child process from the source checkout, so neither
needs to edit `sys.path`.

Example:
    python -m benchmarks --quick --only synthetic,asm --out runs/bench_quick.json
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import suite
from vertseg_tf.atomic import write_json_atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0],
    )
    parser.add_argument("--out", required=True, metavar="FILE.json", help="JSON report to write")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few steps: the whole suite in about 2 minutes "
                             "on 2 cores")
    parser.add_argument("--only", metavar="A,B",
                        help=f"sections to run: {', '.join(suite.SECTIONS)} (default: all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = [name.strip() for name in (args.only or "").split(",") if name.strip()]
    unknown = [name for name in only if name not in suite.SECTIONS]
    if unknown:
        print(f"vertseg-tf bench: error: --only: unknown section(s) {', '.join(unknown)}; "
              f"choose from {', '.join(suite.SECTIONS)}", file=sys.stderr)
        return 1
    report = suite.run_suite(args.quick, only or None)
    write_json_atomic(report, args.out)
    print(suite.format_table(report))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
