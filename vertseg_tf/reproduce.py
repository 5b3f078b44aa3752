"""`vertseg-tf reproduce`: the paper's whole comparison in one resumable command.

dataset (synthetic when none is given) -> patch sets -> UNet, UNet-S, ASM-G, ASM-M, ASM-RF ->
evaluation on the test split -> report. Every finished step is recorded in
`OUT/reproduce.json` and skipped when the command runs again; an unfinished training step
resumes from its last checkpoint.

Layout of OUT: `runs/<method>/` (one run folder per method, as `vertseg-tf train` writes it),
`report/` (see `vertseg_tf.evaluation.report`), `reproduce.json` (steps, times, settings).
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
    """

    train_preset: str
    asm_augment: bool
    summary: str


REPRODUCE_PRESETS = {
    "smoke": ReproducePreset("smoke", True, "seconds to minutes; tiny models and data, for tests"),
    "demo": ReproducePreset(
        "demo",
        False,
        "about 15 minutes on 2 CPU cores: demo UNet (408,050 parameters) on 40 small images",
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


def _settings(preset: str, dataset, generator_version, hard_share) -> dict:
    """What makes two reproductions the same: recorded in `reproduce.json`, checked on resume."""
    from vertseg_tf.data.synthetic.generator import GENERATOR_VERSION

    synthetic = dataset is None
    return {
        "preset": preset,
        "dataset": None if synthetic else str(Path(dataset).resolve()),
        "generator_version": (generator_version or GENERATOR_VERSION) if synthetic else None,
        "hard_share": hard_share if synthetic else None,
    }


def _checked_state(state_path: Path, given: dict) -> dict:
    """The recorded state of the reproduction in `state_path`'s folder, refused when it was
    started with other settings; a fresh state when there is none."""
    state = _read_state(state_path)
    recorded = {key: state.get(key) for key in given}
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
    command_line: str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Run (or finish) the paper's comparison; returns the path of the report's `report.md`.

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
            (e.g. 0.5 gives the demo 60 hard test vertebrae), or None for the usual draw.
        command_line: the command quoted in the report.
        log: where progress lines go.

    Raises:
        ConfigError: an unknown preset, or `out` holding a run of another preset or dataset.

    Example:
        >>> report = reproduce("demo", "runs/demo")  # doctest: +SKIP
    """
    from vertseg_tf.training import TRAIN_PRESETS, resolve_dataset

    if preset not in REPRODUCE_PRESETS:
        raise ConfigError(
            f"unknown preset {preset!r}; expected one of {', '.join(REPRODUCE_PRESETS)}"
        )
    settings = REPRODUCE_PRESETS[preset]
    config = TRAIN_PRESETS[settings.train_preset]
    out = Path(out)
    state_path = out / STATE_FILE
    given = _settings(preset, dataset, generator_version, hard_share)
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

    runs = {}
    for method, name in METHOD_NAMES.items():
        run_dir = out / "runs" / method
        runs[name] = run_dir
        method_config = config.replace(method=method)
        if method.startswith("asm"):
            method_config = method_config.replace(augment=settings.asm_augment)

        run_step(method, lambda c=method_config, r=run_dir: _train_method(
            c, dataset_dir, r, cache_dir, workers))

    def evaluate() -> dict:
        from vertseg_tf.evaluation.runs import evaluate_runs

        report = evaluate_runs(
            dataset_dir,
            runs,
            out / "report",
            cache_dir=cache_dir,
            workers=workers,
            title=f"vertseg-tf reproduction ({preset} preset)",
            command_line=command_line,
            progress=log,
            # The report folder belongs to this resumable output folder: a step that was
            # interrupted after writing it but before recording it is redone over it.
            overwrite=True,
        )
        return {"report": str(report)}

    run_step("evaluate", evaluate)
    return Path(steps["evaluate"]["report"])
