"""The UNet shipped with vertseg-tf, trained on synthetic radiographs only.

`load_pretrained()` returns the Keras model stored beside this file (`MODEL_FILE`);
`pretrained_record()` returns the JSON record written with it (`RECORD_FILE`: the recipe,
data, seed, commit, epochs, training time, and the figures of both candidate networks on a
validation split and of the shipped one on a test split). `vertseg-tf segment` and
`vertseg_tf.deploy.Segmenter()` use this model when no model is given, and
`vertseg-tf export --model pretrained` exports it. The files are made by
`python -m vertseg_tf.build_pretrained` (see `training/pretrained.toml`).

The model was trained on synthetic data only: check it on your own films before you rely on
it, and fine-tune or train on annotated real films for research use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vertseg_tf.errors import DataError

__all__ = [
    "LOCATOR_FILE",
    "LOCATOR_RECORD_FILE",
    "MODEL_FILE",
    "PRETRAINED_DIR",
    "RECORD_FILE",
    "load_pretrained",
    "load_pretrained_locator",
    "pretrained_record",
]

PRETRAINED_DIR = Path(__file__).resolve().parent
MODEL_FILE = "vertseg_pretrained.keras"
RECORD_FILE = "vertseg_pretrained.json"
LOCATOR_FILE = "vertseg_locator.keras"
LOCATOR_RECORD_FILE = "vertseg_locator.json"


def _folder(directory) -> Path:
    return PRETRAINED_DIR if directory is None else Path(directory)


def load_pretrained(directory=None):
    """The shipped pretrained UNet as an uncompiled `keras.Model`.

    Args:
        directory: where the model file lies; default the package's `PRETRAINED_DIR`
            (tests and `vertseg_tf.build_pretrained` pass another folder).

    Returns:
        The `keras.Model` (a `vertseg_tf.model.UNet`), mapping (N, 64, 64, 1) normalised
        patches to (N, 64, 64, 2) class probabilities.

    Raises:
        DataError: the model file is missing (an installation without package data) or
            cannot be loaded.

    Example:
        >>> import vertseg_tf.pretrained
        >>> model = vertseg_tf.pretrained.load_pretrained()  # doctest: +SKIP
        >>> model.output_shape  # doctest: +SKIP
        (None, 64, 64, 2)
    """
    path = _folder(directory) / MODEL_FILE
    if not path.is_file():
        raise DataError(path, "the pretrained model is not installed (reinstall vertseg-tf, or "
                              "pass a model)")
    return _load_shipped(path, "the pretrained model")


def _load_shipped(path: Path, what: str):
    """Load a shipped `.keras` file uncompiled, every vertseg_tf Keras object registered."""
    import zipfile

    import keras

    from vertseg_tf import register_keras_objects

    register_keras_objects()
    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise DataError(path, f"cannot load {what} ({type(error).__name__}: {error})") from None


def pretrained_record(directory=None) -> dict[str, Any]:
    """The JSON record of how the shipped model was trained and how it scored.

    Raises:
        DataError: the record is missing or not valid JSON.

    Example:
        >>> pretrained_record()["shipped"]  # doctest: +SKIP
        'unet-s'
    """
    path = _folder(directory) / RECORD_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise DataError(path, "the pretrained model's record is not installed") from None
    except ValueError as error:
        raise DataError(path, f"not valid JSON ({error})") from None


def load_pretrained_locator(directory=None):
    """The shipped locator (`vertseg_tf.locate`) as an uncompiled `keras.Model`, trained on
    synthetic v2 films only; its record (recipe, data, figures) is `LOCATOR_RECORD_FILE`.

    Raises:
        DataError: no locator is installed beside the pretrained segmenter, or it cannot be
            loaded.

    Example:
        >>> model = load_pretrained_locator()  # doctest: +SKIP
    """
    path = _folder(directory) / LOCATOR_FILE
    if not path.is_file():
        raise DataError(path, "no pretrained locator is installed; give the centres or a "
                              "locator (--locator RUN_OR_FILE)")
    return _load_shipped(path, "the pretrained locator")
