"""Per-vertebra results: one `VertebraResult` per method and test vertebra, and `per_vertebra.csv`.

A list of `VertebraResult` is the one input of the statistics and the report. Methods are
compared on the same vertebrae by pairing their results on (image_id, label).
`evaluate_patch_set` scores every method's predictions on one test patch set and returns the
records with the `QualitativeSamples` the report's Figures 8 and 9 draw from.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import write_text_atomic
from vertseg_tf.data.dataset import HARD_CONDITIONS
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.evaluation.metrics import (
    contour_to_mask,
    dice,
    pixel_accuracy,
    point_to_curve_error,
)

__all__ = [
    "CSV_COLUMNS",
    "PredictionSet",
    "QualitativeSamples",
    "VertebraResult",
    "evaluate_masks",
    "evaluate_patch_set",
    "read_records_csv",
    "records_csv",
    "write_records_csv",
]

CSV_COLUMNS = (
    "method",
    "image_id",
    "label",
    "conditions",
    "hard",
    "pixel_accuracy",
    "dice",
    "error",
)


@dataclass(frozen=True)
class VertebraResult:
    """The metrics of one method on one test vertebra.

    Args:
        method: method name, e.g. "UNet-S" or "ASM-G".
        image_id: id of the radiograph the vertebra is in.
        label: spine level, e.g. "C4".
        conditions: clinical conditions of the vertebra (from the dataset).
        pixel_accuracy: Eq. 7, percent.
        dice: Eq. 6, in [0, 1].
        error: point-to-curve error in patch pixels; `inf` for an empty prediction.

    Example:
        >>> VertebraResult("UNet", "img_0001", "C3", ("implant",), 97.5, 0.95, 0.8).hard
        True
    """

    method: str
    image_id: str
    label: str
    conditions: tuple[str, ...]
    pixel_accuracy: float
    dice: float
    error: float

    @property
    def hard(self) -> bool:
        """Whether the vertebra has any of `HARD_CONDITIONS` (the paper's Table 3 subset)."""
        return any(c in HARD_CONDITIONS for c in self.conditions)

    @property
    def key(self) -> tuple[str, str]:
        """(image_id, label): identifies the vertebra across methods."""
        return (self.image_id, self.label)


def evaluate_masks(
    method: str,
    gt_masks,
    gt_contours: Sequence,
    pred_masks,
    image_ids: Sequence[str],
    labels: Sequence[str],
    conditions: Sequence[Sequence[str]],
) -> list[VertebraResult]:
    """Score one method's predicted masks against the ground truth, vertebra by vertebra.

    Args:
        method: the method's name.
        gt_masks: (N, H, W) ground-truth masks.
        gt_contours: N ground-truth polygons, each (K, 2) in patch pixels.
        pred_masks: (N, H, W) predicted masks (for an ASM, its contours through
            `contour_to_mask`).
        image_ids: N image ids.
        labels: N vertebra labels.
        conditions: N lists of clinical conditions.

    Returns:
        N `VertebraResult`, in input order.

    Example:
        >>> records = evaluate_masks(  # doctest: +SKIP
        ...     "UNet", patches.masks, patches.contours, predicted,
        ...     patches.image_ids, patches.labels, patches.conditions)
    """
    gt_masks = np.asarray(gt_masks)
    pred_masks = np.asarray(pred_masks)
    if gt_masks.ndim != 3:
        raise ConfigError(f"gt_masks must be (N, H, W), got shape {gt_masks.shape}")
    n = len(gt_masks)
    lengths = {len(gt_contours), len(pred_masks), len(image_ids), len(labels), len(conditions)}
    if lengths != {n}:
        raise ConfigError(
            f"evaluate_masks({method!r}): {n} ground-truth masks but inputs of lengths "
            f"{sorted(lengths)}"
        )
    accuracies = pixel_accuracy(gt_masks, pred_masks)
    dices = dice(gt_masks, pred_masks)
    return [
        VertebraResult(
            method=method,
            image_id=str(image_ids[i]),
            label=str(labels[i]),
            conditions=tuple(str(c) for c in conditions[i]),
            pixel_accuracy=float(accuracies[i]),
            dice=float(dices[i]),
            error=point_to_curve_error(pred_masks[i], gt_contours[i]),
        )
        for i in range(n)
    ]


@dataclass(frozen=True)
class PredictionSet:
    """One method's predicted masks on the shared test patches.

    Args:
        method: the method's name (as in the records).
        masks: (N, H, W) predicted masks, in the order of `QualitativeSamples`' patches.
    """

    method: str
    masks: np.ndarray


@dataclass(frozen=True)
class QualitativeSamples:
    """The test patches and every method's masks, for the qualitative Figures 8 and 9.

    Args:
        images: (N, H, W) patch images.
        gt_masks: (N, H, W) ground-truth masks.
        gt_contours: N ground-truth polygons, (K, 2) xy in patch pixels.
        image_ids: N image ids.
        labels: N vertebra labels.
        conditions: N lists of clinical conditions.
        predictions: one `PredictionSet` per method.

    Example:
        >>> samples = QualitativeSamples(  # doctest: +SKIP
        ...     patches.images, patches.masks, patches.contours,
        ...     patches.image_ids, patches.labels, patches.conditions,
        ...     [PredictionSet("UNet-S", unet_s_masks)])
    """

    images: np.ndarray
    gt_masks: np.ndarray
    gt_contours: Sequence[np.ndarray]
    image_ids: Sequence[str]
    labels: Sequence[str]
    conditions: Sequence[Sequence[str]]
    predictions: Sequence[PredictionSet] = field(default_factory=tuple)

    def __post_init__(self):
        n = len(self.images)
        lengths = {
            len(self.gt_masks),
            len(self.gt_contours),
            len(self.image_ids),
            len(self.labels),
            len(self.conditions),
            *(len(p.masks) for p in self.predictions),
        }
        if lengths != {n}:
            raise ConfigError(
                f"QualitativeSamples: {n} images but inputs of lengths {sorted(lengths)}"
            )


def evaluate_patch_set(
    patches,
    mask_predictions: Mapping[str, np.ndarray] | None = None,
    contour_predictions: Mapping[str, Sequence[np.ndarray]] | None = None,
) -> tuple[list[VertebraResult], QualitativeSamples]:
    """Score several methods on one set of test patches: the `eval` command's core.

    Networks give masks; ASMs give patch-space contours, rasterised with `contour_to_mask`
    like the ground truth.

    Args:
        patches: the test patches: anything with `images`, `masks`, `contours`, `image_ids`,
            `labels` and `conditions` (a `vertseg_tf.data.patches.PatchSet`).
        mask_predictions: method -> (N, H, W) predicted masks.
        contour_predictions: method -> N predicted (K, 2) contours.

    Returns:
        The per-vertebra results of every method, and the `QualitativeSamples` for the
        report's Figures 8 and 9.

    Example:
        >>> records, samples = evaluate_patch_set(  # doctest: +SKIP
        ...     test, {"UNet-S": masks}, {"ASM-G": contours})
        >>> write_report(  # doctest: +SKIP
        ...     records, "runs/report", title="Evaluation", samples=samples)
    """
    gt_masks = np.asarray(patches.masks)
    shape = gt_masks.shape[1:]
    masks = {m: np.asarray(v) for m, v in (mask_predictions or {}).items()}
    for method, contours in (contour_predictions or {}).items():
        if method in masks:
            raise ConfigError(f"method {method!r} given both as masks and as contours")
        masks[method] = np.stack([contour_to_mask(c, shape) for c in contours])
    if not masks:
        raise ConfigError("evaluate_patch_set: no predictions given")
    records = []
    for method, predicted in masks.items():
        records += evaluate_masks(
            method,
            gt_masks,
            patches.contours,
            predicted,
            patches.image_ids,
            patches.labels,
            patches.conditions,
        )
    samples = QualitativeSamples(
        np.asarray(patches.images),
        gt_masks,
        patches.contours,
        patches.image_ids,
        patches.labels,
        patches.conditions,
        [PredictionSet(m, v) for m, v in masks.items()],
    )
    return records, samples


def records_csv(records: Sequence[VertebraResult]) -> str:
    """The text of `per_vertebra.csv`: conditions joined by ";", an infinite error as `inf`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            [
                r.method,
                r.image_id,
                r.label,
                ";".join(r.conditions),
                int(r.hard),
                repr(r.pixel_accuracy),
                repr(r.dice),
                repr(r.error),
            ]
        )
    return buffer.getvalue()


def write_records_csv(records: Sequence[VertebraResult], path) -> Path:
    """Write `per_vertebra.csv` (`records_csv`) atomically (temporary file, then rename).

    Args:
        records: the results to write.
        path: the CSV file to write.

    Returns:
        The path written.

    Example:
        >>> write_records_csv(records, "report/per_vertebra.csv")  # doctest: +SKIP
    """
    path = Path(path)
    write_text_atomic(records_csv(records), path)
    return path


def read_records_csv(path) -> list[VertebraResult]:
    """Read a `per_vertebra.csv` written by `write_records_csv`.

    Args:
        path: the CSV file.

    Returns:
        The results, in file order.

    Example:
        >>> records = read_records_csv("report/per_vertebra.csv")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(path, f"cannot read: {error.strerror or error}") from None
    rows = csv.DictReader(io.StringIO(text))
    missing = set(CSV_COLUMNS) - set(rows.fieldnames or ())
    if missing:
        raise DataError(path, f"missing columns {sorted(missing)}", field="header")
    records = []
    for line, row in enumerate(rows, start=2):
        values = {}
        for name in ("pixel_accuracy", "dice", "error"):
            try:
                values[name] = float(row[name])
            except (TypeError, ValueError):
                raise DataError(path, f"not a number: {row[name]!r}", field=f"line {line}.{name}")
            if math.isnan(values[name]):
                raise DataError(path, "NaN", field=f"line {line}.{name}")
        records.append(
            VertebraResult(
                method=row["method"],
                image_id=row["image_id"],
                label=row["label"],
                conditions=tuple(c for c in row["conditions"].split(";") if c),
                **values,
            )
        )
    return records
