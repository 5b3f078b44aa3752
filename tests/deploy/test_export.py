"""Export: SavedModel in a process without vertseg_tf, signatures, TFLite parity, int8 agreement.

Exporting and converting take tens of seconds on two cores: every test here is slow.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from vertseg_tf import build_unet
from vertseg_tf.cli import main
from vertseg_tf.data.patches import TRAIN_ALPHAS, TRAIN_ANGLES, PatchSet, extract_patches
from vertseg_tf.data.synthetic import synthesize
from vertseg_tf.deploy import Segmenter, export_run
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.evaluation.metrics import dice
from vertseg_tf.geometry import polygon_centroid

pytestmark = pytest.mark.slow

EXAMPLE_REQUEST = Path(__file__).resolve().parents[2] / "export" / "example_request.json"

# Runs in a fresh interpreter that can import TensorFlow and numpy but not vertseg_tf.
_SERVE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    folder, patches_file, raw_file, out_file = sys.argv[1:5]
    loaded = tf.saved_model.load(folder)
    specs = {}
    for name, function in loaded.signatures.items():
        inputs = function.structured_input_signature[1]
        specs[name] = {
            "inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in inputs.items()},
            "outputs": {k: [v.dtype.name, v.shape.as_list()]
                        for k, v in function.structured_outputs.items()},
        }
    probabilities = loaded.signatures["serving_default"](patch=tf.constant(np.load(patches_file)))
    mask = loaded.signatures["segment"](patch=tf.constant(np.load(raw_file)))
    errors = []
    bad_inputs = (np.zeros((1, 32, 32, 1), np.float32), np.zeros((1, 64, 64), np.float32),
                  np.zeros((1, 64, 64, 1), np.float64))
    for name in ("serving_default", "segment"):
        for bad in bad_inputs:
            try:
                loaded.signatures[name](patch=tf.constant(bad))
            except tf.errors.InvalidArgumentError as error:
                errors.append(" ".join(error.message.split()))
    np.savez(out_file, probabilities=probabilities["probabilities"].numpy(),
             mask=mask["mask"].numpy())
    imported = sorted(m for m in sys.modules if m.split(".")[0] == "vertseg_tf")
    print(json.dumps({"specs": specs, "errors": errors, "imported": imported}))
    """
)


def _normalise_reference(raw):
    """Per-patch zero mean, unit population std in float64, written independently here."""
    raw = raw.astype(np.float64)
    mean = raw.mean(axis=(1, 2, 3), keepdims=True)
    std = raw.std(axis=(1, 2, 3), keepdims=True)
    return ((raw - mean) / std).astype(np.float32)


def _patches(indices, augment):
    parts = []
    for index in indices:
        item = synthesize(5, index, size="small")
        vertebrae = item.record.vertebrae
        grid = {"alphas": TRAIN_ALPHAS, "angles": TRAIN_ANGLES} if augment else {}
        parts.append(extract_patches(item.image.astype(np.float32),
                                     np.array([v.center for v in vertebrae]),
                                     [v.contour for v in vertebrae], **grid))
    return PatchSet.concatenate(parts)


@pytest.fixture(scope="module")
def untrained_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("untrained")
    keras.utils.set_random_seed(1)
    model = build_unet("smoke")
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"model": model.unet_config.to_dict()}))
    patches = _patches([0, 1], augment=False).x()
    target = export_run(run, root / "models" / "vertseg", 1, tflite="float32",
                        representative=(patches[:4], patches), progress=False)
    return model, target, patches


def test_saved_model_in_a_process_without_vertseg_tf(untrained_export, tmp_path):
    model, target, patches = untrained_export
    raw = patches * 250.0 + 3000.0
    np.save(tmp_path / "patches.npy", patches)
    np.save(tmp_path / "raw.npy", raw)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-c", _SERVE, str(target), str(tmp_path / "patches.npy"),
         str(tmp_path / "raw.npy"), str(tmp_path / "out.npz")],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["imported"] == []
    assert report["specs"] == {
        "serving_default": {"inputs": {"patch": ["float32", [None, 64, 64, 1]]},
                            "outputs": {"probabilities": ["float32", [None, 64, 64, 2]]}},
        "segment": {"inputs": {"patch": ["float32", [None, 64, 64, 1]]},
                    "outputs": {"mask": ["uint8", [None, 64, 64]]}},
    }
    # wrong size, wrong rank, wrong dtype: each refused with one clear message per signature
    assert len(report["errors"]) == 6
    assert all("is not compatible with expected shape [?,64,64,1]" in e
               for i, e in enumerate(report["errors"]) if i % 3 < 2), report["errors"]
    assert all("expected to be a float tensor" in e for e in report["errors"][2::3])
    served = np.load(tmp_path / "out.npz")
    expected = keras.ops.convert_to_numpy(model(patches, training=False))
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5, rtol=0)
    reference_mask = np.argmax(
        keras.ops.convert_to_numpy(model(_normalise_reference(raw), training=False)), -1
    )
    assert served["mask"].dtype == np.uint8
    assert (served["mask"] == reference_mask).mean() >= 0.999


def test_manifest_and_tflite_float32_parity(untrained_export):
    model, target, patches = untrained_export
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["tflite"] == {"float32": "tflite/vertseg_float32.tflite"}
    assert manifest["versions"]["keras"] == keras.__version__
    assert manifest["model"]["unet_config"] == model.unet_config.to_dict()
    assert manifest["run_config"] == {"model": model.unet_config.to_dict()}
    assert manifest["parity"]["saved_model"]["max_abs_diff"] <= 1e-5
    assert manifest["parity"]["saved_model"]["loaded_in"] == "fresh process"
    lite = Segmenter(target / manifest["tflite"]["float32"]).predict_patches(patches)
    expected = keras.ops.convert_to_numpy(model(patches, training=False))
    np.testing.assert_allclose(lite, expected, atol=1e-4, rtol=0)
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]


def test_parity_checked_in_the_exporting_process(untrained_export, tmp_path, monkeypatch):
    from vertseg_tf.deploy import fresh_process

    def no_fresh_process(*args, **kwargs):
        raise AssertionError("a fresh process was started")

    monkeypatch.setattr(fresh_process, "signature_outputs_in_fresh_process", no_fresh_process)
    model, _, patches = untrained_export
    target = export_run(model, tmp_path / "vertseg", 1, tflite=(),
                        representative=(patches[:4], patches), progress=False,
                        fresh_process_parity=False)
    parity = json.loads((target / "manifest.json").read_text())["parity"]
    assert parity["saved_model"]["loaded_in"] == "exporting process"
    assert parity["saved_model"]["max_abs_diff"] <= 1e-5
    assert parity["segment_signature"]["mask_pixel_agreement"] >= 0.999
    assert parity["test_patches"] == len(patches)


def test_example_request_through_serving_default(untrained_export):
    import tensorflow as tf

    _, target, _ = untrained_export
    request = json.loads(EXAMPLE_REQUEST.read_text())
    assert request["signature_name"] == "serving_default"
    instances = np.array(request["instances"], dtype=np.float32)
    assert instances.shape == (1, 64, 64, 1)
    signature = tf.saved_model.load(str(target)).signatures[request["signature_name"]]
    output = signature(patch=tf.constant(instances))["probabilities"].numpy()
    assert output.shape == (1, 64, 64, 2)
    np.testing.assert_allclose(output.sum(-1), 1.0, atol=1e-5)


def test_export_refuses_bad_requests(untrained_export, tmp_path, capsys):
    _, target, patches = untrained_export
    with pytest.raises(ConfigError, match="version folder exists"):
        export_run(target.parent.parent.parent / "run", target.parent, 1,
                   representative=(patches, patches))
    with pytest.raises(ConfigError, match="unknown TFLite variant"):
        export_run(target.parent.parent.parent / "run", tmp_path, 2, tflite="int4")
    with pytest.raises(DataError, match="model file not found"):
        export_run(tmp_path / "no_run", tmp_path, 1)
    code = main(["export", str(tmp_path / "no_run"), "--out", str(tmp_path), "--version", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "model file not found" in err[0]


@pytest.fixture(scope="module")
def trained_export(tmp_path_factory):
    """A smoke UNet trained briefly on synthetic patches, exported with all TFLite variants."""
    from vertseg_tf.losses import PixelLogLoss

    train = _patches(range(6), augment=True)
    keras.utils.set_random_seed(0)
    model = build_unet("smoke")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=PixelLogLoss())
    model.fit(train.x(), train.y_true(), batch_size=32, epochs=8, verbose=0)
    test = _patches(range(20, 26), augment=False)
    calibration = train.x()[np.random.default_rng(0).permutation(len(train))[:128]]
    target = export_run(model, tmp_path_factory.mktemp("trained") / "vertseg", 3,
                        representative=(calibration, test.x()), progress=False)
    return model, target, test


def test_trained_model_segments_and_int8_agrees(trained_export):
    model, target, test = trained_export
    float_masks = np.argmax(keras.ops.convert_to_numpy(model(test.x())), -1) == 1
    assert np.mean(dice(test.masks, float_masks)) >= 0.9  # it has learnt to segment
    int8 = Segmenter(target / "tflite" / "vertseg_int8.tflite").predict_patches(test.x())
    assert np.mean(dice(float_masks, np.argmax(int8, -1) == 1)) >= 0.98
    float16 = Segmenter(target / "tflite" / "vertseg_float16.tflite").predict_patches(test.x())
    np.testing.assert_allclose(float16, keras.ops.convert_to_numpy(model(test.x())), atol=1e-2)
    parity = json.loads((target / "manifest.json").read_text())["parity"]
    assert parity["tflite_int8"]["passed"] and parity["tflite_float32"]["passed"]


@pytest.mark.parametrize("form", ["saved_model", "int8"])
def test_trained_segmenter_places_contours_on_the_vertebrae(trained_export, form):
    _, target, _ = trained_export
    path = target if form == "saved_model" else target / "tflite" / "vertseg_int8.tflite"
    segmenter = Segmenter(path)
    for index in (30, 31, 32):
        # a few radiographs without implants or fractures: the fixture's model has seen too
        # few of those to outline them
        item = synthesize(5, index, size="small", hard_fraction=0.0)
        vertebrae = item.record.vertebrae
        results = segmenter.segment(item.image, np.array([v.center for v in vertebrae]))
        for result, vertebra in zip(results, vertebrae):
            gap = np.linalg.norm(polygon_centroid(result.contour)
                                 - polygon_centroid(vertebra.contour))
            assert gap <= 2.0, (index, vertebra.label, gap)


def test_representative_patches_come_from_the_runs_dataset(tmp_path, monkeypatch):
    from vertseg_tf.data.dataset import load_dataset
    from vertseg_tf.data.synthetic import generate
    from vertseg_tf.deploy.export import representative_patches

    monkeypatch.setenv("VERTSEG_TF_CACHE", str(tmp_path / "cache"))
    generate(2, 4, tmp_path / "data", size="small", split_ratio=(1, 1), progress=False)
    calibration, test, source = representative_patches({"dataset": str(tmp_path / "data")}, 16)
    assert calibration.shape == (16, 64, 64, 1) and test.shape == (5, 64, 64, 1)
    assert str(tmp_path / "data") in source
    train = PatchSet.from_dataset(load_dataset(tmp_path / "data"), "train", True).x()
    for patch in calibration:
        assert np.any(np.all(train == patch, axis=(1, 2, 3)))


def test_relative_paths_export_like_absolute_ones(untrained_export, tmp_path, monkeypatch):
    """The parity child runs in another working folder: it must get an absolute path."""
    _, target, patches = untrained_export
    run = target.parent.parent.parent / "run"
    monkeypatch.chdir(tmp_path)
    relative = export_run(os.path.relpath(run), "models/v", 3, tflite=(),
                          representative=(patches[:4], patches), progress=False)
    assert relative == Path("models/v/3")
    manifest = json.loads((tmp_path / "models" / "v" / "3" / "manifest.json").read_text())
    assert manifest["parity"]["saved_model"]["loaded_in"] == "fresh process"
    assert manifest["parity"]["saved_model"]["max_abs_diff"] <= 1e-5
    assert [p.name for p in (tmp_path / "models" / "v").iterdir()] == ["3"]
