"""The shipped-model plumbing: loading, the defaults of Segmenter / segment / export, the build."""

import json

import cv2
import numpy as np
import pytest

import vertseg_tf
from vertseg_tf import build_unet, pretrained
from vertseg_tf.cli import main
from vertseg_tf.data.dataset import load_dataset
from vertseg_tf.data.synthetic import generate, synthesize
from vertseg_tf.deploy import Segmenter
from vertseg_tf.errors import DataError


@pytest.fixture(scope="module")
def whole_patch_dir(tmp_path_factory):
    """A folder laid out like vertseg_tf/pretrained/ holding a smoke UNet whose output layer
    says 'vertebra' everywhere, so every mask is the whole patch (a known answer)."""
    model = build_unet("smoke")
    layer = model.get_layer("probabilities")
    kernel, _ = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.array([0.0, 5.0], np.float32)])
    folder = tmp_path_factory.mktemp("pretrained")
    model.save(folder / pretrained.MODEL_FILE)
    return folder


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    item = synthesize(0, 0, size="small")
    path = tmp_path_factory.mktemp("film") / "scan.png"
    cv2.imwrite(str(path), item.image)
    return path, np.array([v.center for v in item.record.vertebrae])


def test_missing_model_and_record_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="pretrained model is not installed"):
        pretrained.load_pretrained(tmp_path)
    with pytest.raises(DataError, match="record is not installed"):
        pretrained.pretrained_record(tmp_path)
    (tmp_path / pretrained.RECORD_FILE).write_text("{broken")
    with pytest.raises(DataError, match="not valid JSON"):
        pretrained.pretrained_record(tmp_path)


def test_segmenter_and_segment_cli_default_to_the_pretrained_model(
    whole_patch_dir, film, monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", whole_patch_dir)
    assert vertseg_tf.load_pretrained is pretrained.load_pretrained
    path, centers = film
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    explicit = Segmenter(str(whole_patch_dir / pretrained.MODEL_FILE)).segment(image, centers)
    segmenter = Segmenter()
    assert segmenter.source == "pretrained" and segmenter.kind == "keras"
    default = segmenter.segment(image, centers)
    for mine, reference in zip(default, explicit):
        np.testing.assert_allclose(mine.contour, reference.contour, atol=1e-9)
    spec = ";".join(f"{x},{y}" for x, y in centers)
    status = main(["segment", str(path), "--centers", spec, "--out", str(tmp_path / "seg")])
    assert status == 0, capsys.readouterr().err
    (record,) = load_dataset(tmp_path / "seg").images
    for vertebra, reference in zip(record.vertebrae, explicit):
        np.testing.assert_allclose(vertebra.contour, reference.contour, atol=1e-6)


def test_export_needs_exactly_one_model(capsys, tmp_path):
    assert main(["export", "--out", str(tmp_path), "--version", "1"]) == 1
    assert "either RUN_DIR or --model pretrained" in capsys.readouterr().err
    assert main(["export", "--model", "mine", "--out", str(tmp_path), "--version", "1"]) == 1
    assert "--model takes only 'pretrained'" in capsys.readouterr().err


@pytest.mark.slow
def test_build_ships_the_better_run_with_its_record(tmp_path):
    from vertseg_tf.build_pretrained import build_pretrained, score_run
    from vertseg_tf.training import TRAIN_PRESETS, train

    dataset = tmp_path / "data"
    generate(5, seed=1, out_dir=dataset, size="small", split_ratio=(4, 1), progress=False)
    cache = tmp_path / "cache"
    config = TRAIN_PRESETS["smoke"].replace(epochs=1, max_train_patches=30, augment_mirror=True)
    runs = {}
    for method in ("unet", "unet-s"):
        runs[method] = tmp_path / method
        train(config.replace(method=method), dataset, runs[method], cache_dir=cache)
    out = tmp_path / "shipped"
    record = build_pretrained(runs, dataset, out, notes="test", cache_dir=cache)
    # The choice, recomputed here from the candidates' validation errors.
    errors = {m: record["candidates"][m]["validation"]["mean_error_px"] for m in runs}
    assert record["shipped"] == min(errors, key=errors.get)
    assert record["trained_on"].startswith("synthetic")
    assert record["data"]["test_vertebrae"] == 5 and record["epochs"] == 1
    assert record["candidates"]["unet"]["config"]["augment_mirror"] is True
    assert json.loads((out / pretrained.RECORD_FILE).read_text()) == record
    shipped = pretrained.load_pretrained(out)
    source = vertseg_tf.deploy.inference.load_keras_model(runs[record["shipped"]] / "model.keras")
    for mine, theirs in zip(shipped.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    from vertseg_tf.data.dataset import load_dataset as load
    from vertseg_tf.data.patches import PatchSet

    test = PatchSet.from_dataset(load(dataset), "test", False, cache_dir=cache, progress=False)
    assert record["test"] == score_run(runs[record["shipped"]], test)


@pytest.mark.slow
def test_export_model_pretrained_exports_the_shipped_model(
    whole_patch_dir, monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", whole_patch_dir)
    status = main(["export", "--model", "pretrained", "--out", str(tmp_path / "serving"),
                   "--version", "1", "--tflite", ""])
    assert status == 0, capsys.readouterr().err
    import tensorflow as tf

    served = tf.saved_model.load(str(tmp_path / "serving" / "1")).signatures["serving_default"]
    patch = np.random.default_rng(0).standard_normal((2, 64, 64, 1)).astype(np.float32)
    (probabilities,) = served(patch=tf.constant(patch)).values()
    # The whole-patch model: softmax of logits (0, 5) at every pixel.
    expected = np.exp([0.0, 5.0]) / np.exp([0.0, 5.0]).sum()
    np.testing.assert_allclose(probabilities.numpy(), np.broadcast_to(expected, (2, 64, 64, 2)),
                               atol=1e-6)


def test_the_shipped_model_loads_and_its_record_says_how_it_was_made():
    from vertseg_tf.model import PRESETS, UNet

    path = pretrained.PRETRAINED_DIR / pretrained.MODEL_FILE
    assert path.stat().st_size <= 10 * 2**20
    model = pretrained.load_pretrained()
    assert isinstance(model, UNet) and model.output_shape == (None, 64, 64, 2)
    record = pretrained.pretrained_record()
    assert record["trained_on"].startswith("synthetic")
    assert set(record["candidates"]) == {"unet", "unet-s"}
    assert record["shipped"] in record["candidates"]
    assert model.unet_config == PRESETS[record["model_preset"]]
    assert record["parameters"] == model.count_params()
    assert record["data"]["generator_version"] == 2
    assert record["candidates"][record["shipped"]]["config"]["augment_mirror"] is True
    for name in ("recipe", "seed", "commit", "epochs", "wall_time_s", "test"):
        assert record[name] is not None, name
    assert set(record["test"]) == {"vertebrae", "dice", "pixel_accuracy", "mean_error_px",
                                   "fit_failure"}


def test_segment_runs_on_a_synthetic_film_with_no_model(film, tmp_path, capsys):
    path, centers = film
    spec = ";".join(f"{x},{y}" for x, y in centers)
    status = main(["segment", str(path), "--centers", spec, "--out", str(tmp_path / "seg"),
                   "--labels", "C3,C4,C5,C6,C7"])
    assert status == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert all(f"  C{k}: " in printed for k in range(3, 8))
    assert (tmp_path / "seg" / "dataset.json").is_file()
    assert (tmp_path / "seg" / "overlay.png").is_file()


def test_candidate_runs_are_read_through_their_run_folder(tmp_path):
    from vertseg_tf.build_pretrained import _finished_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"config": {"method": "unet-s"}}', encoding="utf-8")
    with pytest.raises(DataError, match="is the run finished"):
        _finished_run(run)
    (run / "summary.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(DataError, match="summary.json: not valid JSON"):
        _finished_run(run)
    (run / "summary.json").write_text('{"epochs": 3}', encoding="utf-8")
    assert _finished_run(run) == ({"epochs": 3}, {"config": {"method": "unet-s"}})
