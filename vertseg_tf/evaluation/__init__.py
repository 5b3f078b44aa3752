"""Evaluation: the paper's metrics, per-vertebra records, statistics, tables, figures, report.

Importing this package (metrics, records) needs numpy and scipy only. The report package
loads matplotlib (Agg) when first imported, so import `vertseg_tf.evaluation.report` only
where figures are needed; `vertseg_tf.evaluation.runs` loads the run folders' models, Keras
(and TensorFlow) for a UNet run, when it predicts.
"""

from vertseg_tf.evaluation.metrics import (
    contour_to_mask,
    dice,
    fit_failure_rate,
    pixel_accuracy,
    point_to_curve_error,
)
from vertseg_tf.evaluation.records import (
    PredictionSet,
    QualitativeSamples,
    VertebraResult,
    evaluate_masks,
    evaluate_patch_set,
    read_records_csv,
    write_records_csv,
)

__all__ = [
    "PredictionSet",
    "QualitativeSamples",
    "VertebraResult",
    "contour_to_mask",
    "dice",
    "evaluate_masks",
    "evaluate_patch_set",
    "fit_failure_rate",
    "pixel_accuracy",
    "point_to_curve_error",
    "read_records_csv",
    "write_records_csv",
]
