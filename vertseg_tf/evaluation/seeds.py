"""Results over several training seeds: mean and spread, a per-seed table, UNet vs UNet-S.

`reproduce --seeds N` trains each network once per seed and evaluates every seed on the
same test vertebrae. This module turns the per-seed results into one folder:

```
seeds.md                   the aggregated tables, the per-seed table and the verdict
table_seeds_mean.{md,csv}  per method: mean and sd over seeds of each seed's means
table_seeds_hard.{md,csv}  the same on the hard-case subset (Table 3)
table_per_seed.{md,csv}    every seed's means and its UNet vs UNet-S paired t-test
```

UNet vs UNet-S is judged twice: by the paired t-test of the point-to-curve error within
each seed (is the sign the same in every seed?), and by one paired t-test on the
per-vertebra errors averaged over the seeds (a vertebra with an empty prediction in any
seed has an infinite average and is dropped from that test, as from every paired test).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import atomic_dir, write_text_atomic
from vertseg_tf.errors import ConfigError
from vertseg_tf.evaluation.records import VertebraResult
from vertseg_tf.evaluation.report.tables import Table
from vertseg_tf.evaluation.statistics import (
    METRICS,
    NETWORKS,
    PairedTest,
    hard_subset,
    ordered_methods,
    paired_t_test,
    summarize,
)

__all__ = ["SeedVerdict", "average_over_seeds", "seed_tables", "seed_verdict", "write_seed_report"]

SEEDS_FILE = "seeds.md"
_SEED_COLUMNS = ("pixel_accuracy", "dice", "error", "error_std", "fit_failure")
_COLUMN_TITLES = {
    "pixel_accuracy": "pA mean (%)",
    "dice": "Dice mean",
    "error": "Error mean (px)",
    "error_std": "Error std (px)",
    "fit_failure": "Fit failure (%)",
}


def _seed_means(records: Sequence[VertebraResult]) -> dict[str, dict[str, float]]:
    """Per method, the seed's values of `_SEED_COLUMNS`."""
    values = {}
    for method, summary in summarize(records).items():
        values[method] = {
            "pixel_accuracy": summary.metrics["pixel_accuracy"].mean,
            "dice": summary.metrics["dice"].mean,
            "error": summary.metrics["error"].mean,
            "error_std": summary.metrics["error"].std,
            "fit_failure": summary.fit_failure_percent,
        }
    return values


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample sd (ddof 1) over the seeds' finite values; sd NaN for one value."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if not finite.size:
        return math.nan, math.nan
    return float(finite.mean()), float(finite.std(ddof=1)) if finite.size > 1 else math.nan


def average_over_seeds(per_seed: Mapping[int, Sequence[VertebraResult]]) -> list[VertebraResult]:
    """One record per method and vertebra: each metric averaged over the seeds.

    Only vertebrae present in every seed are kept; an infinite error in any seed makes the
    average infinite.
    """
    grouped: dict[tuple, list[VertebraResult]] = {}
    for records in per_seed.values():
        for record in records:
            grouped.setdefault((record.method, record.key), []).append(record)
    averaged = []
    for (method, _), group in grouped.items():
        if len(group) != len(per_seed):
            continue
        first = group[0]
        means = {m: float(np.mean([getattr(r, m) for r in group])) for m in METRICS}
        averaged.append(
            VertebraResult(method, first.image_id, first.label, first.conditions, **means)
        )
    return averaged


@dataclass(frozen=True)
class SeedVerdict:
    """UNet vs UNet-S over the seeds, in point-to-curve error.

    Args:
        per_seed: seed -> the paired t-test UNet - UNet-S of that seed.
        pooled: the paired t-test on the per-vertebra errors averaged over the seeds.
    """

    per_seed: dict[int, PairedTest]
    pooled: PairedTest

    @property
    def signs(self) -> list[int]:
        """Per seed, +1 when UNet-S has the lower mean error, -1 when UNet has, 0 for a tie."""
        return [int(np.sign(t.mean_difference)) for t in self.per_seed.values()]

    def sentence(self) -> str:
        """The "Does the paper's ordering hold?" line for several seeds."""
        signs = self.signs
        wins = sum(s > 0 for s in signs)
        significant = sum(
            s > 0 and t.p_value < 0.05 for s, t in zip(signs, self.per_seed.values(), strict=True)
        )
        same = "the same in every seed" if len(set(signs)) == 1 else "NOT the same in every seed"
        pooled = self.pooled
        direction = "lower" if pooled.mean_difference > 0 else "higher"
        return (
            f"UNet-S <= UNet in mean point-to-curve error over {len(signs)} seeds: the sign of "
            f"the effect is {same} (UNet-S lower in {wins} of {len(signs)} seeds, "
            f"significantly at the 5 % level in {significant}). On the per-vertebra errors "
            f"averaged over the seeds, UNet-S is {abs(pooled.mean_difference):.3f} px {direction} "
            f"than UNet (paired t-test p = {_format_p(pooled.p_value)} over {pooled.n_pairs} "
            f"vertebrae)."
        )


def _format_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def seed_verdict(per_seed: Mapping[int, Sequence[VertebraResult]]) -> SeedVerdict | None:
    """The `SeedVerdict`, or None when UNet or UNet-S is missing."""
    present = {r.method for records in per_seed.values() for r in records}
    if not set(NETWORKS) <= present:
        return None
    tests = {seed: paired_t_test(records, "UNet", "UNet-S", "error")
             for seed, records in per_seed.items()}
    pooled = paired_t_test(average_over_seeds(per_seed), "UNet", "UNet-S", "error")
    return SeedVerdict(tests, pooled)


def _aggregate_table(name: str, caption: str, per_seed) -> Table:
    means = {seed: _seed_means(records) for seed, records in per_seed.items() if records}
    methods = ordered_methods(m for values in means.values() for m in values)
    header = ["Method", "Seeds"]
    for column in _SEED_COLUMNS:
        header += [_COLUMN_TITLES[column], "sd over seeds"]
    rows = []
    for method in methods:
        seeds = [values[method] for values in means.values() if method in values]
        row = [method, len(seeds)]
        for column in _SEED_COLUMNS:
            row += list(_mean_sd([s[column] for s in seeds]))
        rows.append(tuple(row))
    digits = (None, None, 2, 2, 3, 3, 3, 3, 3, 3, 2, 2)
    return Table(name, caption, tuple(header), rows, digits)


def seed_tables(per_seed: Mapping[int, Sequence[VertebraResult]]) -> dict[str, Table]:
    """The aggregated, hard-case and per-seed tables (see the module docstring).

    Args:
        per_seed: seed -> that seed's per-vertebra results (every method).

    Returns:
        Tables by name.

    Raises:
        ConfigError: no results.
    """
    if not per_seed or not any(per_seed.values()):
        raise ConfigError("no per-vertebra results to aggregate over seeds")
    count = len(per_seed)
    mean_table = _aggregate_table(
        "table_seeds_mean",
        f"Tables 1-2 over {count} training seeds: each seed's mean over the test vertebrae, "
        "then the mean and the sd of those over the seeds.",
        per_seed,
    )
    hard = {seed: [r for r in hard_subset(records) if r.method in NETWORKS]
            for seed, records in per_seed.items()}
    hard_count = len({r.key for records in hard.values() for r in records})
    hard_table = _aggregate_table(
        "table_seeds_hard",
        f"Table 3 over {count} seeds: the {hard_count} hard vertebrae (any clinical condition).",
        hard,
    )
    verdict = seed_verdict(per_seed)
    rows = []
    for seed, records in per_seed.items():
        test = verdict.per_seed[seed] if verdict else None
        for method, values in _seed_means(records).items():
            rows.append((
                seed, method, values["pixel_accuracy"], values["dice"], values["error"],
                values["fit_failure"],
                test.mean_difference if test and method == "UNet-S" else None,
                test.p_value if test and method == "UNet-S" else None,
            ))
    per_seed_table = Table(
        "table_per_seed",
        "Every seed: means over the test vertebrae; on the UNet-S row, the paired t-test of "
        "the point-to-curve error, UNet - UNet-S (positive: UNet-S is better).",
        ("Seed", "Method", "pA mean (%)", "Dice mean", "Error mean (px)", "Fit failure (%)",
         "UNet - UNet-S (px)", "p-value"),
        rows,
        (None, None, 2, 3, 3, 2, 4, "p"),
    )
    return {t.name: t for t in (mean_table, hard_table, per_seed_table)}


def write_seed_report(
    per_seed: Mapping[int, Sequence[VertebraResult]],
    out_dir,
    *,
    title: str,
    notes: Sequence[str] = (),
    command_line: str | None = None,
) -> Path:
    """Write the seeds folder (built under a temporary name, then renamed); returns `seeds.md`.

    Args:
        per_seed: seed -> that seed's per-vertebra results.
        out_dir: the folder to create (an existing one is replaced).
        title: the heading of `seeds.md`.
        notes: lines stated under the heading (what was trained, the model selection).
        command_line: the command quoted in `seeds.md`.
    """
    tables = seed_tables(per_seed)
    verdict = seed_verdict(per_seed)
    lines = [f"# {title}", ""]
    if command_line:
        lines += [f"Command: `{command_line}`", ""]
    lines += [f"- {note}" for note in notes]
    lines += ["", "## Does the paper's ordering hold?", ""]
    lines.append(verdict.sentence() if verdict else "UNet and UNet-S are not both present.")
    for table in tables.values():
        lines += ["", f"## {table.caption}", "", table.markdown()]
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, replace=True) as staging:
        for table in tables.values():
            write_text_atomic(table.markdown(), staging / f"{table.name}.md")
            write_text_atomic(table.csv(), staging / f"{table.name}.csv")
        write_text_atomic("\n".join(lines).rstrip() + "\n", staging / SEEDS_FILE)
    return out_dir / SEEDS_FILE
