"""`reproduce --preset demo` on synthetic data v1 and v2, side by side: the README's table.

Runs (or finishes: both reproductions are resumable) the demo reproduction once per generator
version into `OUT/v1` and `OUT/v2`, then writes `OUT/generator_comparison.json` and
`OUT/generator_comparison.md`: every method's mean point-to-curve error, mean Dice and fit
failure on each version, and for each network the paired t-tests of its error against every
ASM (whether it beats each one with p < 0.05).

Usage:
    python -m benchmarks.generator_comparison --out runs/generators
    python -m benchmarks.generator_comparison --out runs/generators --versions 2   # v2 only

Each reproduction takes about 8-15 minutes on 2 shared CPU cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vertseg_tf.atomic import write_json_atomic, write_text_atomic

ALPHA = 0.05


def compare(report_dirs: dict[int, Path]) -> dict:
    """The table's figures from finished reproductions (version -> report folder)."""
    from vertseg_tf.evaluation.records import read_records_csv
    from vertseg_tf.evaluation.statistics import ASMS, NETWORKS, paired_t_test, summarize

    result = {}
    for version, report in report_dirs.items():
        records = read_records_csv(report / "per_vertebra.csv")
        summaries = summarize(records)
        methods = {
            name: {
                "vertebrae": summary.metrics["error"].n,
                "mean_error_px": summary.metrics["error"].mean,
                "mean_dice": summary.metrics["dice"].mean,
                "fit_failure_percent": summary.fit_failure_percent,
            }
            for name, summary in summaries.items()
        }
        tests = {}
        for network in NETWORKS:
            against = {}
            for asm in ASMS:
                test = paired_t_test(records, network, asm, "error")
                against[asm] = {"mean_difference_px": test.mean_difference,
                                "p_value": test.p_value,
                                "beats": test.mean_difference < 0 and test.p_value < ALPHA}
            tests[network] = {"against": against,
                              "beats_every_asm": all(t["beats"] for t in against.values())}
        result[f"v{version}"] = {"report": str(report), "methods": methods, "networks": tests}
    return result


def markdown(result: dict) -> str:
    versions = list(result)
    methods = list(next(iter(result.values()))["methods"])
    header = "| method | " + " | ".join(
        f"{v} error (px) | {v} Dice | {v} fit failure" for v in versions
    ) + " |"
    lines = [header, "|---|" + "---|---|---|" * len(versions)]
    for method in methods:
        cells = []
        for version in versions:
            figures = result[version]["methods"][method]
            cells += [f"{figures['mean_error_px']:.3f}", f"{figures['mean_dice']:.3f}",
                      f"{figures['fit_failure_percent']:.1f} %"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("")
    for version in versions:
        for network, tests in result[version]["networks"].items():
            worst = max(tests["against"].items(), key=lambda item: item[1]["p_value"])
            verdict = "beats every ASM" if tests["beats_every_asm"] else "does not beat every ASM"
            lines.append(f"- {version}: {network} {verdict} at p < {ALPHA} (largest p: "
                         f"{worst[1]['p_value']:.3g} against {worst[0]}).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the reproductions and table")
    parser.add_argument("--versions", default="1,2", help="generator versions (default 1,2)")
    args = parser.parse_args(argv)
    from vertseg_tf.reproduce import reproduce

    out = Path(args.out)
    reports = {}
    for version in (int(v) for v in args.versions.split(",")):
        report = reproduce("demo", out / f"v{version}", generator_version=version,
                           command_line=f"vertseg-tf reproduce --preset demo --out "
                                        f"{out / f'v{version}'} --generator-version {version}")
        reports[version] = Path(report).parent
    result = compare(reports)
    write_json_atomic(result, out / "generator_comparison.json")
    table = markdown(result)
    write_text_atomic(table, out / "generator_comparison.md")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
