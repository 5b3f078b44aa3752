"""Loading the Keras models vertseg-tf saves (`.keras` files); the model side of the package.

Evaluation and deployment both load models through here, so neither imports the other for it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from vertseg_tf import __version__
from vertseg_tf.errors import ConfigError, DataError

__all__ = ["PRETRAINED", "load_keras_model", "load_pretrained_model", "unregistered_class_hint"]

PRETRAINED = "pretrained"
"""The name of the model shipped with the package, for `load_model` and `UNet.from_preset`."""

_MISSING_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")
_MODULE = re.compile(r"'module': '([\w.]+)'")


def load_keras_model(path):
    """Load a `.keras` file saved by vertseg-tf, uncompiled.

    Args:
        path: the `.keras` file.

    Returns:
        The `keras.Model` (a `vertseg_tf.model.UNet` for models vertseg-tf built).

    Raises:
        DataError: a missing, truncated or foreign file.

    Example:
        >>> model = load_keras_model("runs/demo/model.keras")  # doctest: +SKIP
    """
    import zipfile

    import keras

    from vertseg_tf import register_keras_objects

    register_keras_objects()
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "model file not found")
    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        hint = unregistered_class_hint(error, path)
        if hint:
            raise DataError(path, hint) from None
        raise DataError(
            path, f"cannot load the Keras model ({type(error).__name__}: {error})"
        ) from None


def unregistered_class_hint(error: BaseException, path: Path | str) -> str | None:
    """What to do about Keras's "Could not locate class" for a file vertseg-tf saved.

    Returns the sentence naming the import that registers the class, or None when the error
    is another one or the class is not vertseg-tf's.

    Example:
        >>> error = TypeError("Could not locate class 'UNet'. ... Full object config: "
        ...                   "{'module': 'vertseg_tf.model', 'class_name': 'UNet'}")
        >>> hint = unregistered_class_hint(error, "unet.keras")
        >>> "run `import vertseg_tf.model` before loading it" in hint
        True
    """
    text = str(error)
    missing = _MISSING_CLASS.search(text)
    module = _MODULE.search(text)
    if not missing or not module or module.group(1).split(".")[0] != "vertseg_tf":
        return None
    name, module = missing.group(1), module.group(1)
    if not _module_exists(module):
        return (
            f"{path} needs the vertseg-tf class {name!r} from {module}, which this vertseg-tf "
            f"({__version__}) does not have: it was saved by another version"
        )
    return (
        f"{path} needs the vertseg-tf class {name!r}, which is not registered: "
        f"run `import {module}` before loading it, or load it with "
        "`vertseg_tf.load_model`, which registers every vertseg-tf class"
    )


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def load_pretrained_model():
    """The Keras model shipped with the package (`vertseg_tf.pretrained.load_pretrained`).

    Raises:
        ConfigError: this installation has no `vertseg_tf.pretrained`.
    """
    try:
        from vertseg_tf.pretrained import load_pretrained
    except ModuleNotFoundError as error:
        if error.name != "vertseg_tf.pretrained":
            raise
        raise ConfigError(
            "this vertseg-tf installation ships no pretrained model (no vertseg_tf.pretrained)"
        ) from None
    return load_pretrained()
