"""Synthetic lateral cervical spine radiographs: the embedded default dataset of vertseg-tf."""

from vertseg_tf.data.synthetic.generator import (
    GENERATOR_VERSION,
    GENERATOR_VERSIONS,
    PAPER_SPLIT,
    SyntheticImage,
    cache_key,
    default_dataset_path,
    generate,
    synthesize,
)

__all__ = [
    "GENERATOR_VERSION",
    "GENERATOR_VERSIONS",
    "PAPER_SPLIT",
    "SyntheticImage",
    "cache_key",
    "default_dataset_path",
    "generate",
    "synthesize",
]
