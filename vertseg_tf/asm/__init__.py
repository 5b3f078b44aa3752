"""Active shape model baselines on 64x64 vertebra patches: ASM-G, ASM-M, ASM-RF.

numpy / scipy / scikit-learn only (no TensorFlow). Every method has `fit(images, contours)`,
`predict(images)`, `save(path)` and `load(path)`; `load_asm(path)` reads any of them and
`fit_asm` fits one by name (`vertseg_tf.training.fit_asm_run` writes it as a run folder).
"""

from __future__ import annotations

from vertseg_tf.asm.asm_g import ASMG
from vertseg_tf.asm.asm_m import ASMM
from vertseg_tf.asm.asm_rf import ASMRF
from vertseg_tf.asm.base import ActiveShapeModel
from vertseg_tf.asm.pdm import PointDistributionModel, resample_contour
from vertseg_tf.asm.registry import ASM_METHODS, fit_asm, load_asm

__all__ = [
    "ASMG",
    "ASMM",
    "ASMRF",
    "ASM_METHODS",
    "ActiveShapeModel",
    "PointDistributionModel",
    "fit_asm",
    "load_asm",
    "resample_contour",
]
