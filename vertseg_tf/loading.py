"""One way to load any model vertseg-tf writes: `vertseg_tf.load_model(path_or_name)`.

A `.keras` file, a training run folder (its `model.keras`), a SavedModel folder or a TF Serving
base folder (its highest version), a `.tflite` file, or the name `"pretrained"` (the model
shipped with the package) all give the same kind of object: a `Segmenter`, whose
`predict_patches` maps normalised (N, 64, 64, 1) patches to class probabilities and whose
`segment` outlines the vertebrae of a radiograph; `keras_model` is the Keras model for the
Keras forms (None for SavedModel and TFLite).
"""

from __future__ import annotations

from vertseg_tf.models_io import PRETRAINED, load_pretrained_model, unregistered_class_hint

__all__ = ["PRETRAINED", "load_model", "load_pretrained_model", "unregistered_class_hint"]




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
