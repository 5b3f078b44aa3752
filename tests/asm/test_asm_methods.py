import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from vertseg_tf.asm import ASM_METHODS, ASMG, ASMM, ASMRF, fit_asm, load_asm
from vertseg_tf.asm.asm_rf import flatten_forests, predict_flat_forests
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.training import fit_asm_run


def rectangle(first_col, last_col, first_row, last_row, noise_seed=None):
    """Bright pixels in [first, last] on a dark background, and the outline through pixel edges."""
    image = np.zeros((64, 64))
    image[first_row : last_row + 1, first_col : last_col + 1] = 1.0
    if noise_seed is not None:
        image += np.random.default_rng(noise_seed).normal(scale=0.05, size=image.shape)
    x0, x1, y0, y1 = first_col - 0.5, last_col + 0.5, first_row - 0.5, last_row + 0.5
    return image, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def distance_to_polygon(points, polygon):
    """Exact distance of each point to a closed polyline (numpy reference)."""
    a = polygon[None, :, :]
    b = np.roll(polygon, -1, axis=0)[None, :, :]
    p = points[:, None, :]
    t = np.clip(np.sum((p - a) * (b - a), axis=2) / np.sum((b - a) ** 2, axis=2), 0.0, 1.0)
    closest = a + t[..., None] * (b - a)
    return np.min(np.linalg.norm(p - closest, axis=2), axis=1)


@pytest.mark.parametrize("shift", [(3, 0), (0, 3), (-2, 2)])
def test_asm_g_finds_bright_rectangle_from_offset_start(shift):
    rng = np.random.default_rng(0)
    images, contours = [], []
    for index in range(24):
        half_w, half_h = int(rng.integers(13, 17)), int(rng.integers(9, 12))
        image, outline = rectangle(32 - half_w, 31 + half_w, 32 - half_h, 31 + half_h, index)
        images.append(image)
        contours.append(outline)
    model = ASMG(n_landmarks=20).fit(images, contours)
    dx, dy = shift
    image, outline = rectangle(17 + dx, 46 + dx, 21 + dy, 42 + dy, noise_seed=99)
    start_error = distance_to_polygon(model.pdm.initial_points((64, 64)), outline).mean()
    assert start_error > 1.5
    found = model.predict([image])[0]
    assert found.shape == (20, 2)
    assert distance_to_polygon(found, outline).mean() < 1.0
    from_start = model.search(image, start=model.pdm.initial_points((64, 64)))
    np.testing.assert_array_equal(from_start, found)
    with pytest.raises(DataError, match=r"start: expected \(20, 2\) finite landmarks"):
        model.search(image, start=np.zeros((19, 2)))


def fit_on_fixture(cls, make_patches, **options):
    images, contours = make_patches(24, seed=0)
    return cls(n_landmarks=20, **options).fit(images, contours)


SMALL_FOREST = {"n_trees": 5, "max_depth": 6, "samples_per_landmark": 6}
OPTIONS = {ASMG: {}, ASMM: {}, ASMRF: SMALL_FOREST}


@pytest.mark.parametrize("cls", [ASMG, ASMM, ASMRF])
def test_each_method_beats_mean_shape_initialisation_on_held_out_patches(cls, make_patches, dice):
    model = fit_on_fixture(cls, make_patches, **OPTIONS[cls])
    images, contours = make_patches(6, seed=1)
    start = model.pdm.initial_points((64, 64))
    predicted = model.predict(images)
    before = np.array([dice(start, truth) for truth in contours])
    after = np.array([dice(found, truth) for found, truth in zip(predicted, contours)])
    assert after.mean() > before.mean()
    assert np.sum(after > before) >= 5


def test_flat_forest_traversal_matches_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 7))
    Y = np.stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3]], axis=1)
    forests = [
        RandomForestRegressor(n_estimators=4, max_depth=depth, random_state=depth).fit(X, Y)
        for depth in (3, 7)
    ]
    trees = flatten_forests(forests)
    queries = rng.normal(size=(50, 7))
    found = predict_flat_forests(trees, trees["roots"], np.stack([queries, queries]))
    for index, forest in enumerate(forests):
        np.testing.assert_allclose(found[index], forest.predict(queries), atol=1e-12)


def test_asm_rf_search_grid_features_equal_features_sampled_point_by_point(make_patches):
    model = fit_on_fixture(ASMRF, make_patches, **SMALL_FOREST)
    image = make_patches(1, seed=7)[0][0]
    points = model.pdm.initial_points((64, 64)) + 0.3
    candidates = points[:, None, :] + model._grid[None]
    np.testing.assert_allclose(
        model._grid_features(image, points), model._features(image, candidates), atol=1e-6
    )


@pytest.mark.parametrize("cls", [ASMG, ASMM, ASMRF])
def test_save_load_round_trip_gives_identical_predictions(cls, make_patches, tmp_path):
    model = fit_on_fixture(cls, make_patches, **OPTIONS[cls])
    images, _ = make_patches(3, seed=5)
    path = model.save(tmp_path / "model.json")
    assert path == tmp_path / "model.json" and (tmp_path / "model.npz").is_file()
    for loaded in (cls.load(path), load_asm(path), load_asm(tmp_path)):
        assert type(loaded) is cls and loaded.get_config() == model.get_config()
        for before, after in zip(model.predict(images), loaded.predict(images)):
            np.testing.assert_array_equal(before, after)


def test_load_refuses_tampered_arrays_and_other_methods(make_patches, tmp_path):
    model = fit_on_fixture(ASMG, make_patches)
    path = model.save(tmp_path / "g.json")
    with pytest.raises(DataError, match="'asm-g' model, not 'asm-m'"):
        ASMM.load(path)
    npz = tmp_path / "g.npz"
    npz.write_bytes(npz.read_bytes() + b"x")
    with pytest.raises(DataError, match="checksum"):
        load_asm(path)
    document = json.loads(path.read_text())
    document["method"] = "asm-x"
    path.write_text(json.dumps(document))
    with pytest.raises(DataError, match="unknown ASM method 'asm-x'"):
        load_asm(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="not a JSON file"):
        load_asm(path)
    with pytest.raises(DataError, match="cannot read ASM model"):
        load_asm(tmp_path / "missing.json")


def test_asm_package_imports_no_tensorflow():
    code = "import sys, vertseg_tf.asm; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_asm_rf_reports_progress_per_forest_and_caps_training_rows(make_patches, monkeypatch):
    images, contours = make_patches(12, seed=8)
    rows = []
    fit = RandomForestRegressor.fit
    monkeypatch.setattr(
        RandomForestRegressor, "fit", lambda self, X, y: rows.append(len(X)) or fit(self, X, y)
    )
    calls = []
    options = {**SMALL_FOREST, "max_samples_per_forest": 30}
    ASMRF(n_landmarks=6, **options).fit(images, contours, progress=lambda *c: calls.append(c))
    assert calls == [(done, 12) for done in range(1, 13)]  # 2 levels x 6 landmarks
    assert rows == [5 * 6] * 12  # 30 // 6 = 5 patches x 6 samples each


def test_fit_asm_run_writes_a_loadable_run_folder(make_patches, tmp_path, capsys):
    images, contours = make_patches(12, seed=3)
    summary = fit_asm_run(
        "asm-rf", images, contours, tmp_path / "run", seed=4, n_landmarks=10, **SMALL_FOREST
    )
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["config"]["method"] == "asm-rf" and record["config"]["seed"] == 4
    assert record["asm"]["method"] == "asm-rf" and record["asm"]["options"]["seed"] == 4
    assert summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["n_training_patches"] == 12 and summary["n_landmarks"] == 10
    model = load_asm(tmp_path / "run")
    assert isinstance(model, ASMRF) and model.seed == 4
    assert "asm-rf: 20/20, ETA 0 s" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown ASM method 'asm-q'"):
        fit_asm("asm-q", images, contours)
    assert set(ASM_METHODS) == {"asm-g", "asm-m", "asm-rf"}


@pytest.mark.parametrize("cls", [ASMG, ASMM, ASMRF])
def test_clear_errors(cls, make_patches):
    images, contours = make_patches(12, seed=6)
    with pytest.raises(ConfigError, match="needs at least 20 training shapes, got 12"):
        cls(n_landmarks=20, **OPTIONS[cls]).fit(images, contours)
    bad = list(contours)
    bad[4] = bad[4][:2]
    with pytest.raises(DataError, match=r"contours\[4\]: contour needs at least 3 distinct"):
        cls(n_landmarks=8, **OPTIONS[cls]).fit(images, bad)
    bad[4] = contours[4].copy()
    bad[4][0, 1] = np.inf
    with pytest.raises(DataError, match=r"contours\[4\]: contour has non-finite"):
        cls(n_landmarks=8, **OPTIONS[cls]).fit(images, bad)
    with pytest.raises(DataError, match="12 images but 11 contours"):
        cls(n_landmarks=8, **OPTIONS[cls]).fit(images, contours[:11])
    model = cls(n_landmarks=8, **OPTIONS[cls]).fit(images, contours)
    with pytest.raises(DataError, match=r"images\[1\]: expected a \(64, 64\) patch"):
        model.predict([images[0], images[1][:32]])
    with pytest.raises(DataError, match=r"images\[0\]: patch has non-finite"):
        model.predict([np.full((64, 64), np.nan)])
    with pytest.raises(ConfigError, match="not fitted"):
        cls().predict(images)
