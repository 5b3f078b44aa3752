"""Data: image reading, the native dataset format, importers, synthetic data, patches."""

from vertseg_tf.data.dataset import (
    Dataset,
    ImageRecord,
    VertebraRecord,
    load_dataset,
    save_dataset,
)
from vertseg_tf.data.images import read_image, write_image

__all__ = [
    "Dataset",
    "ImageRecord",
    "VertebraRecord",
    "load_dataset",
    "read_image",
    "save_dataset",
    "write_image",
]
