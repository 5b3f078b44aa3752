"""One way to load any model vertseg-tf writes: `vertseg_tf.load_model(path_or_name)`.

A `.keras` file, a training run folder (its `model.keras`), a SavedModel folder or a TF Serving
base folder (its highest version), a `.tflite` file, or the name `"pretrained"` (the model
shipped with the package) all give the same kind of object: a `Segmenter`, whose
`predict_patches` maps normalised (N, 64, 64, 1) patches to class probabilities and whose
`segment` outlines the vertebrae of a radiograph; `keras_model` is the Keras model for the
Keras forms (None for SavedModel and TFLite).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from vertseg_tf import __version__
from vertseg_tf.errors import ConfigError

__all__ = ["PRETRAINED", "load_model", "load_pretrained_model", "unregistered_class_hint"]

PRETRAINED = "pretrained"
"""The name of the model shipped with the package, for `load_model` and `UNet.from_preset`."""

_MISSING_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")
_MODULE = re.compile(r"'module': '([\w.]+)'")


def load_model(path_or_name, *, num_threads: int | None = None):
    """Load a model in any form vertseg-tf writes, ready to predict and segment.

    Args:
        path_or_name: a `.keras` file, a run folder, a SavedModel or TF Serving base folder,
            a `.tflite` file, or `"pretrained"`.
        num_threads: CPU threads of a TFLite interpreter (default: LiteRT's choice).

    Returns:
        A `vertseg_tf.deploy.Segmenter`: `predict_patches(patches)`, `segment(image, centers)`,
        `kind` ("keras", "saved_model" or "tflite") and `keras_model` (the `keras.Model` for
        the Keras forms, else None).

    Raises:
        DataError: a missing file, an unknown kind of file, or one that cannot be loaded.
        ConfigError: `"pretrained"` in an installation without the shipped model.

    Example:
        >>> model = load_model("runs/demo/unet-s")  # doctest: +SKIP
        >>> model.predict_patches(patches).shape  # doctest: +SKIP
        (5, 64, 64, 2)
        >>> model.keras_model.count_params()  # doctest: +SKIP
        408050
    """
    from vertseg_tf.deploy.inference import Segmenter

    if isinstance(path_or_name, str) and path_or_name == PRETRAINED:
        segmenter = Segmenter(load_pretrained_model())
        segmenter.source = PRETRAINED
        return segmenter
    return Segmenter(path_or_name, num_threads=num_threads)


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
