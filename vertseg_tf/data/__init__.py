"""Data: image reading, the native dataset format, importers, synthetic data, patches."""

from vertseg_tf.data.dataset import (
    Dataset,
    ImageRecord,
    Problem,
    VertebraRecord,
    load_dataset,
    save_dataset,
    validate_dataset,
)
from vertseg_tf.data.images import read_image, write_image

__all__ = [
    "Dataset",
    "ImageRecord",
    "Problem",
    "VertebraRecord",
    "load_dataset",
    "read_image",
    "save_dataset",
    "validate_dataset",
    "write_image",
]
