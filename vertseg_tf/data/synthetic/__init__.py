"""Synthetic lateral cervical spine radiographs: the embedded default dataset of vertseg-tf.

Importing this package loads nothing heavy: the generator (numpy, OpenCV) loads on first use
of one of its names; the choices the CLI offers live in `options`.
"""

from vertseg_tf.lazy import lazy_attributes

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

__getattr__, __dir__ = lazy_attributes(__name__, {
    **dict.fromkeys(__all__, "vertseg_tf.data.synthetic.generator"),
    **dict.fromkeys(("GENERATOR_VERSION", "GENERATOR_VERSIONS"),
                    "vertseg_tf.data.synthetic.options"),
})
