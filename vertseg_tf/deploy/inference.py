"""Semi-automatic segmentation of whole radiographs from clicked vertebra centres.

`Segmenter` loads a trained network in any of the forms vertseg-tf writes (a `.keras` file, a
SavedModel folder from `vertseg-tf export`, a `.tflite` file), cuts one test patch per clicked
centre exactly as training did (`vertseg_tf.data.patches.extract_patches` with `TEST_ALPHA` and
no rotation), predicts all patches in one batch and maps every outline back to the image:
largest connected component of the patch mask -> marching-squares contour at level 0.5 ->
inverse patch affine.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import atomic_dir, require_new_folder
from vertseg_tf.channels import predicted_mask
from vertseg_tf.data.dataset import (
    SPINE_LEVELS,
    Dataset,
    ImageRecord,
    VertebraRecord,
    require_valid_dataset,
    save_dataset,
)
from vertseg_tf.data.patches import PATCH_SIZE, TEST_ALPHA, extract_patches, patch_to_image
from vertseg_tf.deploy.measurements import (
    draw_measurements,
    measure_segmentation,
    write_segmentation_measurements,
)
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.geometry import inside_image, largest_outline, polygon_area
from vertseg_tf.locate.heatmaps import LOCATED_REFINEMENTS
from vertseg_tf.models_io import load_keras_model
from vertseg_tf.startup import quiet_native_logs
from vertseg_tf.training.run_folder import RunFolder

__all__ = [
    "AREA_RATIO_RANGE",
    "PROBABILITIES_OUTPUT",
    "Segmenter",
    "VertebraSegmentation",
    "check_patch_batch",
    "default_labels",
    "draw_located",
    "draw_overlay",
    "latest_version",
    "parse_centers",
    "read_centers_file",
    "segment_to_dataset",
    "segmentation_record",
    "tflite_predictor",
]

PROBABILITIES_OUTPUT = "probabilities"
"""Output name of the SavedModel's `serving_default` signature (and of the Keras model)."""

AREA_RATIO_RANGE = (0.5, 2.0)
"""A vertebra whose area lies outside this multiple of its neighbours' median is flagged
(neighbours: the up to four nearest non-empty vertebrae, two above and two below)."""


@dataclass
class VertebraSegmentation:
    """The segmentation of one vertebra of a radiograph.

    Args:
        label: the vertebra's label ("C3", ... or "0", "1", ... when none was given).
        center: (2,) the clicked centre, image xy.
        contour: (K, 2) outline in image xy (pixels), closed, first point not repeated;
            (0, 2) when the patch mask is empty.
        patch_mask: (64, 64) uint8 predicted mask (argmax of the probabilities, every
            component).
        probabilities: (64, 64) float32 probability of the vertebra class.
        affine: (2, 3) image -> patch map of the patch.
        area_px: area enclosed by `contour`, in image pixels squared.
        components: number of connected components (4-connectivity) of `patch_mask`.
        flags: quality flags: `"empty"` (no vertebra pixel), `"several_components"` (the
            contour is the largest of them), `"area_outlier"` (area outside
            `AREA_RATIO_RANGE` times the median area of the (up to four) nearest non-empty
            vertebrae, two above and two below: one bad neighbour cannot flag a good one).
        center_source: "clicked" (given by the caller) or "locator" (found automatically).
        center_confidence: the locator's confidence in the centre (None when clicked).
    """

    label: str
    center: np.ndarray
    contour: np.ndarray
    patch_mask: np.ndarray
    probabilities: np.ndarray
    affine: np.ndarray
    area_px: float
    components: int
    flags: list[str] = field(default_factory=list)
    center_source: str = "clicked"
    center_confidence: float | None = None


def check_patch_batch(patches, what: str = "patches") -> np.ndarray:
    """Check a batch of patches against the model input spec and return it as float32.

    Args:
        patches: (N, 64, 64, 1) or (N, 64, 64) array of a floating dtype.
        what: the name used in the error message.

    Returns:
        (N, 64, 64, 1) float32 C-contiguous array.

    Raises:
        DataError: another shape, a non-floating dtype, or values that are not finite.

    Example:
        >>> check_patch_batch(np.zeros((2, 64, 64))).shape
        (2, 64, 64, 1)
    """
    array = np.asarray(patches)
    expected = f"float32 (N, {PATCH_SIZE}, {PATCH_SIZE}, 1)"
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(what, f"expected {expected}, got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[1:] != (PATCH_SIZE, PATCH_SIZE, 1) or len(array) == 0:
        raise DataError(what, f"expected {expected}, got shape {np.shape(patches)}")
    if not np.isfinite(array).all():
        raise DataError(what, "has values that are not finite")
    return np.ascontiguousarray(array, dtype=np.float32)


def latest_version(path) -> Path:
    """The SavedModel folder `path`, or the highest numbered version inside a TF Serving base.

    Raises:
        DataError: `path` holds neither a `saved_model.pb` nor numbered versions with one.

    Example:
        >>> latest_version("models/vertseg")  # doctest: +SKIP
        PosixPath('models/vertseg/2')
    """
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = [
        child for child in path.iterdir()
        if child.name.isdigit() and (child / "saved_model.pb").is_file()
    ] if path.is_dir() else []
    if not versions:
        raise DataError(path, "not a SavedModel folder (no saved_model.pb) nor a TF Serving base")
    return max(versions, key=lambda child: int(child.name))


def _model_predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled forward pass: an eager call runs op by op and `predict` builds a data
    pipeline per call, each several times slower than the SavedModel on a few patches."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return model.predict_on_batch
    import tensorflow as tf

    # One graph for every batch size (a radiograph has 1 to 7 vertebrae): no retracing.
    forward = tf.function(
        lambda patches: model(patches, training=False),
        input_signature=[tf.TensorSpec([None, PATCH_SIZE, PATCH_SIZE, 1], tf.float32)],
    )
    return lambda patches: forward(patches).numpy()


def _saved_model_predictor(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    folder = latest_version(path)
    try:
        loaded = tf.saved_model.load(str(folder))
        serve = loaded.signatures["serving_default"]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        raise DataError(
            folder, f"cannot load the SavedModel ({type(error).__name__}: {error})"
        ) from None

    def predict(patches: np.ndarray) -> np.ndarray:
        return serve(patch=tf.constant(patches))[PROBABILITIES_OUTPUT].numpy()

    predict.loaded = loaded  # keeps the variables alive as long as the function
    return predict


def tflite_predictor(
    model: Path | bytes, num_threads: int | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """A function (N, 64, 64, 1) float32 -> (N, 64, 64, 2) float32 running a TFLite model.

    Quantised integer inputs and outputs (a full-integer model) are quantised and
    dequantised with the model's own scale and zero point; float I/O is passed through.

    Args:
        model: a `.tflite` path or the model's bytes.
        num_threads: CPU threads of the interpreter (default: LiteRT's choice).

    Raises:
        DataError: the file is missing or is not a TFLite model.

    Example:
        >>> int8 = Path("models/vertseg/1/tflite/vertseg_int8.tflite")
        >>> predict = tflite_predictor(int8)  # doctest: +SKIP
        >>> predict(patches).shape  # doctest: +SKIP
        (5, 64, 64, 2)
    """
    from ai_edge_litert.interpreter import Interpreter

    source = "tflite model" if isinstance(model, bytes) else model
    try:
        if isinstance(model, bytes):
            interpreter = Interpreter(model_content=model, num_threads=num_threads)
        else:
            interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
    except (ValueError, RuntimeError) as error:
        raise DataError(source, f"cannot load the TFLite model ({error})") from None
    input_detail = interpreter.get_input_details()[0]
    batch = [0]

    def predict(patches: np.ndarray) -> np.ndarray:
        if batch[0] != len(patches):
            interpreter.resize_tensor_input(input_detail["index"], list(patches.shape))
            with quiet_native_logs():  # the XNNPACK delegate announces itself here
                interpreter.allocate_tensors()
            batch[0] = len(patches)
        detail = interpreter.get_input_details()[0]
        values = patches
        if np.issubdtype(detail["dtype"], np.integer):
            scale, zero_point = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            values = np.clip(np.round(patches / scale + zero_point), info.min, info.max)
        interpreter.set_tensor(detail["index"], values.astype(detail["dtype"]))
        interpreter.invoke()
        output = interpreter.get_output_details()[0]
        result = interpreter.get_tensor(output["index"])
        if np.issubdtype(output["dtype"], np.integer):
            scale, zero_point = output["quantization"]
            result = (result.astype(np.float32) - zero_point) * scale
        return np.asarray(result, dtype=np.float32)

    return predict


def _predictor(model, num_threads: int | None) -> tuple[Callable, str, object | None]:
    """(predict function, kind, the keras.Model or None) for a `Segmenter` model argument."""
    if not isinstance(model, (str, Path)):
        import keras

        if isinstance(model, keras.Model):
            return _model_predictor(model), "keras", model
        if callable(model):
            return model, "callable", None
        raise DataError(repr(model), "expected a model path, a keras.Model or a callable")
    path = Path(model)
    if not path.exists():
        raise DataError(path, "model not found")
    run_model = RunFolder(path).model_path
    if path.is_dir() and run_model.is_file() and not (path / "saved_model.pb").exists():
        path = run_model
    if path.is_dir():
        return _saved_model_predictor(path), "saved_model", None
    if path.suffix == ".keras":
        keras_model = load_keras_model(path)
        return _model_predictor(keras_model), "keras", keras_model
    if path.suffix == ".tflite":
        return tflite_predictor(path, num_threads), "tflite", None
    raise DataError(path, "unknown model type: expected a .keras file, a SavedModel folder or a "
                          ".tflite file")


def _flag_area_outliers(results: list[VertebraSegmentation]) -> None:
    low, high = AREA_RATIO_RANGE
    areas = [result.area_px for result in results]
    for k, result in enumerate(results):
        neighbours = [areas[j] for j in (k - 2, k - 1, k + 1, k + 2)
                      if 0 <= j < len(areas) and areas[j] > 0]
        if not neighbours or result.area_px == 0:
            continue
        ratio = result.area_px / float(np.median(neighbours))
        if not low <= ratio <= high:
            result.flags.append("area_outlier")


class Segmenter:
    """Segment the vertebrae of a radiograph from their clicked centres.

    Args:
        model: a `.keras` file, a training run folder (its `model.keras`), a SavedModel
            folder (or a TF Serving base folder, whose highest version is used), a `.tflite`
            file, a `keras.Model`, or any callable mapping
            (N, 64, 64, 1) float32 normalised patches to (N, 64, 64, 2) class probabilities;
            None or "pretrained" (the default) is the model shipped with vertseg-tf
            (`vertseg_tf.pretrained`, trained on synthetic films only).
        num_threads: CPU threads of a TFLite interpreter (default: LiteRT's choice).

    Attributes:
        kind: "keras", "saved_model", "tflite" or "callable".
        keras_model: the `keras.Model` for the Keras forms, else None.
        source: the path given (or the type name of an object).

    Raises:
        DataError: the model file is missing, of an unknown kind, or cannot be loaded.

    Example:
        >>> segmenter = Segmenter("models/vertseg/1")  # doctest: +SKIP
        >>> for vertebra in segmenter.segment(image, [[412, 380], [418, 452], [421, 520]]):
        ...     print(vertebra.label, vertebra.contour.shape, vertebra.flags)  # doctest: +SKIP
    """

    def __init__(self, model=None, num_threads: int | None = None, locator=None):
        from vertseg_tf.models_io import PRETRAINED, load_pretrained_model

        self._locator = locator

        pretrained = model is None or (isinstance(model, str) and model == PRETRAINED)
        if pretrained:
            self.source = PRETRAINED
            model = load_pretrained_model()
        else:
            self.source = model if isinstance(model, (str, Path)) else type(model).__name__
        self._predict, self.kind, self.keras_model = _predictor(model, num_threads)

    def predict_patches(self, patches) -> np.ndarray:
        """Class probabilities (N, 64, 64, 2) float32 of normalised patches, in one batch.

        Raises:
            DataError: patches not float (N, 64, 64[, 1]) or not finite.
        """
        return np.asarray(self._predict(check_patch_batch(patches)), dtype=np.float32)

    @property
    def locator(self):
        """The locator used when no centres are given, loaded on first use from the `locator`
        argument: a run folder, a `.keras` file, None / "pretrained" (the shipped one), or an
        object with `locate(image)` and `source` such as a `vertseg_tf.locate.Locator`."""
        from vertseg_tf.locate.locator import Locator

        if self._locator is None or isinstance(self._locator, (str, Path)):
            self._locator = Locator(self._locator)
        return self._locator

    def locate(self, image: np.ndarray):
        """The locator's `LocatedLevel`s (C2-T1 for the shipped locator; missing levels
        without a centre)."""
        return self.locator.locate(image)

    def segment(
        self,
        image: np.ndarray,
        centers=None,
        labels: Sequence[str] | None = None,
        *,
        scale: float | Sequence[float] | None = None,
    ) -> list[VertebraSegmentation]:
        """Segment one radiograph, from clicked centres or from the centres the locator finds.

        Args:
            image: (H, W) radiograph, bone bright (as `vertseg_tf.data.read_image` returns).
            centers: (N, 2) clicked centres, image xy, top to bottom; None locates them
                (`locate`): only the levels found are segmented, labelled C3-C7, with
                `center_source` "locator" and their `center_confidence`.
            labels: N labels; default "0", "1", ... (not with `centers` None)
            scale: the vertebra scale in image pixels; required for a single centre.

        Returns:
            One `VertebraSegmentation` per centre, in the order given.

        Raises:
            DataError: a centre outside the image or not finite, coinciding centres, a
                non-2-D image, or a label count that does not match.
            ConfigError: fewer than two centres without `scale`.
        """
        image = np.asarray(image)
        if centers is None:
            if labels is not None:
                raise ConfigError("labels come from the locator when no centres are given")
            return self.segment_located(image, self.locate(image), scale=scale)
        centers = np.asarray(centers, dtype=np.float64)
        if centers.ndim != 2 or centers.shape[1:] != (2,) or len(centers) == 0:
            raise DataError("centers", f"must be (N, 2) with N >= 1, got shape {centers.shape}")
        if image.ndim == 2:
            height, width = image.shape
            for k, (x, y) in enumerate(centers):
                if not inside_image(np.array([[x, y]]), (height, width))[0]:
                    raise DataError(
                        "centers",
                        f"({x:g}, {y:g}) lies outside the {width} x {height} image",
                        field=f"centers[{k}]",
                    )
        if labels is not None and len(labels) != len(centers):
            raise DataError("labels", f"{len(labels)} labels for {len(centers)} centres")
        if scale is not None and image.ndim == 2:
            _check_scale(scale, image.shape)
        cut = extract_patches(
            image, centers, alphas=(TEST_ALPHA,), angles=(0.0,), scale=scale, labels=labels
        )
        probabilities = self.predict_patches(cut.x())
        masks = predicted_mask(probabilities).astype(np.uint8)
        results = []
        for k in range(len(cut)):
            outline, count = largest_outline(masks[k])
            contour = patch_to_image(outline, cut.affines[k]) if len(outline) else outline
            flags = ["empty"] if count == 0 else ["several_components"] if count > 1 else []
            results.append(
                VertebraSegmentation(
                    label=cut.labels[k],
                    center=centers[k].copy(),
                    contour=contour,
                    patch_mask=masks[k],
                    probabilities=probabilities[k, ..., 1],
                    affine=cut.affines[k],
                    area_px=abs(polygon_area(contour)) if len(contour) else 0.0,
                    components=count,
                    flags=flags,
                )
            )
        _flag_area_outliers(results)
        return results

    def segment_located(self, image, located, *, scale=None,
                        refine: int = LOCATED_REFINEMENTS) -> list[VertebraSegmentation]:
        """Segment the levels of C3-C7 a locator found (`LocatedLevel`s); missing ones, and
        the levels it finds only to name the others (C2, T1), are skipped.

        Unless `scale` is given, each vertebra's scale counts the levels between found
        neighbours (`located_scales`): a missing level does not double its neighbours' patches.
        `refine` times, every found centre is first moved to the area centroid of the outline
        segmented from it (`recentred`), then the film is segmented again from the moved
        centres; the results carry the final centres.

        Raises:
            DataError: no level was found.
        """
        from vertseg_tf.locate.evaluate import found_centers
        from vertseg_tf.locate.heatmaps import (
            SEGMENTED_LEVELS,
            located_scales,
            refine_segmentation,
        )

        located = [level for level in located if level.label in SEGMENTED_LEVELS]
        found = [level for level in located if level.found]
        if not found:
            raise DataError("image", "the locator found no vertebra (every level under its "
                                     "threshold); give the centres")
        centers = found_centers(located)
        present = np.flatnonzero(np.isfinite(centers[:, 0]))
        labels = [level.label for level in found]

        def segment_from(moved):
            scales = scale if scale is not None or len(found) < 2 else located_scales(moved)
            return self.segment(image, moved[present], labels, scale=scales)

        results, _ = refine_segmentation(
            centers, segment_from,
            lambda made: {level: result.contour for level, result in zip(present, made)},
            refine, np.shape(image))
        for result, level in zip(results, found):
            result.center_source = "locator"
            result.center_confidence = float(level.confidence)
        return results


def _check_scale(scale, shape) -> None:
    """A vertebra scale is a positive number of pixels no longer than the image diagonal."""
    diagonal = math.hypot(*shape)
    scales = np.atleast_1d(np.asarray(scale, dtype=np.float64))
    if not np.all(np.isfinite(scales) & (scales > 0) & (scales <= diagonal)):
        raise DataError(
            "scale",
            f"must be a positive number of pixels up to the image diagonal ({diagonal:.0f}), "
            f"got {scale!r}",
        )


def _check_labels(labels: Sequence[str]) -> None:
    """The label rules of `validate_dataset`, checked before the model runs."""
    for index, label in enumerate(labels):
        if label not in SPINE_LEVELS:
            raise DataError("labels", f"unknown label {label!r}; expected a spine level C1-C7, "
                                      "T1-T12, L1-L5 or S1", field=f"labels[{index}]")
        if label in labels[:index]:
            raise DataError("labels", f"{label} appears twice (also labels"
                                      f"[{list(labels).index(label)}])", field=f"labels[{index}]")


def parse_centers(text: str, source: str = "--centers") -> np.ndarray:
    """Parse clicked centres written as "x,y;x,y;...".

    Raises:
        DataError: text that is not pairs of finite numbers (naming `source`).

    Example:
        >>> parse_centers("10,20; 12.5,40").tolist()
        [[10.0, 20.0], [12.5, 40.0]]
    """
    points = []
    for index, item in enumerate(part for part in text.replace("\n", ";").split(";")
                                 if part.strip()):
        values = item.replace(",", " ").split()
        try:
            point = [float(value) for value in values]
        except ValueError:
            point = []
        if len(point) != 2 or not np.isfinite(point).all():
            raise DataError(source, f"expected 'x,y', got {item.strip()!r}",
                            field=f"centers[{index}]")
        points.append(point)
    if not points:
        raise DataError(source, "no centre given")
    return np.array(points, dtype=np.float64)


def read_centers_file(path) -> np.ndarray:
    """Clicked centres from a file: a JSON list `[[x, y], ...]`, or text with one `x,y`
    (or `x y`) per line or `;`-separated.

    Raises:
        DataError: a missing or unreadable file, or content that is not xy pairs.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise DataError(path, "not a regular file; expected a centres file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"cannot read the centres file ({error})") from None
    if text.lstrip().startswith("["):
        try:
            points = np.asarray(json.loads(text), dtype=np.float64)
        except (ValueError, TypeError, OverflowError) as error:
            raise DataError(path, f"expected a JSON list of [x, y] pairs ({error})") from None
        except RecursionError:
            raise DataError(
                path, "expected a JSON list of [x, y] pairs (nested too deeply)"
            ) from None
        if points.ndim != 2 or points.shape[1:] != (2,) or not np.isfinite(points).all():
            raise DataError(path, f"expected a JSON list of finite [x, y] pairs, got shape "
                                  f"{points.shape}")
        return points
    return parse_centers(text, str(path))


def default_labels(count: int, first: str = "C3") -> list[str]:
    """`count` consecutive spine levels from `first` (C3, C4, ...).

    Raises:
        ConfigError: more levels than the spine has after `first`.
    """
    start = SPINE_LEVELS.index(first)
    if start + count > len(SPINE_LEVELS):
        raise ConfigError(f"{count} vertebrae from {first} run past {SPINE_LEVELS[-1]}; "
                          "pass labels")
    return list(SPINE_LEVELS[start:start + count])


_GOOD = (80, 220, 80)
_FLAGGED = (0, 170, 255)


def draw_overlay(
    image: np.ndarray, results: list[VertebraSegmentation], measurements=None
) -> np.ndarray:
    """The radiograph as 8-bit BGR (1st-99th percentile window) with every contour, centre and
    label drawn; flagged vertebrae in orange, the others in green. With `measurements` (a
    `ColumnMeasurement`), also the six points, heights and Genant grades
    (`vertseg_tf.deploy.measurements.draw_measurements`)."""
    import cv2

    low, high = np.percentile(image, (1, 99))
    grey = np.clip((image.astype(np.float64) - low) / max(high - low, 1e-12), 0, 1)
    canvas = cv2.cvtColor(np.round(grey * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    thickness = max(1, round(max(image.shape) / 600))
    for result in results:
        colour = _FLAGGED if result.flags else _GOOD
        if len(result.contour):
            points = np.round(result.contour * 16).astype(np.int32)
            cv2.polylines(canvas, [points], True, colour, thickness, cv2.LINE_AA, 4)
        x, y = np.round(result.center).astype(int)
        cv2.circle(canvas, (int(x), int(y)), 2 * thickness, colour, -1, cv2.LINE_AA)
        text = result.label + (f" ({', '.join(result.flags)})" if result.flags else "")
        cv2.putText(canvas, text, (int(x) + 4 * thickness, int(y)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, colour, thickness, cv2.LINE_AA)
    if measurements is not None:
        draw_measurements(canvas, measurements, thickness)
    return canvas


def draw_located(image: np.ndarray, located) -> np.ndarray:
    """The radiograph as 8-bit BGR with every found centre, its level and confidence, and a
    line naming the missing levels."""
    import cv2

    low, high = np.percentile(image, (1, 99))
    grey = np.clip((image.astype(np.float64) - low) / max(high - low, 1e-12), 0, 1)
    canvas = cv2.cvtColor(np.round(grey * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    thickness = max(1, round(max(image.shape) / 600))
    for level in located:
        if not level.found:
            continue
        x, y = (int(v) for v in np.round(level.center))
        cv2.drawMarker(canvas, (x, y), _GOOD, cv2.MARKER_CROSS, 8 * thickness, thickness)
        cv2.putText(canvas, f"{level.label} {level.confidence:.2f}", (x + 5 * thickness, y),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, _GOOD, thickness, cv2.LINE_AA)
    missing = [level.label for level in located if not level.found]
    if missing:
        cv2.putText(canvas, "missing: " + ", ".join(missing), (5, 15 * thickness),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, _FLAGGED, thickness, cv2.LINE_AA)
    return canvas


def segmentation_record(
    image_id: str,
    file: str,
    results: list[VertebraSegmentation],
    column,
    spacing=None,
    segmented_by: str = "",
) -> ImageRecord:
    """The dataset record (split "test") of one segmented radiograph.

    Every non-empty vertebra keeps its label, clicked centre and predicted `contour` in
    pixels, plus `quality_flags`, `center_source` and `center_confidence` for a centre the
    locator found, `contour_mm` (x, y in mm) when `spacing` is given and its
    `measurements`; the image gets the column's `measurements` and `segmented_by`.

    Args:
        image_id: the record's id.
        file: the image path relative to the dataset folder.
        results: `Segmenter.segment` output.
        column: `measure_segmentation(results, ...)`.
        spacing: (row_mm, col_mm) or None.
        segmented_by: the model's name or path.
    """
    vertebrae = []
    for result in results:
        if not len(result.contour):
            continue
        extra: dict = {"quality_flags": list(result.flags)}
        if result.center_source != "clicked":
            extra["center_source"] = result.center_source
            extra["center_confidence"] = result.center_confidence
        if spacing is not None:
            row_mm, col_mm = spacing
            extra["contour_mm"] = (result.contour * [col_mm, row_mm]).tolist()
        measured = column.vertebra(result.label)
        if measured is not None:
            extra["measurements"] = measured.to_dict()
        vertebrae.append(VertebraRecord(result.label, result.center, result.contour, [], extra))
    return ImageRecord(image_id, file, "test", None if spacing is None else tuple(spacing),
                       vertebrae, {"segmented_by": segmented_by,
                                   "measurements": column.column_dict()})


def segment_to_dataset(
    segmenter: Segmenter,
    image_path,
    centers,
    out,
    labels: Sequence[str] | None = None,
    *,
    scale: float | None = None,
    facing: str | None = None,
    overwrite: bool = False,
    warn: Callable[[str], None] | None = None,
    review: bool = False,
) -> tuple[Path, list[VertebraSegmentation]]:
    """Segment one radiograph file and write the result as a native dataset folder.

    `out` receives `dataset.json` (one image, split "test"; every vertebra with its label,
    clicked centre and predicted `contour` in pixels, plus the extra keys `contour_mm`
    (x, y in mm) when the image has a pixel spacing and `quality_flags`), `images/<name>`
    (a copy of the image), `overlay.png` and `measurements.csv`. Every measured vertebra gets
    `measurements` (six points, heights, ratios, Genant grade, angles) and the image gets the
    column's `measurements` (facing, segments, listhesis, C3-C7 lordosis); see
    `vertseg_tf.morphometry`. Vertebrae with an empty mask have no outline
    and are left out of `dataset.json` (they stay in the returned list, flagged "empty").
    The folder is built under a hidden name beside `out`, checked with the rules of
    `vertseg-tf validate` and renamed when complete.

    Args:
        segmenter: the loaded model.
        image_path: the radiograph (DICOM, PNG, JPEG, TIFF).
        centers: (N, 2) clicked centres, image xy, top to bottom; None finds them with the
            segmenter's locator: the vertebrae get `center_source` "locator" and
            `center_confidence`, the image `located_by` and `located_levels` (every level the
            locator looks for, C2-T1 for the shipped one, found or missing, with its
            confidence and, when found, its centre; only C3-C7 are segmented).
        out: the output folder; must not exist or be empty unless `overwrite`.
        labels: N spine levels (each once); default C3, C4, ...
        scale: vertebra scale in pixels (required for a single centre), at most the
            image diagonal.
        facing: "left" or "right" for the read-outs; None detects it.
        overwrite: replace an existing non-empty `out`.
        warn: called with each warning `validate_dataset` finds in the result; default:
            printed to stderr.
        review: with `centers` None, also write `review.png`: the found centres with their
            levels and confidences, and the missing levels, for a person to check.

    Returns:
        `(dataset_json_path, results)`.

    Raises:
        DataError: unreadable image, a centre outside it, a label that is no spine level or
            repeated, a scale out of range, or a result `validate_dataset` rejects (nothing
            is written then).
        ConfigError: fewer than two centres without `scale`, a wrong number of labels, an
            existing non-empty `out` without `overwrite`.
    """
    import cv2

    from vertseg_tf.data.images import read_image

    image_path, out = Path(image_path), require_new_folder(out, overwrite=overwrite)
    image, meta = read_image(image_path)
    located = None
    if centers is None:
        located = segmenter.locate(image)
        results = segmenter.segment_located(image, located, scale=scale)
    else:
        centers = np.asarray(centers, dtype=np.float64)
        labels = default_labels(len(centers)) if labels is None else list(labels)
        if len(labels) != len(centers):
            raise ConfigError(f"{len(labels)} labels for {len(centers)} centres")
        _check_labels(labels)
        results = segmenter.segment(image, centers, labels, scale=scale)
    spacing = meta.get("pixel_spacing_mm")
    column = measure_segmentation(results, spacing, facing)
    file = f"images/{image_path.name}"
    record = segmentation_record(image_path.stem, file, results, column, spacing,
                                 str(segmenter.source))
    if located is not None:
        record.extra["located_by"] = segmenter.locator.source
        record.extra["located_levels"] = {
            level.label: {"found": level.found, "confidence": float(level.confidence),
                          **({"center": level.center.tolist()} if level.found else {})}
            for level in located
        }
    with atomic_dir(out, replace=overwrite) as building:
        (building / "images").mkdir()
        shutil.copy2(image_path, building / file)
        save_dataset(Dataset([record]), building)
        require_valid_dataset(building, warn=warn)
        if not cv2.imwrite(str(building / "overlay.png"), draw_overlay(image, results, column)):
            raise DataError(building / "overlay.png", "cannot write the overlay")
        review_path = building / "review.png"
        if review and located is not None and not cv2.imwrite(str(review_path),
                                                               draw_located(image, located)):
            raise DataError(review_path, "cannot write the review overlay")
        write_segmentation_measurements(building, record.id, column)
    return out / "dataset.json", results

