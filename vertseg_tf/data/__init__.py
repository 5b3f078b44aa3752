"""Data: image reading, the native dataset format, importers, synthetic data, patches.

Importing this package loads nothing heavy: each name imports its module (numpy, OpenCV) on
first use, so the CLI's parser can read `vertseg_tf.data.options` cheaply.
"""

from vertseg_tf.lazy import lazy_attributes

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

_DATASET = "vertseg_tf.data.dataset"
_IMAGES = "vertseg_tf.data.images"
__getattr__, __dir__ = lazy_attributes(__name__, {
    **{name: _DATASET for name in __all__ if name not in ("read_image", "write_image")},
    "read_image": _IMAGES,
    "write_image": _IMAGES,
})
