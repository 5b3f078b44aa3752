"""The automatic mode's figures: the locator's centres, and segmentation from located centres
against segmentation from the true centres on the same test vertebrae.

For every test film the locator finds its centres; each true vertebra is matched to the
nearest found centre, whatever its level, when that lies within half the local spacing
(one found centre per vertebra). Each network then segments the patches cut around the true
centres ("clicked") and around the found ones ("located"). A located patch's vertebra
probabilities are resampled (bilinear) into the true-centre patch of the vertebra it was
matched to, so both segmentations are scored against the same ground truth, in the same
patch pixels, by the report's metrics. A vertebra no found centre matches gets an empty
located mask: Dice 0 and an infinite error, a fit failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from vertseg_tf.errors import ConfigError
from vertseg_tf.evaluation.metrics import FIT_FAILURE_THRESHOLD
from vertseg_tf.evaluation.records import VertebraResult, evaluate_masks
from vertseg_tf.evaluation.report.tables import Table

__all__ = [
    "AUTOMATIC_TABLE",
    "LOCATOR_TABLE",
    "AutomaticEvaluation",
    "automatic_section",
    "automatic_table",
    "dice_gap",
    "evaluate_automatic",
    "evaluate_locator_run",
    "locator_table",
    "match_located",
    "network_predictor",
    "resample_into",
    "summary_lines",
    "write_automatic_report",
]

LOCATOR_TABLE = "locator_centres"
AUTOMATIC_TABLE = "automatic_segmentation"
CLICKED, LOCATED = "clicked", "located"

Predictor = Callable[[np.ndarray], np.ndarray]
"""(N, 64, 64, 1) normalised patches -> (N, 64, 64, 2) class probabilities."""


def locator_table(figures: dict) -> Table:
    """The locator's figures (`vertseg_tf.locate.evaluate.locator_figures`) per level, over
    C3-C7 (when the locator finds more levels) and over all."""
    rows = []
    overall = [("C3-C7", figures["segmented"])] if "segmented" in figures else []
    for label, row in [*figures["levels"].items(), *overall, ("all", figures["all"])]:
        rate = row["identification_rate"]
        rows.append((label, row["n"], row["found"], row["missed"], row["false"],
                     row["identified"], None if rate is None else 100.0 * rate,
                     row["median_mm"], row["mean_mm"], row["p95_mm"]))
    return Table(
        LOCATOR_TABLE,
        "Centres found by the locator: misses, false detections (a level found on a film that "
        "does not annotate it), identification (the nearest true centre is the same level and "
        "closer than half the local spacing) and the centre error in mm of the found levels.",
        ("level", "annotated", "found", "missed", "false", "identified", "identified %",
         "median mm", "mean mm", "95th pct mm"),
        rows,
        (None, None, None, None, None, None, 1, 2, 2, 2),
    )


def match_located(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For every true centre the index of its found centre, or -1.

    A pair is allowed when the found centre lies within half the local spacing of the true
    one (its mean distance to its neighbours in `truth`, spine order); pairs are taken
    nearest first, each centre at most once.

    Args:
        found: (F, 2) found centres; rows of NaN (missing levels) never match.
        truth: (V, 2) true centres in spine order, V >= 2.

    Example:
        >>> truth = np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 20.0]])
        >>> match_located(np.array([[1.0, 11.0], [np.nan, np.nan], [0.0, 4.0]]), truth).tolist()
        [2, 0, -1]
    """
    found, truth = np.asarray(found, np.float64), np.asarray(truth, np.float64)
    steps = np.linalg.norm(np.diff(truth, axis=0), axis=1)
    spacing = np.nanmean(np.stack([np.r_[np.nan, steps], np.r_[steps, np.nan]]), axis=0)
    distances = np.linalg.norm(truth[:, None] - found[None], axis=-1)
    allowed = np.isfinite(distances) & (distances < spacing[:, None] / 2)
    matched = np.full(len(truth), -1)
    used = set()
    for v, f in sorted(zip(*np.nonzero(allowed)), key=lambda pair: distances[pair]):
        if matched[v] < 0 and f not in used:
            matched[v] = f
            used.add(f)
    return matched


def resample_into(probabilities: np.ndarray, source_affine, target_affine) -> np.ndarray:
    """(H, W, C) patch probabilities resampled (bilinear) into another patch of the same image.

    Both affines map image xy to their patch; target pixels outside the source patch get 0.

    Example:
        >>> shift = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> p = np.zeros((4, 4, 1), np.float32); p[1, 1] = 1.0
        >>> float(resample_into(p, shift, shift + [[0, 0, 1.0], [0, 0, 0]])[1, 2, 0])
        1.0
    """
    import cv2

    from vertseg_tf.geometry import invert_affine

    source_inverse = invert_affine(source_affine)
    target = np.asarray(target_affine, np.float64)
    patch_map = np.hstack([target[:, :2] @ source_inverse[:, :2],
                           (target[:, :2] @ source_inverse[:, 2] + target[:, 2])[:, None]])
    height, width = probabilities.shape[:2]
    warped = cv2.warpAffine(np.ascontiguousarray(probabilities, np.float32), patch_map,
                            (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return warped.reshape(probabilities.shape)


@dataclass
class AutomaticEvaluation:
    """What `evaluate_automatic` measured.

    Args:
        figures: the locator's figures (`locator_figures`, with "films", "split" and
            "seconds_per_film").
        records: per network and test vertebra, "NAME (clicked)" and "NAME (located)".
        matched: per network, the (image_id, label) of the vertebrae a found centre matched
            (after that network's refinement of the centres).
        networks: the networks' names, in order.
    """

    figures: dict
    records: list[VertebraResult] = field(default_factory=list)
    matched: dict = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)

    def tables(self, threshold: float = FIT_FAILURE_THRESHOLD) -> list[Table]:
        tables = [locator_table(self.figures)]
        if self.networks:
            tables.append(automatic_table(self, threshold))
        return tables


def _clicked_patches(image, record):
    """The patches around a record's true centres, with their targets."""
    from vertseg_tf.data.patches import extract_patches

    return extract_patches(image, np.array([v.center for v in record.vertebrae], np.float64),
                           [v.contour for v in record.vertebrae], image_id=record.id,
                           labels=[v.label for v in record.vertebrae],
                           conditions=[v.conditions for v in record.vertebrae])


def _located_patches(image, found, predict: Predictor, refine: int):
    """The patches around the found centres and the network's probabilities on them, as
    `Segmenter.segment_located` makes them: scales counting missing levels, the centres
    `refine` times moved to the centroids of their outlines. Returns (patches, probabilities,
    final centres of the found levels); (None, None, no centres) under two found levels, which
    `segment_located` cannot segment without a scale."""
    from vertseg_tf.channels import predicted_mask
    from vertseg_tf.data.patches import extract_patches, patch_to_image
    from vertseg_tf.geometry import largest_outline
    from vertseg_tf.locate.heatmaps import located_scales, refine_segmentation

    present = np.flatnonzero(np.isfinite(found[:, 0]))
    if len(present) < 2:
        return None, None, np.zeros((0, 2))

    def segment_from(centers):
        cut = extract_patches(image, centers[present], scale=located_scales(centers))
        return cut, np.asarray(predict(cut.x()), np.float32)

    def outlines_of(segmentation):
        cut, probabilities = segmentation
        masks = predicted_mask(probabilities)
        outlines = {}
        for j, level in enumerate(present):
            outline = largest_outline(masks[j])[0]
            outlines[level] = patch_to_image(outline, cut.affines[j]) if len(outline) else outline
        return outlines

    (cut, probabilities), found = refine_segmentation(found, segment_from, outlines_of, refine,
                                                      np.shape(image))
    return cut, probabilities, found[present]


def evaluate_automatic(dataset, locator, networks: Mapping[str, Predictor] | None = None,
                       split: str = "test", progress: Callable[[str], None] | None = None,
                       refine: int | None = None) -> AutomaticEvaluation:
    """Locate the centres of every film of `split`, and segment from them with each network.

    Args:
        dataset: a loaded native dataset.
        locator: anything with `locate(image)` returning `LocatedLevel`s in spine order
            (C2-T1, or C3-C7); C3-C7 are segmented.
        networks: name -> predictor; none gives the locator's figures only.
        split: the split to evaluate.
        progress: called with a line per film.
        refine: centre refinements before the located segmentation (default
            `LOCATED_REFINEMENTS`, as `Segmenter.segment_located`).
    """
    from vertseg_tf.channels import predicted_mask
    from vertseg_tf.data.images import read_image
    from vertseg_tf.locate.evaluate import found_centers, locator_figures
    from vertseg_tf.locate.heatmaps import LOCATED_REFINEMENTS, SEGMENTED_LEVELS, level_centers

    networks = dict(networks or {})
    records = dataset.split(split)
    if not records:
        raise ConfigError(f"{dataset.root}: no images in split {split!r}")
    found_all, truth_all, spacing, seconds, levels = [], [], [], 0.0, None
    refine = LOCATED_REFINEMENTS if refine is None else int(refine)
    evaluation = AutomaticEvaluation({}, matched={name: set() for name in networks},
                                     networks=list(networks))
    for position, record in enumerate(records):
        image, _ = read_image(dataset.image_path(record))
        started = time.monotonic()
        located_levels = locator.locate(image)
        seconds += time.monotonic() - started
        levels = [level.label for level in located_levels]
        found_all.append(found_centers(located_levels))
        truth_all.append(level_centers(record, levels))
        spacing.append((record.pixel_spacing_mm or (1.0, 1.0))[0])
        if progress:
            progress(f"{split} film {position + 1}/{len(records)}: {record.id}")
        if not networks or len(record.vertebrae) < 2:
            continue
        clicked = _clicked_patches(image, record)
        truth = np.array([v.center for v in record.vertebrae], np.float64)
        segmented = found_centers(located_levels, SEGMENTED_LEVELS)
        for name, predict in networks.items():
            reference = np.asarray(predict(clicked.x()), np.float32)
            located, automatic, centers = _located_patches(image, segmented, predict, refine)
            matched = match_located(centers, truth)
            evaluation.matched[name] |= {(record.id, clicked.labels[v])
                                         for v in np.flatnonzero(matched >= 0)}
            moved = np.zeros_like(reference)
            for v, f in enumerate(matched):
                if f >= 0:
                    moved[v] = resample_into(automatic[f], located.affines[f],
                                             clicked.affines[v])
            for suffix, probabilities in ((CLICKED, reference), (LOCATED, moved)):
                evaluation.records += evaluate_masks(
                    f"{name} ({suffix})", clicked.masks, clicked.contours,
                    predicted_mask(probabilities).astype(np.uint8), clicked.image_ids,
                    clicked.labels, clicked.conditions)
    evaluation.figures = {
        **locator_figures(np.array(found_all), np.array(truth_all), spacing, levels),
        "films": len(records), "split": split,
        "seconds_per_film": seconds / len(records),
    }
    return evaluation


def automatic_table(evaluation: AutomaticEvaluation,
                    threshold: float = FIT_FAILURE_THRESHOLD) -> Table:
    """Per network: clicked and located segmentation on the matched vertebrae, then on every
    test vertebra (a miss is an empty mask)."""
    from vertseg_tf.evaluation.statistics import summarize

    rows = []
    for name in evaluation.networks:
        matched = evaluation.matched[name]
        for subset, keep in (("matched", matched.__contains__), ("all", lambda key: True)):
            chosen = [r for r in evaluation.records
                      if r.method.startswith(f"{name} (") and keep(r.key)]
            if not chosen:
                continue
            summaries = summarize(chosen, threshold)
            for suffix in (CLICKED, LOCATED):
                summary = summaries.get(f"{name} ({suffix})")
                if summary is None:
                    continue
                metrics = summary.metrics
                rows.append((name, suffix, subset, metrics["dice"].n, metrics["dice"].mean,
                             metrics["dice"].median, metrics["error"].median,
                             metrics["error"].mean, summary.fit_failure_percent))
    return Table(
        AUTOMATIC_TABLE,
        "Segmentation from the true centres (clicked) and from the located ones, on the "
        "vertebrae a located centre matched, then on every test vertebra (a vertebra without "
        "a located centre counts as an empty mask: Dice 0, a fit failure). Errors in patch "
        f"pixels; fit failure: error above {threshold:g} px.",
        ("network", "centres", "vertebrae", "n", "Dice mean", "Dice median", "error median px",
         "error mean px", "fit failure %"),
        rows,
        (None, None, None, None, 4, 4, 3, 3, 1),
    )


def dice_gap(evaluation: AutomaticEvaluation, name: str) -> float | None:
    """Mean located Dice minus mean clicked Dice of one network on the matched vertebrae."""
    values = {}
    for suffix in (CLICKED, LOCATED):
        chosen = [r.dice for r in evaluation.records
                  if r.method == f"{name} ({suffix})" and r.key in evaluation.matched[name]]
        values[suffix] = float(np.mean(chosen)) if chosen else None
    if values[CLICKED] is None or values[LOCATED] is None:
        return None
    return values[LOCATED] - values[CLICKED]


def summary_lines(evaluation: AutomaticEvaluation) -> list[str]:
    """Markdown lines: the locator's headline figures and each network's Dice gap."""
    figures, overall = evaluation.figures, evaluation.figures["all"]
    line = (f"The locator found {overall['found']} of {overall['n']} annotated levels on "
            f"{figures['films']} {figures['split']} films ({overall['missed']} missed, "
            f"{overall['false']} false detections)")
    if overall["found"]:
        line += (f"; identification rate {100.0 * overall['identification_rate']:.1f} %, "
                 f"centre error median {overall['median_mm']:.2f} mm, mean "
                 f"{overall['mean_mm']:.2f} mm, 95th percentile {overall['p95_mm']:.2f} mm")
    lines = [line + f"; {figures['seconds_per_film']:.2f} s per film."]
    for name in evaluation.networks:
        gap = dice_gap(evaluation, name)
        keys = {r.key for r in evaluation.records if r.method == f"{name} ({CLICKED})"}
        if gap is not None:
            matched = len(keys & evaluation.matched[name])
            lines.append(f"{name}: located minus clicked mean Dice {gap:+.4f} on the "
                         f"{matched} of {len(keys)} vertebrae a located centre matched.")
    return lines


def network_predictor(source) -> Predictor:
    """The predictor of a network: a UNet run folder, or "pretrained" (the shipped model).

    Raises:
        ConfigError: an active shape model run (it predicts contours, not probabilities).
        DataError: a run folder without a finished model.
    """
    from vertseg_tf.models_io import PRETRAINED, load_keras_model, load_pretrained_model
    from vertseg_tf.training.run_folder import RunFolder

    if str(source) == PRETRAINED:
        model = load_pretrained_model()
    else:
        folder = RunFolder(source)
        if folder.method().startswith("asm"):
            raise ConfigError(f"{source}: an active shape model run; automatic segmentation "
                              "is evaluated for networks only")
        model = load_keras_model(folder.finished_model_path())
    return lambda patches: model.predict(patches, batch_size=64, verbose=0)


def automatic_section(evaluation: AutomaticEvaluation,
                      threshold: float = FIT_FAILURE_THRESHOLD):
    """The report's "Automatic mode" section: the headline lines, the locator's table and the
    clicked-against-located table, with `locator.json` and `automatic_per_vertebra.csv`."""
    import json

    from vertseg_tf.evaluation.records import records_csv
    from vertseg_tf.evaluation.report import ReportSection

    files = {"locator.json": json.dumps(evaluation.figures, indent=1) + "\n"}
    if evaluation.records:
        files["automatic_per_vertebra.csv"] = records_csv(evaluation.records)
    return ReportSection("Automatic mode", summary_lines(evaluation),
                         evaluation.tables(threshold), files)


def write_automatic_report(evaluation: AutomaticEvaluation, out_dir, *, title: str,
                           command_line: str | None = None, overwrite: bool = False):
    """A report folder with the automatic mode's section only: `report.md`, the tables as
    `.md` and `.csv`, `locator.json` and (with networks) `automatic_per_vertebra.csv`.
    Built under a temporary name and renamed when complete; returns the path of report.md."""
    from vertseg_tf import __version__
    from vertseg_tf.atomic import atomic_dir, require_new_folder, write_text_atomic

    out_dir = require_new_folder(out_dir, overwrite=overwrite)
    section = automatic_section(evaluation)
    lines = [f"# {title}", "", f"Generated by vertseg-tf {__version__}."]
    if command_line:
        lines += ["", "Command:", "", "```bash", command_line, "```"]
    with atomic_dir(out_dir, replace=overwrite) as staging:
        section.write(staging)
        write_text_atomic("\n".join([*lines, *section.markdown()]) + "\n",
                          staging / "report.md")
    return out_dir / "report.md"


def evaluate_locator_run(dataset_dir, locator, out_dir, *, split: str = "test",
                         networks: Mapping[str, Predictor] | None = None,
                         title: str = "vertseg-tf automatic mode",
                         command_line: str | None = None,
                         progress: Callable[[str], None] | None = None,
                         overwrite: bool = False) -> tuple[object, AutomaticEvaluation]:
    """`vertseg-tf eval --locator` without `--model`: the locator's figures on `split` and,
    with `networks`, segmentation from located against true centres; written by
    `write_automatic_report`. Returns (path of report.md, the evaluation).

    Raises:
        ConfigError: an `out_dir` that may not be written, or an empty split.
        DataError: a dataset `vertseg-tf validate` rejects, or a bad locator.
    """
    from vertseg_tf.atomic import require_new_folder
    from vertseg_tf.data.dataset import load_dataset, require_valid_dataset
    from vertseg_tf.locate.locator import Locator

    require_new_folder(out_dir, overwrite=overwrite)
    require_valid_dataset(dataset_dir)
    if not hasattr(locator, "locate"):
        locator = Locator(locator)
    evaluation = evaluate_automatic(load_dataset(dataset_dir), locator, networks, split,
                                    progress)
    report = write_automatic_report(evaluation, out_dir, title=title,
                                    command_line=command_line, overwrite=overwrite)
    return report, evaluation
