"""ASM methods by name: fitting one by name and loading any saved ASM."""

from __future__ import annotations

import time
from pathlib import Path

from vertseg_tf.asm.asm_g import ASMG
from vertseg_tf.asm.asm_m import ASMM
from vertseg_tf.asm.asm_rf import ASMRF
from vertseg_tf.asm.base import ActiveShapeModel
from vertseg_tf.asm.persistence import read_method
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.progress import Progress, write

__all__ = ["ASM_METHODS", "MODEL_FILE", "fit_asm", "load_asm"]

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

    Example (needs a fitted run folder, so not run as a doctest):
        >>> model = load_asm("runs/asm-g")  # doctest: +SKIP
        >>> contours = model.predict(patches)  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    method = read_method(path)
    if method not in ASM_METHODS:
        raise DataError(path, f"unknown ASM method {method!r}", field="method")
    return ASM_METHODS[method].load(path)


def fit_asm(
    method: str, images, contours, *, seed: int = 0, **options
) -> tuple[ActiveShapeModel, float]:
    """Fit one ASM by name, with progress lines on stderr.

    Writing a run folder around it is `vertseg_tf.training.fit_asm_run`'s job.

    Args:
        method: "asm-g", "asm-m" or "asm-rf".
        images: (n, 64, 64) training patches.
        contours: n patch-space training contours.
        seed: random seed (used by ASM-RF; ASM-G and ASM-M are deterministic).
        **options: constructor arguments of the method's class (e.g. `n_landmarks=40`).

    Returns:
        `(model, fit_seconds)`: the fitted model and the wall time of its `fit`.

    Raises:
        ConfigError: an unknown method or option.

    Example:
        >>> model, seconds = fit_asm("asm-rf", patches, contours, seed=1)  # doctest: +SKIP
    """
    cls = _method_class(method)
    if cls is ASMRF:
        options = {"seed": seed, **options}
    try:
        model = cls(**options)
    except TypeError as error:
        raise ConfigError(f"{method}: {error}") from None
    write(f"{method}: fitting on {len(images)} patches")
    started = time.perf_counter()
    unit = "forests" if method == "asm-rf" else "patches"  # ASM-RF counts forests, G and M patches
    model.fit(images, contours, progress=Progress(method, unit=unit, interval_s=2.0))
    fit_seconds = time.perf_counter() - started
    write(f"{method}: fitted in {fit_seconds:.1f} s")
    return model, fit_seconds
