"""ASM methods by name, loading any saved ASM, and the training-run entry for the CLI."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from vertseg_tf.asm.asm_g import ASMG
from vertseg_tf.asm.asm_m import ASMM
from vertseg_tf.asm.asm_rf import ASMRF
from vertseg_tf.asm.base import ActiveShapeModel
from vertseg_tf.asm.persistence import read_method
from vertseg_tf.atomic import write_json_atomic
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.progress import Progress

__all__ = ["ASM_METHODS", "MODEL_FILE", "fit_asm_run", "load_asm"]

ASM_METHODS: dict[str, type[ActiveShapeModel]] = {"asm-g": ASMG, "asm-m": ASMM, "asm-rf": ASMRF}
MODEL_FILE = "model.json"


def _method_class(method: str) -> type[ActiveShapeModel]:
    try:
        return ASM_METHODS[method]
    except (KeyError, TypeError):
        names = ", ".join(ASM_METHODS)
        raise ConfigError(f"unknown ASM method {method!r}; choose one of {names}") from None


def load_asm(path) -> ActiveShapeModel:
    """Load any saved ASM; the method comes from the model JSON (a run folder works too).

    Args:
        path: a model JSON written by `save`, or a run folder holding `model.json`.

    Returns:
        The fitted `ASMG`, `ASMM` or `ASMRF`.

    Example:
        >>> model = load_asm("runs/asm-g")
        >>> contours = model.predict(patches)
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    method = read_method(path)
    if method not in ASM_METHODS:
        raise DataError(path, f"unknown ASM method {method!r}", field="method")
    return ASM_METHODS[method].load(path)


def fit_asm_run(method: str, images, contours, out_dir, *, seed: int = 0, **options) -> Path:
    """Fit one ASM (progress lines on stderr) and write a run folder: `model.json` + `model.npz`, `config.json`,
    `summary.json` (each written to a temporary name and renamed).

    Args:
        method: "asm-g", "asm-m" or "asm-rf".
        images: (n, 64, 64) training patches.
        contours: n patch-space training contours.
        out_dir: run folder (created if missing).
        seed: random seed (used by ASM-RF; ASM-G and ASM-M are deterministic).
        **options: constructor arguments of the method's class (e.g. `n_landmarks=40`).

    Returns:
        The path of the model JSON, loadable with `load_asm`.

    Example:
        >>> fit_asm_run("asm-rf", patches, contours, "runs/asm-rf", seed=1, n_trees=20)
        PosixPath('runs/asm-rf/model.json')
    """
    cls = _method_class(method)
    if cls is ASMRF:
        options = {"seed": seed, **options}
    try:
        model = cls(**options)
    except TypeError as error:
        raise ConfigError(f"{method}: {error}") from None
    out_dir = Path(out_dir)
    print(f"{method}: fitting on {len(images)} patches", file=sys.stderr, flush=True)
    started = time.perf_counter()
    model.fit(images, contours, progress=Progress(method, unit="forests", interval_s=2.0))
    fit_seconds = time.perf_counter() - started
    print(f"{method}: fitted in {fit_seconds:.1f} s", file=sys.stderr, flush=True)
    model_path = model.save(out_dir / MODEL_FILE)
    write_json_atomic(
        {"method": method, "seed": seed, "options": model.get_config()}, out_dir / "config.json"
    )
    summary = {
        "method": method,
        "model": model_path.name,
        "n_training_patches": len(images),
        "n_landmarks": model.pdm.n_landmarks,
        "n_shape_modes": model.pdm.n_modes,
        "fit_seconds": round(fit_seconds, 3),
    }
    write_json_atomic(summary, out_dir / "summary.json")
    return model_path
