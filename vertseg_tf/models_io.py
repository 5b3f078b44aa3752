"""Loading the Keras models vertseg-tf saves (`.keras` files); the model side of the package.

Evaluation and deployment both load models through here, so neither imports the other for it.
"""

from __future__ import annotations

from pathlib import Path

from vertseg_tf.errors import DataError

__all__ = ["load_keras_model"]


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

    import vertseg_tf.model  # noqa: F401  (registers the UNet class for deserialisation)

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "model file not found")
    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise DataError(
            path, f"cannot load the Keras model ({type(error).__name__}: {error})"
        ) from None
