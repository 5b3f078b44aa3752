"""Export a trained UNet as a TF Serving SavedModel and as TFLite models, with parity checks.

Layout written by `export_run(..., out="models/vertseg", version=1)`:

    models/vertseg/1/saved_model.pb, variables/   the SavedModel (TF Serving's version folder)
    models/vertseg/1/tflite/vertseg_<variant>.tflite   float32, float16, int8
    models/vertseg/1/manifest.json               versions, input spec, preprocessing, source
                                                 run, export-time parity figures

The version folder is built under a hidden temporary name beside it and renamed when complete,
so TF Serving (which polls the base folder) never sees a half-written version.

Signatures of the SavedModel:
    - `serving_default`: input `patch` float32 (None, 64, 64, 1), normalised per patch as in
      training; output `probabilities` float32 (None, 64, 64, 2) (channel 1 = vertebra).
    - `segment`: input `patch` float32 (None, 64, 64, 1) of raw patch intensities (the
      resampled radiograph, before normalisation); normalised inside the graph exactly as
      `vertseg_tf.data.patches` does; output `mask` uint8 (None, 64, 64), the argmax.
    - `locate` (only when a locator is given): input `image` float32 (H, W), a whole
      radiograph; outputs `centers`, `found`, `confidences`, `labels` and `scale`
      (`vertseg_tf.deploy.locate_signature` owns the graph and its contract).
    - `segment_radiograph` (with `locate`): the same `image`; per found vertebra `masks`,
      `affines`, `labels`, `centers`, `confidences` (`vertseg_tf.deploy.radiograph_signature`).

TFLite variants (all with float32 input and output, same tensors as `serving_default`):
    - `float32`: the graph as is.
    - `float16`: weights stored as float16, computed in float32.
    - `int8`: weights and activations int8 (full-integer kernels), calibrated on
      representative training patches; quantise/dequantise at the float input and output.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vertseg_tf import __version__
from vertseg_tf.atomic import atomic_dir, write_json_atomic
from vertseg_tf.channels import predicted_mask
from vertseg_tf.data.patches import (
    FLAT_RELATIVE_STD,
    PATCH_SIZE,
    TEST_ALPHA,
    TRAIN_ALPHAS,
    TRAIN_ANGLES,
)
from vertseg_tf.deploy.fresh_process import (
    ParityError,
    saved_model_outputs_in_fresh_process,
    saved_model_server,
)
from vertseg_tf.deploy.graph_patches import normalise_patches
from vertseg_tf.deploy.inference import PROBABILITIES_OUTPUT, check_patch_batch, tflite_predictor
from vertseg_tf.deploy.locate_signature import (
    IMAGE_INPUT,
    LOCATE_SIGNATURE,
    add_locate_endpoint,
    locate_manifest,
    locate_parity,
    parity_films,
    resolve_locator,
)
from vertseg_tf.deploy.radiograph_signature import (
    SEGMENT_RADIOGRAPH_SIGNATURE,
    add_segment_radiograph_endpoint,
    segment_radiograph_manifest,
    segment_radiograph_parity,
)
from vertseg_tf.errors import ConfigError
from vertseg_tf.interrupts import raise_if_interrupted
from vertseg_tf.models_io import load_keras_model
from vertseg_tf.progress import write
from vertseg_tf.startup import quiet_native_logs
from vertseg_tf.training.run_folder import RunFolder, recorded_dataset

__all__ = [
    "INT8_MIN_DICE",
    "MANIFEST_FILE",
    "MASK_OUTPUT",
    "SAVED_MODEL_TOLERANCE",
    "TFLITE_FLOAT32_TOLERANCE",
    "TFLITE_VARIANTS",
    "ParityError",
    "export_run",
    "load_run_model",
    "normalise_patches",
    "representative_patches",
    "saved_model_outputs_in_fresh_process",
]

TFLITE_VARIANTS = ("float32", "float16", "int8")
MANIFEST_FILE = "manifest.json"
MASK_OUTPUT = "mask"
SAVED_MODEL_TOLERANCE = 1e-5
TFLITE_FLOAT32_TOLERANCE = 1e-4
INT8_MIN_DICE = 0.98
_CALIBRATION_PATCHES = 128
_PARITY_PATCHES = 32


def load_run_model(run_dir_or_model) -> tuple[Any, dict | None, str]:
    """The Keras model of a training run, the run's record (`config.json`, or None), its source.

    Args:
        run_dir_or_model: a RUN_DIR holding `model.keras` (and optionally `config.json`), a
            `.keras` file (the record of the folder it is in is used), or a `keras.Model`.

    Returns:
        `(model, run_config, source)`; source is the path as text, or "in-memory model".

    Raises:
        DataError: no model file, one that cannot be loaded, or an unreadable `config.json`.
    """
    import keras

    if isinstance(run_dir_or_model, keras.Model):
        return run_dir_or_model, None, "in-memory model"
    path = Path(run_dir_or_model)
    folder = RunFolder(path if path.is_dir() else path.parent)
    model = load_keras_model(folder.model_path if path.is_dir() else path)
    run_config = folder.read_record() if folder.config_path.is_file() else None
    return model, run_config, str(path)


def _write_saved_model(model, folder: Path, locator=None) -> None:
    import keras
    import tensorflow as tf

    spec = tf.TensorSpec((None, PATCH_SIZE, PATCH_SIZE, 1), tf.float32, name="patch")
    archive = keras.export.ExportArchive()
    archive.track(model)

    # A signature does not check shapes itself: a wrong rank would reach the convolution
    # kernels (and can abort the process), so each signature checks its input first.
    def checked(patch):
        return tf.ensure_shape(patch, spec.shape, name="check_patch_shape")

    def serving_default(patch):
        return {PROBABILITIES_OUTPUT: model(checked(patch), training=False)}

    def segment(patch):
        probabilities = model(normalise_patches(checked(patch)), training=False)
        return {MASK_OUTPUT: tf.cast(predicted_mask(probabilities), tf.uint8)}

    archive.add_endpoint("serving_default", serving_default, input_signature=[spec])
    archive.add_endpoint("segment", segment, input_signature=[spec])
    if locator is not None:
        add_locate_endpoint(archive, locator)
        add_segment_radiograph_endpoint(archive, model, locator)
    archive.write_out(str(folder), verbose=False)


def _convert_tflite(saved_model: Path, variant: str, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model), signature_keys=["serving_default"]
    )
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32

        def representative_dataset():
            for patch in calibration:
                yield [patch[None]]

        converter.representative_dataset = representative_dataset
    with quiet_native_logs():  # the quantiser prints its settings on its own
        return converter.convert()


def representative_patches(
    run_config: dict | None = None, count: int = _CALIBRATION_PATCHES, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, str]:
    """Normalised training patches to calibrate int8 on, and test patches to check parity on.

    From the run's dataset when `run_config` (a run record) names one that exists (its
    "dataset" key): `count` random augmented patches of the train split
    and up to 32 test patches of the test split (of the train split when there is none).
    Otherwise synthetic small radiographs (`vertseg_tf.data.synthetic.synthesize`, seed 0):
    augmented patches of images 0, 1, ... and test patches of later images.

    Returns:
        `(calibration, test, source)`: (count, 64, 64, 1) and (M, 64, 64, 1) float32, and a
        description of where they came from.
    """
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.data.patches import PatchSet, extract_patches

    rng = np.random.default_rng(seed)
    dataset_path = recorded_dataset(run_config)
    if dataset_path is not None:
        dataset = load_dataset(dataset_path)
        train = PatchSet.from_dataset(dataset, "train", augment=True, progress=False)
        test_split = "test" if dataset.split("test") else "train"
        test = PatchSet.from_dataset(dataset, test_split, augment=False, progress=False)
        source = f"dataset {dataset_path} (train: calibration, {test_split}: parity)"
    else:
        from vertseg_tf.data.synthetic.generator import synthesize

        def cut(index: int, augment: bool):
            item = synthesize(seed, index, size="small")
            vertebrae = item.record.vertebrae
            return extract_patches(
                item.image.astype(np.float32),
                np.array([v.center for v in vertebrae]),
                alphas=TRAIN_ALPHAS if augment else (TEST_ALPHA,),
                angles=TRAIN_ANGLES if augment else (0.0,),
            )

        per_image = 5 * len(TRAIN_ALPHAS) * len(TRAIN_ANGLES)
        images = max(1, -(-count // per_image))
        train = PatchSet.concatenate([cut(index, True) for index in range(images)])
        test = PatchSet.concatenate(
            [cut(index, False) for index in range(images, images + _PARITY_PATCHES // 5)]
        )
        source = f"synthetic small radiographs (seed {seed})"
    calibration = train.x()[rng.permutation(len(train))[:count]]
    test_x = test.x()[rng.permutation(len(test))[:_PARITY_PATCHES]]
    return calibration, test_x, source


def _parse_variants(tflite: Sequence[str] | str) -> tuple[str, ...]:
    variants = tflite.split(",") if isinstance(tflite, str) else list(tflite)
    variants = [variant.strip() for variant in variants if variant.strip()]
    unknown = [variant for variant in variants if variant not in TFLITE_VARIANTS]
    if unknown:
        raise ConfigError(f"unknown TFLite variant(s) {', '.join(unknown)}; expected any of "
                          f"{', '.join(TFLITE_VARIANTS)}")
    return tuple(dict.fromkeys(variants))


def export_run(
    run_dir_or_model,
    out,
    version: int,
    tflite: Sequence[str] | str = TFLITE_VARIANTS,
    representative: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    locator=None,
    locate_films: Sequence[np.ndarray] | None = None,
    progress: bool = True,
    fresh_process_parity: bool = True,
) -> Path:
    """Export a trained model for TF Serving and TFLite and check the copies against Keras.

    Parity checks (figures stored in `manifest.json`):
        - SavedModel `serving_default`, loaded in a fresh process that never imports
          vertseg_tf (or in this process when `fresh_process_parity` is False), against the
          Keras model: max |difference| of the probabilities must be at most
          `SAVED_MODEL_TOLERANCE` (1e-5), else `ParityError`;
        - the `segment` signature on raw patches against the argmax of the Keras model: the
          share of equal mask pixels is recorded;
        - TFLite float32 through `ai_edge_litert`: max |difference| at most
          `TFLITE_FLOAT32_TOLERANCE` (1e-4), else `ParityError`;
        - TFLite float16 and int8: max |difference| and the mean Dice of their masks against
          the Keras masks; an int8 Dice under `INT8_MIN_DICE` (0.98) is reported as not passed
          (a warning: an untrained model has no meaningful masks), not an error;
        - with a locator, the `locate` signature on whole films (`parity_films`) against
          `Locator.locate`: the same levels found, centres within `LOCATE_CENTER_TOLERANCE_PX`
          (0.05 px) and confidences within `LOCATE_CONFIDENCE_TOLERANCE` (2e-3), else
          `ParityError`; and `segment_radiograph` on the same films against
          `Segmenter(model, locator=locator).segment_located(film, located)`:
          the same vertebrae, patches and refined centres placed within
          `SEGMENT_RADIOGRAPH_PLACEMENT_TOLERANCE_PX` (0.25 px), at least 99.9 % of the mask
          pixels equal, else `ParityError`.

    Args:
        run_dir_or_model: RUN_DIR with `model.keras` (+ `config.json`), a `.keras` file, or a
            `keras.Model`.
        out: TF Serving base folder; the export goes to `out/<version>/`.
        version: positive integer version; `out/<version>` must not exist.
        tflite: TFLite variants to write, a subset of `TFLITE_VARIANTS` (or "a,b" text).
        representative: `(calibration, test)` normalised patches (N, 64, 64[, 1]); default
            `representative_patches(run_config)`.
        locator: add the `locate` and `segment_radiograph` signatures with this locator: a
            `vertseg_tf.locate.Locator` (its threshold is fixed in the graph), "pretrained"
            (the shipped one), a locator run folder or a `.keras` file; default None, neither.
        locate_films: (H, W) radiographs to check the whole-film signatures on; default
            `parity_films()`.
        progress: print one line per step to stderr.
        fresh_process_parity: load the SavedModel for its two parity checks in fresh
            processes, as a serving system would (default); False loads it once in this
            process instead, which skips two TensorFlow start-ups (`vertseg-tf bench --quick`
            uses it; the manifest's `parity.saved_model.loaded_in` says which).

    Returns:
        The version folder `out/<version>`.

    Raises:
        ConfigError: a bad version or variant, or an existing version folder.
        DataError: an unreadable model, or representative patches of the wrong shape.
        ParityError: an export disagrees with the Keras model beyond its tolerance.

    Example:
        >>> export_run("runs/demo", "models/vertseg", 1)  # doctest: +SKIP
        PosixPath('models/vertseg/1')
    """
    import keras

    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"version must be a positive integer, got {version!r}")
    variants = _parse_variants(tflite)
    out = Path(out)
    target = out / str(version)
    if target.exists():
        raise ConfigError(f"{target}: version folder exists; choose another --version")

    def say(message: str) -> None:
        # Each step starts only when no Ctrl-C arrived (one TensorFlow may have swallowed).
        raise_if_interrupted()
        if progress:
            write(f"export: {message}")

    model, run_config, source = load_run_model(run_dir_or_model)
    locator = resolve_locator(locator)
    if representative is None:
        say("cutting representative patches")
        calibration, test, patch_source = representative_patches(run_config)
    else:
        calibration, test = representative
        patch_source = "given by the caller"
    calibration = check_patch_batch(calibration, "representative calibration patches")
    test = check_patch_batch(test, "representative test patches")
    reference = keras.ops.convert_to_numpy(model(test, training=False))

    with atomic_dir(target) as building:
        say(f"writing the SavedModel ({len(calibration)} calibration, {len(test)} test patches)")
        _write_saved_model(model, building, locator)
        raise_if_interrupted()
        serve = saved_model_server(building, fresh_process_parity)
        parity = _saved_model_parity(serve, test, reference, target, fresh_process_parity)
        locate_entry = None
        if locator is not None:
            say("checking the locate signature on whole films")
            if locate_films is None:
                films, film_source = parity_films()
            else:
                films = [np.asarray(film, np.float32) for film in locate_films]
                film_source = f"{len(films)} films given by the caller"
            parity["locate"] = locate_parity(serve(films, LOCATE_SIGNATURE, IMAGE_INPUT),
                                             locator, films)
            if not parity["locate"]["passed"]:
                raise ParityError(f"{target}: `locate` disagrees with Locator.locate: "
                                  f"{parity['locate']['problem']}")
            say("checking the segment_radiograph signature on whole films")
            parity[SEGMENT_RADIOGRAPH_SIGNATURE] = segment_radiograph_parity(
                serve(films, SEGMENT_RADIOGRAPH_SIGNATURE, IMAGE_INPUT), model, locator, films)
            if not parity[SEGMENT_RADIOGRAPH_SIGNATURE]["passed"]:
                raise ParityError(f"{target}: `segment_radiograph` disagrees with "
                                  "Segmenter.segment_located: "
                                  f"{parity[SEGMENT_RADIOGRAPH_SIGNATURE]['problem']}")
            locate_entry = locate_manifest(locator, film_source)
        tflite_files = {}
        for variant in variants:
            say(f"converting TFLite {variant}")
            content = _convert_tflite(building, variant, calibration)
            name = f"tflite/vertseg_{variant}.tflite"
            (building / "tflite").mkdir(exist_ok=True)
            (building / name).write_bytes(content)
            tflite_files[variant] = name
            parity[f"tflite_{variant}"] = _tflite_parity(content, variant, test, reference, target)
        manifest = _manifest(model, source, run_config, tflite_files, patch_source, parity)
        if locate_entry is not None:
            manifest["signatures"][LOCATE_SIGNATURE] = locate_entry["signature"]
            manifest["signatures"][SEGMENT_RADIOGRAPH_SIGNATURE] = segment_radiograph_manifest()
            manifest["locator"] = locate_entry["locator"]
        write_json_atomic(manifest, building / MANIFEST_FILE)
    say(f"wrote {target}")
    return target


def _saved_model_parity(
    serve, test: np.ndarray, reference: np.ndarray, target: Path, fresh_process: bool
) -> dict[str, Any]:
    """Both signatures against the Keras model; `ParityError` beyond SAVED_MODEL_TOLERANCE."""
    served = serve([test], "serving_default", "patch")[0][PROBABILITIES_OUTPUT]
    saved_model_error = float(np.abs(served - reference).max())
    if saved_model_error > SAVED_MODEL_TOLERANCE:
        raise ParityError(f"{target}: SavedModel differs from Keras by {saved_model_error:.3g}"
                          f" > {SAVED_MODEL_TOLERANCE:g}")
    raw = test * 37.5 + 1200.0  # any positive affine change of intensities normalises back
    raw_masks = serve([raw], "segment", "patch")[0][MASK_OUTPUT]
    return {
        "test_patches": len(test),
        "saved_model": {"max_abs_diff": saved_model_error,
                        "tolerance": SAVED_MODEL_TOLERANCE, "passed": True,
                        "loaded_in": "fresh process" if fresh_process else "exporting process"},
        "segment_signature": {
            "mask_pixel_agreement": float((raw_masks == predicted_mask(reference)).mean())
        },
    }


def _tflite_parity(
    content: bytes, variant: str, test: np.ndarray, reference: np.ndarray, target: Path
) -> dict[str, Any]:
    """One TFLite variant against the Keras model: float32 must match, int8 should."""
    from vertseg_tf.evaluation.metrics import dice

    predicted = tflite_predictor(content)(test)
    figures = {
        "max_abs_diff": float(np.abs(predicted - reference).max()),
        "mask_dice": float(np.mean(dice(predicted_mask(reference), predicted_mask(predicted)))),
    }
    if variant == "float32":
        figures["tolerance"] = TFLITE_FLOAT32_TOLERANCE
        figures["passed"] = figures["max_abs_diff"] <= TFLITE_FLOAT32_TOLERANCE
        if not figures["passed"]:
            raise ParityError(f"{target}: TFLite float32 differs from Keras by "
                              f"{figures['max_abs_diff']:.3g}")
    if variant == "int8":
        figures["min_dice"] = INT8_MIN_DICE
        figures["passed"] = figures["mask_dice"] >= INT8_MIN_DICE
        if not figures["passed"]:
            print(f"export: warning: int8 masks agree with Keras at mean Dice "
                  f"{figures['mask_dice']:.4f} < {INT8_MIN_DICE} (untrained model?)",
                  file=sys.stderr)
    return figures


def _manifest(model, source: str, run_config, tflite_files: dict, patch_source: str,
              parity: dict) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    patch_shape = [None, PATCH_SIZE, PATCH_SIZE]
    return {
        "format": "vertseg-export/1",
        "versions": {"vertseg_tf": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__},
        "source_run": source,
        "run_config": run_config,
        "model": {"name": model.name, "parameters": int(model.count_params()),
                  "unet_config": model.unet_config.to_dict()
                  if hasattr(model, "unet_config") else None},
        "signatures": {
            "serving_default": {
                "inputs": {"patch": {"dtype": "float32", "shape": [*patch_shape, 1]}},
                "outputs": {PROBABILITIES_OUTPUT: {
                    "dtype": "float32", "shape": [*patch_shape, 2],
                    "channels": ["background", "vertebra"]}},
                "input_preprocessing": "normalised",
            },
            "segment": {
                "inputs": {"patch": {"dtype": "float32", "shape": [*patch_shape, 1]}},
                "outputs": {MASK_OUTPUT: {"dtype": "uint8", "shape": patch_shape}},
                "input_preprocessing": "raw",
            },
        },
        "preprocessing": {
            "patch": f"{PATCH_SIZE}x{PATCH_SIZE} square of side {TEST_ALPHA} x the vertebra "
                     "scale (mean distance to the neighbouring centres), centred on the "
                     "clicked centre, spine axis pointing down the patch, linear "
                     "resampling, border reflected (vertseg_tf.data.patches)",
            "normalisation": "per patch: (x - mean) / std, population std in float64; a "
                             f"patch with std <= {FLAT_RELATIVE_STD:g} |mean| becomes zeros",
            "test_alpha": TEST_ALPHA,
        },
        "tflite": tflite_files,
        "representative_patches": patch_source,
        "parity": parity,
    }
