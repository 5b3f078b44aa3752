"""Synthetic lateral cervical spine radiographs: the embedded default dataset of vertseg-tf."""

from vertseg_tf.data.synthetic.generator import (
    PAPER_SPLIT,
    SyntheticImage,
    default_dataset_path,
    generate,
    synthesize,
)

__all__ = [
    "PAPER_SPLIT",
    "SyntheticImage",
    "default_dataset_path",
    "generate",
    "synthesize",
]
