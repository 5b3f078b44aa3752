"""The SavedModel's `locate` signature: its graph against the numpy locator, its export parity,
a film served without vertseg_tf, and bad input.

The in-graph pieces are checked in this process (fast); exporting and serving start fresh
TensorFlow processes and take tens of seconds, so those tests are slow.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from vertseg_tf import build_unet
from vertseg_tf.cli import main
from vertseg_tf.deploy import export_run
from vertseg_tf.deploy.locate_signature import parity_films
from vertseg_tf.locate import Locator
from vertseg_tf.locate.heatmaps import local_mass, render_heatmaps
from vertseg_tf.locate.network import LocatorSpec, prepare_canvas

CANVAS = 64
SHIFTS = (-10, -6, -2, 2, 6)
"""Rows (heatmap pixels) from the film's brightest spot to C2, C3, C4, C5, C6 of
`_blob_locator`."""
LEVELS = 7


def _blob_locator():
    """A hand-built locator of C2-T1: the logits of C2-C6 are 8 x the 2 x 2-pooled canvas
    shifted by `SHIFTS` rows, and zero for C7 and T1, so C2-C6 peak above and below the
    brightest spot of the film and C7 and T1 spread their mass evenly (hidden levels: reported
    missing)."""
    inputs = keras.Input((CANVAS, CANVAS, 1))
    pooled = keras.layers.AveragePooling2D(2)(inputs)
    reach = max(abs(shift) for shift in SHIFTS)
    logits = keras.layers.Conv2D(LEVELS, 2 * reach + 1, padding="same", use_bias=False)(pooled)
    side = CANVAS // 2
    flat = keras.layers.Reshape((side * side, LEVELS))(logits)
    spread = keras.layers.Softmax(axis=1)(flat)
    model = keras.Model(inputs, keras.layers.Reshape((side, side, LEVELS))(spread),
                        name="vertseg_locator_C2_T1")
    kernel = np.zeros((2 * reach + 1, 2 * reach + 1, 1, LEVELS), np.float32)
    for level, shift in enumerate(SHIFTS):
        kernel[reach - shift, reach, 0, level] = 8.0  # output row r reads row r - shift
    model.layers[2].set_weights([kernel])
    return Locator(model)


def _film(shape=(300, 200), center=(71.0, 113.0), sigma=9.0):
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    blob = np.exp(-((cols - center[0]) ** 2 + (rows - center[1]) ** 2) / (2 * sigma**2))
    return (1000.0 + 3000.0 * blob).astype(np.float32)


def _chain_maps(seed):
    """Spatial distributions of 5 levels down a 24 x 20 map: sharp peaks on a spine with a
    second, weaker peak a level away for some, one level flat (hidden) and noise."""
    rng = np.random.default_rng(seed)
    spine = np.array([[8.0 + 0.3 * k, 3.2 + 4.1 * k] for k in range(5)])
    maps = render_heatmaps(spine, (24, 20), 1.1)
    decoy = render_heatmaps(spine[[1, 2, 3, 4, 0]], (24, 20), 1.1)
    maps += rng.uniform(0.0, 0.8, 5)[None, None] * decoy
    maps[..., rng.integers(0, 5)] = 0.0
    maps += rng.uniform(0.0, 0.01, maps.shape)
    return (maps / maps.sum(axis=(0, 1))).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.3, 0.0])
def test_graph_decoding_matches_decode_chain_with_local_mass(seed, threshold):
    import tensorflow as tf

    from vertseg_tf.deploy.chain_graph import decode_chain_in_graph
    from vertseg_tf.locate.heatmaps import decode_chain

    maps = _chain_maps(seed)
    xy, confidence, found = (t.numpy() for t in decode_chain_in_graph(tf.constant(maps),
                                                                      threshold))
    reference = decode_chain(maps, threshold, confidence=local_mass(maps))
    assert found.tolist() == [p.found for p in reference]
    np.testing.assert_allclose(confidence, [p.confidence for p in reference], atol=1e-9)
    np.testing.assert_allclose(xy, np.array([p.xy for p in reference]), atol=1e-9)


def test_the_chain_cases_are_not_the_independent_maxima():
    """Some of the cases above place a level elsewhere than its own channel's maximum (or
    drop it), so a decoder that ignored the chain would fail them."""
    from vertseg_tf.locate.heatmaps import decode_chain, decode_peaks

    differs = 0
    for seed in range(6):
        maps = _chain_maps(seed)
        chain = decode_chain(maps, 0.0, confidence=local_mass(maps))
        alone = decode_peaks(maps, 0.0, confidence=local_mass(maps))
        differs += any(a.found != b.found or (a.found and not np.allclose(a.xy, b.xy))
                       for a, b in zip(chain, alone))
    assert differs >= 2


@pytest.mark.parametrize("shape", [(543, 478), (300, 201), (40, 64), (2, 2)])
def test_graph_canvas_matches_prepare_canvas(shape):
    import tensorflow as tf

    from vertseg_tf.deploy.locate_signature import _canvas_in_graph

    image = np.random.default_rng(shape[0]).uniform(0, 4000, shape).astype(np.float32)
    expected, geometry = prepare_canvas(image, LocatorSpec(long_side=CANVAS))
    canvas, scale = _canvas_in_graph(tf.constant(image), CANVAS)
    assert float(scale) == geometry.scale
    np.testing.assert_allclose(canvas.numpy(), expected, atol=1e-4)


def test_parity_films_cover_both_orientations_and_a_small_film():
    films, source = parity_films(count=2)
    assert len(films) == 4 and "synthetic v2" in source
    assert films[2].shape == films[0].shape[::-1]
    assert films[3].shape == (-(-films[0].shape[0] // 5), -(-films[0].shape[1] // 3))


@pytest.fixture(scope="module")
def blob_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("locate")
    keras.utils.set_random_seed(1)
    patches = np.random.default_rng(0).normal(size=(4, 64, 64, 1)).astype(np.float32)
    films = [_film(), _film((256, 331), (250.0, 128.0)), _film((90, 70), (30.5, 45.0), 4.0)]
    unet = build_unet("smoke")
    target = export_run(unet, root / "models", 1, tflite=(), representative=(patches, patches),
                        locator=_blob_locator(), locate_films=films, progress=False)
    return unet, target


# Runs in a fresh interpreter that can import TensorFlow and numpy but not vertseg_tf.
_SERVE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    folder, film_file, out_file = sys.argv[1:4]
    signatures = tf.saved_model.load(folder).signatures
    film = tf.constant(np.load(film_file))
    out = {k: v.numpy() for k, v in signatures["locate"](image=film).items()}
    cut = {k: v.numpy() for k, v in signatures["segment_radiograph"](image=film).items()}
    errors = []
    for name in ("locate", "segment_radiograph"):
        for bad in (np.zeros((1, 30, 20), np.float32), np.zeros((30,), np.float32),
                    np.zeros((1, 20), np.float32)):
            try:
                signatures[name](image=tf.constant(bad))
            except tf.errors.InvalidArgumentError as error:
                errors.append(" ".join(error.message.split()))
    np.savez(out_file, masks=cut["masks"], affines=cut["affines"], centers=cut["centers"])
    print(json.dumps({
        "centers": np.where(np.isnan(out["centers"]), -1.0, out["centers"]).tolist(),
        "found": out["found"].tolist(), "labels": [x.decode() for x in out["labels"]],
        "confidences": out["confidences"].tolist(), "scale": float(out["scale"]),
        "missing_is_nan": bool(np.isnan(out["centers"][~out["found"]]).all()),
        "segmented": [x.decode() for x in cut["labels"]], "errors": errors,
        "imported": sorted(m for m in sys.modules if m.split(".")[0] == "vertseg_tf")}))
    """
)


@pytest.mark.slow
def test_export_records_locate_parity_and_the_locator(blob_export):
    manifest = json.loads((blob_export[1] / "manifest.json").read_text())
    parity = manifest["parity"]["locate"]
    assert parity["passed"] and parity["problem"] is None
    assert parity["max_center_diff_px"] <= 0.05 and parity["max_confidence_diff"] <= 2e-3
    # C2-C6 are found on every parity film (they peak around its brightest spot), C7 and T1
    # never; C2 is located but not segmented
    assert parity["levels_found"] == 5 * parity["films"] == 15
    assert parity["levels"] == 7 * parity["films"]
    assert manifest["locator"]["levels"] == ["C2", "C3", "C4", "C5", "C6", "C7", "T1"]
    cut = manifest["parity"]["segment_radiograph"]
    assert cut["passed"] and cut["vertebrae"] == 12 and cut["films_refused_by_python"] == 0
    assert cut["max_placement_diff_px"] <= cut["placement_tolerance_px"] == 0.5
    assert cut["mask_pixel_agreement"] >= 0.999
    assert manifest["locator"]["canvas"] == CANVAS and manifest["locator"]["stride"] == 2
    assert manifest["locator"]["missing_threshold"] == 0.3
    assert manifest["locator"]["source"] == "in-memory model"
    assert manifest["locator"]["parity_films"] == "3 films given by the caller"
    assert manifest["signatures"]["locate"]["inputs"] == {
        "image": {"dtype": "float32", "shape": [None, None]}}
    assert set(manifest["signatures"]) == {"serving_default", "segment", "locate",
                                           "segment_radiograph"}


@pytest.mark.slow
def test_whole_film_signatures_served_without_vertseg_tf(blob_export, tmp_path):
    from vertseg_tf.data.patches import patch_to_image
    from vertseg_tf.deploy import Segmenter

    unet, target = blob_export
    center = (71.0, 113.0)
    film = _film(center=center)
    np.save(tmp_path / "film.npy", film)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-c", _SERVE, str(target), str(tmp_path / "film.npy"),
         str(tmp_path / "cut.npz")],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    assert served["imported"] == []
    assert served["labels"] == ["C2", "C3", "C4", "C5", "C6", "C7", "T1"]
    assert served["found"] == [True] * 5 + [False] * 2 and served["missing_is_nan"]
    assert served["scale"] == pytest.approx(CANVAS / 300)
    # known by construction: SHIFTS heatmap rows (2 / scale image px each) from the blob,
    # within half a heatmap pixel
    pixel = 2.0 / served["scale"]
    for xy, shift in zip(served["centers"][:5], SHIFTS):
        assert np.linalg.norm(np.subtract(xy, (center[0], center[1] + shift * pixel))) <= (
            pixel / 2)
    # and the Python path's centres, confidences, patch affines and masks on the same film
    locator = _blob_locator()
    reference = locator.locate(film)
    np.testing.assert_allclose(served["centers"][:5], [r.center for r in reference[:5]],
                               atol=0.01)
    np.testing.assert_allclose(served["confidences"], [r.confidence for r in reference],
                               atol=1e-3)
    assert not reference[5].found and not reference[6].found
    cut = np.load(tmp_path / "cut.npz")
    # the graph segments from the located centres and refines them as segment_located does
    segmented = Segmenter(unet, locator=locator).segment_located(film, reference)
    assert served["segmented"] == [r.label for r in segmented] == ["C3", "C4", "C5", "C6"]
    assert cut["masks"].dtype == np.uint8 and cut["masks"].shape == (4, 64, 64)
    for k, result in enumerate(segmented):
        # the patch centre maps back to the refined centre, the Python path's
        np.testing.assert_allclose(patch_to_image(np.array([[31.5, 31.5]]), cut["affines"][k]),
                                   [cut["centers"][k]], atol=1e-3)
        np.testing.assert_allclose(cut["centers"][k], result.center, atol=1e-3)
        np.testing.assert_allclose(cut["affines"][k], result.affine, atol=1e-3)
        assert (cut["masks"][k] == result.patch_mask).mean() >= 0.999
    assert len(served["errors"]) == 6
    for rank, vector, thin in (served["errors"][:3], served["errors"][3:]):
        assert "check_image_is_2d" in rank
        assert "[1,30,20] is not compatible with expected shape [?,?]" in rank
        assert "[30] is not compatible with expected shape [?,?]" in vector
        assert "the image must be at least 2 x 2 pixels" in thin


@pytest.mark.slow
def test_cli_export_adds_the_shipped_locator_by_default_and_none_leaves_it_out(tmp_path, capsys):
    keras.utils.set_random_seed(2)
    run = tmp_path / "run"
    run.mkdir()
    build_unet("smoke").save(run / "model.keras")
    base = ["export", str(run), "--out", str(tmp_path / "models"), "--tflite", ""]
    assert main([*base, "--version", "1"]) == 0
    assert "locate: same levels found on 5 films" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "models" / "1" / "manifest.json").read_text())
    assert manifest["locator"]["source"] == "pretrained"
    assert manifest["locator"]["canvas"] == 256 and manifest["parity"]["locate"]["passed"]
    assert manifest["parity"]["segment_radiograph"]["passed"]
    assert main([*base, "--version", "2", "--locator", "none"]) == 0
    assert "no locate signature" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "models" / "2" / "manifest.json").read_text())
    assert set(manifest["signatures"]) == {"serving_default", "segment"}
    assert "locator" not in manifest


def test_cli_export_defaults_to_the_shipped_locator_when_installed(tmp_path, monkeypatch):
    from vertseg_tf import pretrained
    from vertseg_tf.cli.deploy import _export_locator

    assert _export_locator("none") is None and _export_locator("NONE") is None
    assert _export_locator("runs/locator") == "runs/locator"
    assert (pretrained.PRETRAINED_DIR / pretrained.LOCATOR_FILE).is_file()
    assert _export_locator(None) == "pretrained"
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    assert _export_locator(None) is None
