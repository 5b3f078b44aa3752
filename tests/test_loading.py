"""vertseg_tf.load_model, UNet.from_preset and the registration of the Keras objects."""

import ast
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import keras
import numpy as np
import pytest

import vertseg_tf
from vertseg_tf import KERAS_OBJECT_MODULES, UNet, build_unet, load_model
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.loading import unregistered_class_hint
from vertseg_tf.model import PRESETS

PACKAGE = Path(vertseg_tf.__file__).resolve().parent


def _patches(count=3, seed=0):
    return np.random.default_rng(seed).normal(size=(count, 64, 64, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def saved_unet(tmp_path_factory):
    """A seeded smoke UNet saved as a .keras file and as a run folder's model.keras."""
    keras.utils.set_random_seed(3)
    model = build_unet("smoke")
    root = tmp_path_factory.mktemp("saved")
    model.save(root / "unet.keras")
    (root / "run").mkdir()
    model.save(root / "run" / "model.keras")
    return model, root


@pytest.mark.parametrize("form", ["unet.keras", "run"])
def test_keras_file_and_run_folder_round_trip(saved_unet, form):
    model, root = saved_unet
    loaded = load_model(root / form)
    assert loaded.kind == "keras" and isinstance(loaded.keras_model, UNet)
    assert loaded.keras_model.unet_config == PRESETS["smoke"]
    for mine, theirs in zip(loaded.keras_model.weights, model.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    patches = _patches()
    expected = keras.ops.convert_to_numpy(model(patches, training=False))
    np.testing.assert_allclose(loaded.predict_patches(patches), expected, atol=1e-6)


def test_an_unregistered_class_names_the_import_that_fixes_it(saved_unet, monkeypatch):
    _, root = saved_unet
    monkeypatch.delitem(keras.saving.get_custom_objects(), "vertseg_tf>UNet")
    with pytest.raises(DataError) as raised:
        load_model(root / "unet.keras")
    message = str(raised.value)
    assert "unet.keras" in message and "'UNet'" in message
    assert "`import vertseg_tf.model`" in message


def test_the_hint_tells_a_class_of_another_version_and_ignores_foreign_classes():
    def error(module):
        return TypeError(f"Could not locate class 'Layer9'. Full object config: "
                         f"{{'module': '{module}', 'class_name': 'Layer9'}}")

    assert "another version" in unregistered_class_hint(error("vertseg_tf.not_here"), "m.keras")
    assert unregistered_class_hint(error("someone_else.layers"), "m.keras") is None
    assert unregistered_class_hint(ValueError("truncated file"), "m.keras") is None


def test_every_module_that_registers_keras_objects_is_listed():
    registering = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.Attribute) and node.attr == "register_keras_serializable"
               for node in ast.walk(tree)):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            registering.add(".".join(parts))
    assert registering == set(KERAS_OBJECT_MODULES)


@pytest.mark.parametrize("preset", ["smoke", "demo", "paper"])
def test_from_preset_builds_the_untrained_preset(preset):
    model = UNet.from_preset(preset)
    assert isinstance(model, UNet) and model.unet_config == PRESETS[preset]
    assert model.name == f"unet_{preset}"


def test_from_preset_refuses_an_unknown_name_listing_the_known_ones():
    with pytest.raises(ConfigError, match="'large'.*paper, demo, study, smoke, cpu, pretrained"):
        UNet.from_preset("large")


def test_pretrained_goes_through_the_shipped_loader(monkeypatch):
    shipped = build_unet("smoke", name="shipped")
    module = types.ModuleType("vertseg_tf.pretrained")
    module.load_pretrained = lambda: shipped
    monkeypatch.setitem(sys.modules, "vertseg_tf.pretrained", module)
    loaded = load_model("pretrained")
    assert loaded.keras_model is shipped and loaded.kind == "keras"
    assert loaded.source == "pretrained"
    assert UNet.from_preset("pretrained") is shipped


def test_pretrained_is_the_shipped_model_with_its_recorded_size():
    from vertseg_tf.pretrained import MODEL_FILE, PRETRAINED_DIR, pretrained_record

    loaded = load_model("pretrained")
    assert loaded.kind == "keras" and loaded.source == "pretrained"
    assert loaded.keras_model.count_params() == pretrained_record()["parameters"]
    plain = keras.saving.load_model(PRETRAINED_DIR / MODEL_FILE, compile=False)
    patches = _patches()
    expected = keras.ops.convert_to_numpy(plain(patches, training=False))
    np.testing.assert_allclose(loaded.predict_patches(patches), expected, atol=1e-6)
    preset = UNet.from_preset("pretrained")
    for mine, theirs in zip(preset.weights, plain.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_pretrained_without_the_shipped_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vertseg_tf.pretrained", None)
    with pytest.raises(ConfigError, match="ships no pretrained model"):
        load_model("pretrained")


def test_unknown_files_are_one_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt.*unknown model type"):
        load_model(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="missing.keras.*not found"):
        load_model(tmp_path / "missing.keras")


@pytest.mark.slow
def test_saved_model_serving_base_and_tflite_round_trip(saved_unet, tmp_path):
    from vertseg_tf.deploy.export import export_run

    model, root = saved_unet
    patches = _patches(8, seed=1)
    base = tmp_path / "models" / "vertseg"
    version = export_run(root / "unet.keras", base, 1, tflite="float32",
                         representative=(patches[:4], patches), progress=False,
                         fresh_process_parity=False)
    expected = keras.ops.convert_to_numpy(model(patches, training=False))
    for path, kind, tolerance in (
        (base, "saved_model", 1e-5),
        (version, "saved_model", 1e-5),
        (version / "tflite" / "vertseg_float32.tflite", "tflite", 1e-4),
    ):
        loaded = load_model(path)
        assert loaded.kind == kind and loaded.keras_model is None
        np.testing.assert_allclose(loaded.predict_patches(patches), expected, atol=tolerance)


@pytest.mark.slow
def test_a_plain_keras_load_works_once_a_vertseg_tf_name_is_used(tmp_path):
    model = build_unet("smoke")
    model.compile(loss=vertseg_tf.losses.ShapeAwareLoss(),
                  metrics=[vertseg_tf.metrics_keras.DiceCoefficient()])
    model.save(tmp_path / "compiled.keras")
    script = textwrap.dedent(
        """
        import sys
        import keras
        import vertseg_tf
        try:
            keras.saving.load_model(sys.argv[1])
        except TypeError as error:
            print("before:", str(error).split(".")[0])
        vertseg_tf.UNet
        model = keras.saving.load_model(sys.argv[1])
        print("after:", type(model).__name__, type(model.loss).__name__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "compiled.keras")],
        capture_output=True, text=True, check=True, cwd=PACKAGE.parent,
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.stdout.splitlines() == [
        "before: Could not locate class 'UNet'",
        "after: UNet ShapeAwareLoss",
    ]
