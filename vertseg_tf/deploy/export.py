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

TFLite variants (all with float32 input and output, same tensors as `serving_default`):
    - `float32`: the graph as is.
    - `float16`: weights stored as float16, computed in float32.
    - `int8`: weights and activations int8 (full-integer kernels), calibrated on
      representative training patches; quantise/dequantise at the float input and output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
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
from vertseg_tf.deploy.inference import PROBABILITIES_OUTPUT, check_patch_batch, tflite_predictor
from vertseg_tf.errors import ConfigError, VertsegError
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


class ParityError(VertsegError):
    """An exported model disagrees with the Keras model beyond its tolerance."""


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


def normalise_patches(raw):
    """Per-patch zero mean, unit variance of (N, H, W, C) raw patches, as a TensorFlow graph.

    The definition of `vertseg_tf.data.patches`: mean and population standard deviation of
    each patch in float64; a patch whose standard deviation is at most 1e-6 of its mean
    magnitude becomes all zeros; the result is float32.
    """
    import tensorflow as tf

    values = tf.cast(raw, tf.float64)
    mean = tf.reduce_mean(values, axis=[1, 2, 3], keepdims=True)
    std = tf.sqrt(tf.reduce_mean(tf.square(values - mean), axis=[1, 2, 3], keepdims=True))
    flat = std <= FLAT_RELATIVE_STD * tf.abs(mean)
    normalised = (values - mean) / tf.where(flat, tf.ones_like(std), std)
    return tf.cast(tf.where(flat, tf.zeros_like(normalised), normalised), tf.float32)


def _write_saved_model(model, folder: Path) -> None:
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


_FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    folder, inputs, outputs, signature = sys.argv[1:5]
    function = tf.saved_model.load(folder).signatures[signature]
    result = function(patch=tf.constant(np.load(inputs)))
    np.savez(outputs, **{name: value.numpy() for name, value in result.items()})
    if any(name.split(".")[0] == "vertseg_tf" for name in sys.modules):
        raise SystemExit("vertseg_tf was imported")
    """
)


def saved_model_outputs_in_fresh_process(
    folder, patches: np.ndarray, signature: str = "serving_default"
) -> dict[str, np.ndarray]:
    """Run a SavedModel signature in a new Python process that imports only TensorFlow.

    This is what a serving system sees: no vertseg-tf code, no registered Keras objects.

    Args:
        folder: the SavedModel (version) folder.
        patches: (N, 64, 64, 1) float32 input of the signature's `patch`.
        signature: the signature to call.

    Returns:
        The signature's outputs by name.

    Raises:
        ParityError: the process failed (its stderr tail is in the message).
    """
    with tempfile.TemporaryDirectory(prefix="vertseg-parity-") as work:
        inputs, outputs = Path(work) / "patches.npy", Path(work) / "outputs.npz"
        np.save(inputs, np.asarray(patches, dtype=np.float32))
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # The child runs in `work`, so a relative folder would name another place there.
        completed = subprocess.run(
            [sys.executable, "-c", _FRESH_PROCESS_SCRIPT, str(Path(folder).resolve()), str(inputs),
             str(outputs), signature],
            cwd=work, env=env, capture_output=True, text=True, check=False,
        )
        if completed.returncode != 0:
            tail = completed.stderr.strip().splitlines()[-3:]
            raise ParityError(f"{folder}: loading the SavedModel in a fresh process failed: "
                              + " | ".join(tail))
        with np.load(outputs) as result:
            return {name: result[name] for name in result.files}


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
          (a warning: an untrained model has no meaningful masks), not an error.

    Args:
        run_dir_or_model: RUN_DIR with `model.keras` (+ `config.json`), a `.keras` file, or a
            `keras.Model`.
        out: TF Serving base folder; the export goes to `out/<version>/`.
        version: positive integer version; `out/<version>` must not exist.
        tflite: TFLite variants to write, a subset of `TFLITE_VARIANTS` (or "a,b" text).
        representative: `(calibration, test)` normalised patches (N, 64, 64[, 1]); default
            `representative_patches(run_config)`.
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
        _write_saved_model(model, building)
        raise_if_interrupted()
        serve = _saved_model_server(building, fresh_process_parity)
        parity = _saved_model_parity(serve, test, reference, target, fresh_process_parity)
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
        write_json_atomic(manifest, building / MANIFEST_FILE)
    say(f"wrote {target}")
    return target


def _saved_model_server(folder: Path, fresh_process: bool):
    """`serve(patches, signature) -> outputs` of the SavedModel in `folder`: each call in a
    fresh process (as a serving system loads it), or loaded once in this process."""
    if fresh_process:
        def serve(patches: np.ndarray, signature: str) -> dict[str, np.ndarray]:
            return saved_model_outputs_in_fresh_process(folder, patches, signature)

        return serve
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))

    def serve_here(patches: np.ndarray, signature: str) -> dict[str, np.ndarray]:
        outputs = loaded.signatures[signature](patch=tf.constant(patches, tf.float32))
        return {name: value.numpy() for name, value in outputs.items()}

    return serve_here


def _saved_model_parity(
    serve, test: np.ndarray, reference: np.ndarray, target: Path, fresh_process: bool
) -> dict[str, Any]:
    """Both signatures against the Keras model; `ParityError` beyond SAVED_MODEL_TOLERANCE."""
    served = serve(test, "serving_default")[PROBABILITIES_OUTPUT]
    saved_model_error = float(np.abs(served - reference).max())
    if saved_model_error > SAVED_MODEL_TOLERANCE:
        raise ParityError(f"{target}: SavedModel differs from Keras by {saved_model_error:.3g}"
                          f" > {SAVED_MODEL_TOLERANCE:g}")
    raw = test * 37.5 + 1200.0  # any positive affine change of intensities normalises back
    raw_masks = serve(raw, "segment")[MASK_OUTPUT]
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
