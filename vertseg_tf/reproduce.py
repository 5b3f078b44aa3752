"""`vertseg-tf reproduce`: the paper's whole comparison in one resumable command.

dataset (synthetic when none is given) -> patch sets -> UNet, UNet-S, ASM-G, ASM-M, ASM-RF ->
evaluation on the test split -> report. Every finished step is recorded in
`OUT/reproduce.json` and skipped when the command runs again; an unfinished training step
resumes from its last checkpoint.

Layout of OUT: `runs/<method>/` (one run folder per method, as `vertseg-tf train` writes it),
`report/` (see `vertseg_tf.evaluation.report`), `reproduce.json` (steps, times, settings).
With `seeds > 1`: `runs/seed-<s>/<method>/`, `seeds/seed-<s>/` (each seed's report) and
`report/seeds.md` (see `vertseg_tf.evaluation.seeds`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

from vertseg_tf.atomic import write_json_atomic
from vertseg_tf.errors import ConfigError

__all__ = ["METHOD_NAMES", "REPRODUCE_PRESETS", "ReproducePreset", "reproduce"]

METHOD_NAMES = {
    "unet": "UNet",
    "unet-s": "UNet-S",
    "asm-g": "ASM-G",
    "asm-m": "ASM-M",
    "asm-rf": "ASM-RF",
}
STATE_FILE = "reproduce.json"


@dataclasses.dataclass(frozen=True)
class ReproducePreset:
    """What `reproduce --preset NAME` runs.

    Args:
        train_preset: the `vertseg_tf.training.TRAIN_PRESETS` entry both networks use (its
            `synthetic_images` / `synthetic_size` also pick the synthetic dataset).
        asm_augment: fit the ASMs on the 45-patch augmented set (True) or on one patch per
            training vertebra, as classical ASMs are trained (False).
        summary: one line for `--help` and the report.
        hard_share: the synthetic test split's exact share of hard vertebrae (generator v2),
            or None for the generator's usual draw; `reproduce(hard_share=...)` overrides it.
    """

    train_preset: str
    asm_augment: bool
    summary: str
    hard_share: float | None = None


REPRODUCE_PRESETS = {
    "smoke": ReproducePreset("smoke", True, "seconds to minutes; tiny models and data, for tests"),
    "demo": ReproducePreset(
        "demo",
        False,
        "about 5 minutes on 2 CPU cores: demo UNet (408,050 parameters) on 40 small images; "
        "half the test vertebrae are hard cases (60 of 120, for Table 3)",
        hard_share=0.5,
    ),
    "study": ReproducePreset(
        "study",
        False,
        "hours on 2 CPU cores: UNet of base width 16 on 80 small images, 12 epochs, the best "
        "validation epoch",
    ),
    "paper": ReproducePreset(
        "paper",
        False,
        "the paper's protocol: 296 small synthetic images (124 train : 172 test), 45 patches per "
        "training vertebra, paper UNet, 30 epochs, batch 25, RMSprop (a GPU job)",
    ),
}


def _read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return {}
    except ValueError as error:
        raise ConfigError(f"{path}: not valid JSON ({error}); remove it to start again") from None


def _seed_list(config, seeds) -> list[int]:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds: expected an integer >= 1, got {seeds!r}")
    return [config.seed + k for k in range(seeds)]


def _notes(config, seeds: list[int], settings: ReproducePreset) -> list[str]:
    """What the report says about how its models were trained and chosen."""
    chosen = {
        "last": "the last epoch's weights",
        "best": "the weights of the epoch with the lowest validation loss",
    }[config.model_selection]
    shape = (
        f"UNet-S loss: w = {config.shape_weight:g} ({config.shape_weighting}), E per "
        f"{config.e_per}, warm-up {config.shape_warmup_epochs} epoch(s)"
    )
    networks = (
        f"Networks: {config.epochs} epochs, batch {config.batch_size}, RMSprop at "
        f"{config.effective_learning_rate:g} ({config.lr_schedule} schedule); evaluated with "
        f"{chosen} (model_selection = {config.model_selection})."
    )
    notes = [
        networks,
        shape + ".",
        f"Training seeds: {', '.join(map(str, seeds))} (each network trained once per seed).",
        "ASMs: fitted on "
        + ("the 45-patch augmented set" if settings.asm_augment else "one patch per vertebra")
        + (" once (seed " + str(seeds[0]) + "), the same models in every seed's report."
           if len(seeds) > 1 else "."),
    ]
    return notes


def _synthetic_version(generator_version: int | None) -> int:
    from vertseg_tf.data.synthetic.generator import GENERATOR_VERSION

    return generator_version or GENERATOR_VERSION


def _settings(preset: str, dataset, generator_version, hard_share, seeds: list[int],
              model_selection: str) -> dict:
    """What makes two reproductions the same: recorded in `reproduce.json`, checked on resume."""
    synthetic = dataset is None
    return {
        "preset": preset,
        "dataset": None if synthetic else str(Path(dataset).resolve()),
        "generator_version": _synthetic_version(generator_version) if synthetic else None,
        "hard_share": hard_share if synthetic else None,
        "seeds": seeds,
        "model_selection": model_selection,
    }


def _checked_state(state_path: Path, given: dict) -> dict:
    """The recorded state of the reproduction in `state_path`'s folder, refused when it was
    started with other settings; a fresh state when there is none."""
    state = _read_state(state_path)
    # A folder written before these settings existed holds one seed with the last epoch.
    legacy = {"seeds": given["seeds"][:1], "model_selection": "last"}
    recorded = {key: state.get(key, legacy.get(key)) for key in given}
    if state and recorded != given:
        raise ConfigError(
            f"{state_path.parent}: holds a reproduction with {recorded}, not {given}; choose "
            "another --out"
        )
    return {**given, "steps": state.get("steps", {})}


def _train_method(config, dataset_dir: Path, run_dir: Path, cache_dir, workers) -> dict:
    """Train (or resume, or restart an unusable) run folder of one method."""
    from vertseg_tf.training import RunFolder, train

    resume = RunFolder(run_dir).config_path.is_file()
    result = train(
        config, dataset_dir, run_dir, resume=resume, overwrite=run_dir.exists() and not resume,
        cache_dir=cache_dir, workers=workers,
    )
    return {"run_dir": str(run_dir), "final": result.get("final", {})}


def reproduce(
    preset: str = "demo",
    out="runs/reproduce",
    *,
    dataset=None,
    cache_dir=None,
    workers: int | None = None,
    generator_version: int | None = None,
    hard_share: float | None = None,
    seeds: int = 1,
    model_selection: str | None = None,
    automatic: bool = False,
    locator=None,
    command_line: str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Run (or finish) the paper's comparison; returns the path of the report.

    With one seed the report is `OUT/report/report.md`. With `seeds > 1` both networks are
    trained once per seed (`OUT/runs/seed-<s>/<method>`; the ASMs once), every seed gets
    its full report in `OUT/seeds/seed-<s>/`, and `OUT/report/seeds.md` (returned) gives the
    mean and spread over the seeds, a per-seed table and the UNet vs UNet-S verdict (see
    `vertseg_tf.evaluation.seeds`).

    Args:
        preset: a `REPRODUCE_PRESETS` name.
        out: the output folder (created; reused when the command runs again).
        dataset: a native dataset folder; None = the embedded synthetic dataset of the
            preset (generated and cached on first use).
        cache_dir: patch cache folder.
        workers: processes that cut patches (`PatchSet.from_dataset`); None = every core.
        generator_version: version of the synthetic generator when `dataset` is None (None:
            the current one, 2; 1 reproduces results made before generator v2).
        hard_share: synthetic data (v2): the exact share of hard vertebrae in the test split
            (e.g. 0.5 gives the demo 60 hard test vertebrae); None = the preset's (0.5 for
            the demo on generator v2, else the generator's usual draw).
        seeds: training seeds per network: the preset's seed and the next `seeds - 1`.
        model_selection: "last" or "best" (see `TrainConfig.model_selection`); None = the
            preset's.
        automatic: add the automatic mode to every report: the locator's centre figures on
            the test split and UNet / UNet-S segmentation from the located centres against
            the true ones (`vertseg_tf.evaluation.automatic`). Its evaluation steps are named
            "evaluate+automatic", so a finished plain evaluation is redone with it.
        locator: the locator of the automatic mode: a run folder, a `.keras` file or None
            (the shipped one).
        command_line: the command quoted in the report.
        log: where progress lines go.

    Raises:
        ConfigError: an unknown preset, a bad option, or `out` holding a run of another
            preset, dataset, seed count or model selection.

    Example:
        >>> report = reproduce("demo", "runs/demo", seeds=3)  # doctest: +SKIP
    """
    from vertseg_tf.training import TRAIN_PRESETS, resolve_dataset

    if preset not in REPRODUCE_PRESETS:
        raise ConfigError(
            f"unknown preset {preset!r}; expected one of {', '.join(REPRODUCE_PRESETS)}"
        )
    settings = REPRODUCE_PRESETS[preset]
    config = TRAIN_PRESETS[settings.train_preset]
    if model_selection is not None:
        config = config.replace(model_selection=model_selection)
    seed_list = _seed_list(config, seeds)
    out = Path(out)
    state_path = out / STATE_FILE
    if hard_share is None and _synthetic_version(generator_version) >= 2:
        hard_share = settings.hard_share  # version 1 has no hard-share option
    given = _settings(preset, dataset, generator_version, hard_share, seed_list,
                      config.model_selection)
    state = _checked_state(state_path, given)
    steps = state["steps"]

    def run_step(name: str, work: Callable[[], dict]) -> None:
        if steps.get(name, {}).get("done"):
            log(f"[{name}] done in an earlier run, skipped")
            return
        log(f"[{name}] running")
        started = time.monotonic()
        record = work()
        steps[name] = {"done": True, "seconds": round(time.monotonic() - started, 1), **record}
        write_json_atomic(state, state_path)
        log(f"[{name}] finished in {steps[name]['seconds']} s")

    out.mkdir(parents=True, exist_ok=True)
    run_step("dataset", lambda: {"path": str(Path(resolve_dataset(
        dataset, config, generator_version=given["generator_version"],
        hard_share=given["hard_share"])).resolve())})
    dataset_dir = Path(steps["dataset"]["path"])
    runs_by_seed = {
        seed: _train_methods(config.replace(seed=seed), settings, out, dataset_dir, cache_dir,
                             workers, run_step, seed_list)
        for seed in seed_list
    }
    notes = _notes(config, seed_list, settings)
    title = f"vertseg-tf reproduction ({preset} preset)"

    evaluate_step = "evaluate+automatic" if automatic else "evaluate"

    def evaluate(runs, report_dir, seed_title) -> dict:
        from vertseg_tf.evaluation.runs import evaluate_runs

        report = evaluate_runs(
            dataset_dir, runs, report_dir, cache_dir=cache_dir, workers=workers, title=seed_title,
            command_line=command_line, progress=log, notes=notes,
            # The report folder belongs to this resumable output folder: a step that was
            # interrupted after writing it but before recording it is redone over it.
            overwrite=True,
            locator=(locator or "pretrained") if automatic else None,
        )
        return {"report": str(report)}

    if len(seed_list) == 1:
        run_step(evaluate_step,
                 lambda: evaluate(runs_by_seed[seed_list[0]], out / "report", title))
        return Path(steps[evaluate_step]["report"])
    for seed, runs in runs_by_seed.items():
        run_step(
            f"{evaluate_step}/seed-{seed}",
            lambda runs=runs, seed=seed: evaluate(
                runs, out / "seeds" / f"seed-{seed}", f"{title}, training seed {seed}"
            ),
        )

    def aggregate() -> dict:
        from vertseg_tf.evaluation.records import read_records_csv
        from vertseg_tf.evaluation.seeds import write_seed_report

        per_seed = {
            seed: read_records_csv(Path(steps[f"{evaluate_step}/seed-{seed}"]["report"]).parent
                                   / "per_vertebra.csv")
            for seed in seed_list
        }
        report = write_seed_report(
            per_seed, out / "report", title=f"{title} over {len(seed_list)} seeds",
            notes=notes, command_line=command_line,
        )
        return {"report": str(report)}

    run_step("aggregate", aggregate)
    return Path(steps["aggregate"]["report"])


def _train_methods(config, settings, out: Path, dataset_dir: Path, cache_dir, workers,
                   run_step, seed_list: list[int]) -> dict[str, Path]:
    """Train (or reuse) every method for `config.seed`; returns report name -> run folder.

    With one seed the runs are `OUT/runs/<method>` and the steps are named by the method;
    with several, `OUT/runs/seed-<s>/<method>` and `<method>/seed-<s>`. The ASMs do not
    depend on the networks' seed: they are fitted once, for the first seed.
    """
    single = len(seed_list) == 1
    runs = {}
    for method, name in METHOD_NAMES.items():
        fit_seed = seed_list[0] if method.startswith("asm") else config.seed
        run_dir = out / "runs" if single else out / "runs" / f"seed-{fit_seed}"
        run_dir = run_dir / method
        runs[name] = run_dir
        step = method if single else f"{method}/seed-{fit_seed}"
        method_config = config.replace(method=method, seed=fit_seed)
        if method.startswith("asm"):
            method_config = method_config.replace(augment=settings.asm_augment)

        run_step(step, lambda c=method_config, r=run_dir: _train_method(
            c, dataset_dir, r, cache_dir, workers))
    return runs
