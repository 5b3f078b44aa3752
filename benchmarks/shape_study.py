"""Does the shape-aware term help? The learning curve and the loss ablation; writes JSON + Markdown.

Usage (from the repository root):
    python benchmarks/shape_study.py curve --out study/curve --seeds 3 --epochs 2,4,8,12
    python benchmarks/shape_study.py ablation --out study/ablation --seeds 3 --epochs 8

Both train the `--preset` networks (default `demo`) on the preset's synthetic data (or
`--dataset DIR`) and evaluate them on the test split with the paper's metrics:

- `curve`: UNet and UNet-S, each seed trained once and evaluated after each epoch count of
  `--epochs` (a run is resumed to the next count; the learning rate is constant, so the
  resumed run continues the same curve). Table: per epoch count, UNet and UNet-S mean error
  on all and on the hard vertebrae and fit failure (mean +- sd over seeds), the gap
  UNet - UNet-S per seed, whether its sign is the same in every seed, and the paired test on
  the per-vertebra errors averaged over the seeds.
- `ablation`: the loss variants of `VARIANTS` (w in {0, 0.1, 0.3, 1, 3}, the balanced w,
  E per pixel, a warm-up), each trained once per seed for the last `--epochs` count. Table:
  mean +- sd over seeds of the mean point-to-curve error, the hard-case error and the fit
  failure, and the per-seed paired comparison with w = 0 (plain UNet).

Every finished (variant, seed, epochs) is recorded in OUT/results.json and skipped when the
command runs again, so a killed study resumes; run folders are under OUT/runs. The tables are
OUT/curve.md and OUT/ablation.md. Both modes may share one OUT: the ablation then reuses the
curve's UNet and UNet-S runs at its epoch count.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vertseg_tf.atomic import write_json_atomic, write_text_atomic

__all__ = ["VARIANTS", "main", "run"]

VARIANTS = {
    # name: TrainConfig changes. "w=0" is the plain UNet (pixel log loss only).
    "w=0 (UNet)": {"method": "unet"},
    "w=0.1": {"shape_weight": 0.1},
    "w=0.3": {"shape_weight": 0.3},
    "w=1 (paper)": {"shape_weight": 1.0},
    "w=3": {"shape_weight": 3.0},
    "balanced w": {"shape_weighting": "balanced"},
    "E per pixel (w=1)": {"e_per": "pixel"},
    "warm-up 2 epochs (w=1)": {"shape_warmup_epochs": 2},
}
CURVE_VARIANTS = ("w=0 (UNet)", "w=1 (paper)")
RUN_ORDER = ("w=0 (UNet)", "w=1 (paper)", "balanced w", "E per pixel (w=1)",
             "warm-up 2 epochs (w=1)", "w=0.3", "w=3", "w=0.1")
BASELINE = "w=0 (UNet)"


def _evaluate(run_dir: Path, patches) -> dict:
    """Mean error, hard-case mean error, fit failure and the per-vertebra errors of a run."""
    from vertseg_tf.evaluation.records import evaluate_patch_set
    from vertseg_tf.evaluation.runs import predict_run
    from vertseg_tf.evaluation.statistics import summarize

    _, masks = predict_run(run_dir, patches.images)
    records, _ = evaluate_patch_set(patches, {"model": masks})
    summary = summarize(records)["model"]
    hard = [r for r in records if r.hard]
    hard_errors = [r.error for r in hard if math.isfinite(r.error)]
    return {
        "error_mean": summary.metrics["error"].mean,
        "dice_mean": summary.metrics["dice"].mean,
        "fit_failure_percent": summary.fit_failure_percent,
        "hard_error_mean": float(np.mean(hard_errors)) if hard_errors else math.nan,
        "n_vertebrae": len(records),
        "n_hard": len(hard),
        "errors": {f"{r.image_id}/{r.label}": r.error for r in records},
    }


def _mean_sd(values) -> tuple[float, float]:
    values = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if not values.size:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else math.nan


def _paired_p(errors_a: dict, errors_b: dict) -> tuple[float, float]:
    """Mean of a - b and the paired t-test p-value on the vertebrae finite in both."""
    from scipy import stats

    keys = [k for k in errors_a if k in errors_b
            and math.isfinite(errors_a[k]) and math.isfinite(errors_b[k])]
    a = np.array([errors_a[k] for k in keys])
    b = np.array([errors_b[k] for k in keys])
    if a.size < 2 or np.ptp(a - b) == 0:
        return float(np.mean(a - b)) if a.size else math.nan, math.nan
    return float(np.mean(a - b)), float(stats.ttest_rel(a, b).pvalue)


def _cell(mean: float, sd: float, digits: int = 3) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")


def run(mode: str, out, *, preset: str = "demo", seeds: int = 3, epochs=(8,), dataset=None,
        cache_dir=None, variants=None, max_train_patches=None, hard_share=None,
        log=print) -> dict:
    """Run (or finish) the study; returns the results and writes OUT/results.json + table.md.

    `max_train_patches` (a seeded subset of the training patches, the same for every variant
    of a seed) makes each epoch shorter; None keeps the preset's. `hard_share` is the
    synthetic test split's exact share of hard vertebrae (generator v2; None: the usual draw).
    """
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.data.patches import PatchSet
    from vertseg_tf.training import TRAIN_PRESETS, resolve_dataset, train

    out = Path(out)
    base = TRAIN_PRESETS[preset].replace(model_selection="last", lr_schedule="constant")
    if max_train_patches is not None:
        base = base.replace(max_train_patches=max_train_patches)
    epochs = sorted({int(e) for e in epochs})
    names = list(CURVE_VARIANTS if mode == "curve" else (variants or VARIANTS))
    counts = epochs if mode == "curve" else epochs[-1:]
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results.update(preset=preset, seeds=list(range(base.seed, base.seed + seeds)),
                   max_train_patches=base.max_train_patches,
                   hard_share=hard_share,
                   platform=platform.platform())
    done = results.setdefault("runs", {})
    dataset_dir = Path(resolve_dataset(dataset, base, hard_share=hard_share))
    results["dataset"] = str(dataset_dir)
    patches = PatchSet.from_dataset(load_dataset(dataset_dir), "test", False, cache_dir=cache_dir)
    # Variant by variant (every seed of one before the next), so that a study stopped early
    # has complete rows: in the order given, else the readings the issue asks about first,
    # then the rest of the w sweep.
    if not variants:
        names.sort(key=lambda name: RUN_ORDER.index(name))
    for name in names:
        for seed in results["seeds"]:
            config = base.replace(seed=seed, **VARIANTS[name])
            run_dir = out / "runs" / f"{_slug(name)}-seed{seed}"
            for count in counts:
                key = f"{name}|{seed}|{count}"
                if key in done:
                    continue
                log(f"[{key}] training to {count} epochs")
                started = time.monotonic()
                resume = (run_dir / "config.json").is_file()
                train(config.replace(epochs=count), dataset_dir, run_dir, resume=resume,
                      overwrite=run_dir.exists() and not resume, cache_dir=cache_dir)
                row = _evaluate(run_dir, patches)
                row["seconds"] = round(time.monotonic() - started, 1)
                done[key] = row
                write_json_atomic(results, results_path)
                log(f"[{key}] error {row['error_mean']:.4f} px in {row['seconds']} s")
    results[f"{mode}_epochs"] = counts
    write_json_atomic(results, results_path)
    table = curve_table(results, counts) if mode == "curve" else ablation_table(results, counts[-1])
    write_text_atomic(table, out / f"{mode}.md")
    return results


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").lower()


def _seed_averaged(rows) -> dict:
    """Each vertebra's error averaged over the seeds' runs (infinite if empty in any seed)."""
    return {key: float(np.mean([row["errors"][key] for row in rows]))
            for key in rows[0]["errors"] if all(key in row["errors"] for row in rows)}


def curve_table(results: dict, epochs) -> str:
    """Markdown: per epoch count, UNet and UNet-S error (all and hard vertebrae) over seeds,
    the gap per seed, whether its sign holds, and the paired test on seed-averaged errors."""
    seeds, runs = results["seeds"], results["runs"]
    header = ("| Epochs | UNet error (px) | UNet-S error (px) | UNet hard (px) | UNet-S hard (px) "
              "| UNet fit failure (%) | UNet-S fit failure (%) | UNet - UNet-S per seed (p) "
              "| Same sign in every seed | UNet - UNet-S, seed-averaged errors (p) |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for count in epochs:
        rows = {name: [runs.get(f"{name}|{s}|{count}") for s in seeds] for name in CURVE_VARIANTS}
        if any(r is None for group in rows.values() for r in group):
            continue
        gaps = [_paired_p(a["errors"], b["errors"]) for a, b in zip(*rows.values(), strict=True)]
        signs = {np.sign(g) for g, _ in gaps}
        pooled = _paired_p(*(_seed_averaged(rows[n]) for n in CURVE_VARIANTS))
        cells = [_cell(*_mean_sd(r[field] for r in rows[n]), digits=digits)
                 for field, digits in (("error_mean", 3), ("hard_error_mean", 3),
                                       ("fit_failure_percent", 1))
                 for n in CURVE_VARIANTS]
        per_seed = ", ".join(f"{g:+.3f} ({p:.2g})" for g, p in gaps)
        lines.append(f"| {count} | {' | '.join(cells)} | {per_seed} | "
                     f"{'yes' if len(signs) == 1 else 'no'} | {pooled[0]:+.3f} ({pooled[1]:.2g}) |")
    return "\n".join(lines) + "\n"


def ablation_table(results: dict, count: int) -> str:
    """Markdown: per variant, mean +- sd over seeds, and the paired comparison with w = 0."""
    seeds, runs = results["seeds"], results["runs"]
    header = ("| Variant | Error mean (px) | Hard-case error (px) | Fit failure (%) "
              "| w=0 minus variant per seed (p) |")
    lines = [header, "|---|---|---|---|---|"]
    for name in VARIANTS:
        rows = [runs.get(f"{name}|{s}|{count}") for s in seeds]
        if any(r is None for r in rows):
            continue
        baseline = [runs.get(f"{BASELINE}|{s}|{count}") for s in seeds]
        if name == BASELINE or any(b is None for b in baseline):
            gaps = "-"
        else:
            pairs = [_paired_p(b["errors"], r["errors"]) for b, r in zip(baseline, rows,
                                                                          strict=True)]
            gaps = ", ".join(f"{g:+.3f} ({p:.2g})" for g, p in pairs)
        lines.append(
            f"| {name} | {_cell(*_mean_sd(r['error_mean'] for r in rows))} "
            f"| {_cell(*_mean_sd(r['hard_error_mean'] for r in rows))} "
            f"| {_cell(*_mean_sd(r['fit_failure_percent'] for r in rows), digits=2)} | {gaps} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python benchmarks/shape_study.py ablation --out study --seeds 3 "
        "--epochs 8",
    )
    parser.add_argument("mode", choices=("curve", "ablation"))
    parser.add_argument("--out", required=True, help="study folder (resumable)")
    parser.add_argument("--preset", default="demo", help="training preset (demo)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds (3)")
    parser.add_argument("--epochs", default="8",
                        help="comma-separated epoch counts (curve) or one count (ablation)")
    parser.add_argument("--variants",
                        help="comma-separated subset of the ablation's variants, run in this order")
    parser.add_argument("--max-train-patches", type=int,
                        help="train on a seeded subset of this many patches (default: preset's)")
    parser.add_argument("--hard-share", type=float,
                        help="synthetic data: exact share of hard test vertebrae, e.g. 0.5")
    parser.add_argument("--dataset", help="native dataset folder (default: synthetic)")
    parser.add_argument("--cache-dir", help="patch cache folder")
    args = parser.parse_args(argv)
    variants = None
    if args.variants:
        variants = [v.strip() for v in args.variants.split(",")]
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    results = run(args.mode, args.out, preset=args.preset, seeds=args.seeds,
                  epochs=[int(e) for e in args.epochs.split(",")], dataset=args.dataset,
                  cache_dir=args.cache_dir, variants=variants,
                  max_train_patches=args.max_train_patches, hard_share=args.hard_share,
                  log=lambda line: print(line, file=sys.stderr, flush=True))
    print((Path(args.out) / f"{args.mode}.md").read_text(), end="")
    return 0 if results["runs"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
