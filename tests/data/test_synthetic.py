"""Synthetic data generator: determinism, annotation geometry, conditions, formats, CLI.

Tests that hold for both generator versions run on the default (v2); tests of v1's own
conditions and geometry pin `version=1`. Generator v2's own tests are in test_synthetic_v2.py.
"""

import math

import numpy as np
import pytest
from matplotlib.path import Path as PolygonPath
from scipy import ndimage

from vertseg_tf.cli import main
from vertseg_tf.data.dataset import load_dataset, validate_dataset
from vertseg_tf.data.images import read_image
from vertseg_tf.data.synthetic import default_dataset_path, generate, synthesize
from vertseg_tf.data.synthetic.anatomy import FRACTURE_STATION, BodyParams, Fracture, body_outline
from vertseg_tf.data.synthetic.conditions import (
    SECOND_CONDITION_PROBABILITY,
    V1_CONDITIONS,
    sample_conditions,
)
from vertseg_tf.data.synthetic.generator import _split
from vertseg_tf.errors import ConfigError

LEVELS = ["C3", "C4", "C5", "C6", "C7"]


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _items(count, seed=11, **options):
    return [synthesize(seed, index, size="small", **options) for index in range(count)]


def _find(condition, count, seed=21, **options):
    """The first `count` small images (hard_fraction 1) that show `condition`, and pass `keep`."""
    keep = options.pop("keep", lambda item: True)
    found = []
    index = 0
    while len(found) < count:
        item = synthesize(seed, index, size="small", hard_fraction=1.0, **options)
        if condition in item.record.extra["synthetic"]["conditions"] and keep(item):
            found.append(item)
        index += 1
    return found


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    generate(3, 5, tmp_path / "a", size="small", hard_fraction=0.5, progress=False)
    generate(3, 5, tmp_path / "b", size="small", hard_fraction=0.5, progress=False)
    generate(2, 5, tmp_path / "prefix", size="small", hard_fraction=0.5, progress=False)
    generate(3, 6, tmp_path / "c", size="small", hard_fraction=0.5, progress=False)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert a == b
    prefix = _files(tmp_path / "prefix")
    for name, data in prefix.items():
        if name.parts[0] == "images":
            assert a[name] == data  # an image does not depend on how many are generated
    images = [name for name in a if name.parts[0] == "images"]
    assert len(images) == 3
    assert all(a[name] != c[name] for name in images)


def test_contours_closed_inside_image_with_centres_inside():
    for item in _items(6, facing="random"):
        rows, cols = item.image.shape
        assert [v.label for v in item.record.vertebrae] == LEVELS
        for vertebra in item.record.vertebrae:
            contour = vertebra.contour
            assert contour.ndim == 2 and contour.shape[1] == 2 and len(contour) >= 3
            assert not np.allclose(contour[0], contour[-1])
            assert len(np.unique(contour, axis=0)) == len(contour)
            assert contour[:, 0].min() >= 0 and contour[:, 0].max() <= cols - 1
            assert contour[:, 1].min() >= 0 and contour[:, 1].max() <= rows - 1
            assert PolygonPath(contour).contains_point(vertebra.center)


def test_centre_is_the_area_centroid():
    vertebra = _items(1)[0].record.vertebrae[2]
    (x0, y0), (x1, y1) = vertebra.contour.min(axis=0), vertebra.contour.max(axis=0)
    mask_points = np.mgrid[y0:y1:0.1, x0:x1:0.1].reshape(2, -1).T[:, ::-1]
    inside = mask_points[PolygonPath(vertebra.contour).contains_points(mask_points)]
    np.testing.assert_allclose(inside.mean(axis=0), vertebra.center, atol=0.05)


def test_levels_ordered_down_the_spine():
    for item in _items(6, facing="random"):
        centres = np.array([v.center for v in item.record.vertebrae])
        direction = centres[-1] - centres[0]
        projections = centres @ direction
        assert np.all(np.diff(projections) > 0)
        spacing = np.linalg.norm(np.diff(centres, axis=0), axis=1)
        assert spacing.min() > 0.5 * np.median(spacing)


def test_v1_facing_right_mirrors_image_and_contours():
    # No conditions: a burned-in marker is written readable after mirroring.
    left = synthesize(3, 0, size="small", facing="left", hard_fraction=0.0, version=1)
    right = synthesize(3, 0, size="small", facing="right", hard_fraction=0.0, version=1)
    assert left.record.extra["synthetic"]["facing"] == "left"
    assert right.record.extra["synthetic"]["facing"] == "right"
    np.testing.assert_array_equal(left.image[:, ::-1], right.image)
    cols = left.image.shape[1]
    for a, b in zip(left.record.vertebrae, right.record.vertebrae):
        np.testing.assert_allclose(b.contour[:, 0], (cols - 1) - a.contour[:, 0], atol=1e-6)
        np.testing.assert_allclose(b.contour[:, 1], a.contour[:, 1], atol=1e-6)


def test_v1_condition_frequencies_within_sampling_error():
    draws = 4000
    hard_fraction = 0.3
    plans = [sample_conditions(np.random.default_rng([9, i]), hard_fraction) for i in range(draws)]
    hard = sum(bool(plan.conditions) for plan in plans)
    bound = 4.0 * math.sqrt(draws * hard_fraction * (1 - hard_fraction))
    assert abs(hard - draws * hard_fraction) <= bound
    # One condition uniformly of five, a second distinct one with probability q.
    q = SECOND_CONDITION_PROBABILITY
    p_each = hard_fraction * ((1 - q) / 5 + q * 2 / 5)
    for condition in V1_CONDITIONS:
        count = sum(condition in plan.conditions for plan in plans)
        assert abs(count - draws * p_each) <= 4.0 * math.sqrt(draws * p_each * (1 - p_each))


def test_hard_fraction_extremes_and_records_match_plan():
    for item in _items(4, hard_fraction=0.0):
        assert not any(v.conditions for v in item.record.vertebrae)
    for item in _items(4, hard_fraction=1.0):
        image_conditions = item.record.extra["synthetic"]["conditions"]
        assert image_conditions
        recorded = {c for v in item.record.vertebrae for c in v.conditions}
        assert recorded == set(image_conditions)


def _chord(contour, axis, posterior, station):
    along, across = contour @ axis, contour @ posterior
    next_along, next_across = np.roll(along, -1), np.roll(across, -1)
    crossing = (across - station) * (next_across - station) < 0
    t = (station - across[crossing]) / (next_across[crossing] - across[crossing])
    hits = along[crossing] + t * (next_along[crossing] - along[crossing])
    return hits.max() - hits.min()


def test_v1_fractured_vertebra_loses_the_configured_anterior_height():
    # Heights are chords along the spine axis (neighbouring centres) at 10 % of the body
    # depth from its anterior and posterior ends. Tolerance 0.08: the outline carries a
    # random smooth perturbation of about 1-2 % of its radius per side, and the neighbour
    # axis differs slightly from the body's own tilt.
    checked = 0
    for item in _find("fracture", 3, facing="left", version=1):
        record = item.record
        centres = np.array([v.center for v in record.vertebrae])
        for k, vertebra in enumerate(record.vertebrae):
            if "fracture" not in vertebra.conditions or "degenerative" in vertebra.conditions:
                continue
            loss = vertebra.extra["synthetic"]["anterior_height_loss"]
            assert 0.2 <= loss <= 0.5
            axis = centres[min(k + 1, 4)] - centres[max(k - 1, 0)]
            axis /= np.linalg.norm(axis)
            posterior = np.array([-axis[1], axis[0]])
            posterior *= np.sign(posterior[0])  # facing left: posterior towards larger x
            across = vertebra.contour @ posterior
            depth = np.ptp(across)
            anterior_height = _chord(vertebra.contour, axis, posterior, across.min() + 0.1 * depth)
            posterior_height = _chord(vertebra.contour, axis, posterior, across.max() - 0.1 * depth)
            assert anterior_height < posterior_height
            assert abs((1 - anterior_height / posterior_height) - loss) < 0.08
            checked += 1
    assert checked >= 1


@pytest.mark.parametrize("version", [1, 2])
def test_implant_pixels_saturate(version):
    # Saturated, that is, unless JPEG compression (v2) came after.
    for item in _find("implant", 2, version=version,
                      keep=lambda item: item.record.extra["synthetic"].get("jpeg_quality") is None):
        polygons = item.record.extra["synthetic"]["metal"]
        assert len(polygons) >= 3  # plate + one screw per level (2-3 levels)
        rows, cols = item.image.shape
        ys, xs = np.mgrid[0:rows, 0:cols]
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        inside = np.zeros(rows * cols, bool)
        for polygon in polygons:
            inside |= PolygonPath(np.asarray(polygon)).contains_points(centres)
        core = ndimage.binary_erosion(inside.reshape(rows, cols), iterations=1)
        assert core.sum() > 10
        assert np.all(item.image[core] == 65535)


def test_dicom_reads_back_bone_bright_with_spacing(tmp_path):
    kinds = []
    while len(set(kinds)) < 2:
        kinds.append(synthesize(4, len(kinds), size="small", image_format="dicom").photometric)
    count = len(kinds)
    dicom = generate(count, 4, tmp_path / "dcm", size="small", image_format="dicom", progress=False)
    png = generate(count, 4, tmp_path / "png", size="small", progress=False)
    photometrics = set()
    for record_dcm, record_png in zip(dicom.images, png.images):
        image, meta = read_image(dicom.image_path(record_dcm))
        reference, _ = read_image(png.image_path(record_png))
        photometrics.add(meta["photometric_interpretation"])
        np.testing.assert_allclose(meta["pixel_spacing_mm"], record_dcm.pixel_spacing_mm, rtol=1e-9)
        np.testing.assert_array_equal(image, reference)
        rows, cols = image.shape
        ys, xs = np.mgrid[0:rows, 0:cols]
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        bodies = np.zeros(rows * cols, bool)
        for vertebra in record_dcm.vertebrae:
            bodies |= PolygonPath(vertebra.contour).contains_points(centres)
        bodies = bodies.reshape(rows, cols)
        ring = ndimage.binary_dilation(bodies, iterations=12) & ~bodies
        assert image[bodies].mean() > image[ring].mean()
    assert photometrics == {"MONOCHROME1", "MONOCHROME2"}


def test_split_follows_paper_proportions():
    splits = [_split(i, (124, 172)) for i in range(296)]
    assert splits.count("train") == 124 and splits.count("test") == 172


@pytest.mark.parametrize("image_format", ["png", "dicom"])
def test_output_passes_validation(tmp_path, image_format):
    generate(4, 8, tmp_path / "ds", size="small", image_format=image_format, hard_fraction=1.0,
             facing="random", progress=False)
    assert [str(problem) for problem in validate_dataset(tmp_path / "ds")] == []


def test_refuses_non_empty_out_dir_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConfigError):
        generate(1, 0, out, size="small", progress=False)
    with pytest.raises(ConfigError):
        generate(1, 0, tmp_path / "bad", size="huge", progress=False)
    with pytest.raises(ConfigError):
        generate(1, -1, tmp_path / "bad", size="small", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_cli_writes_loadable_dataset_with_preview(tmp_path, capsys):
    out = tmp_path / "synth"
    code = main(["synth", "--out", str(out), "--images", "2", "--seed", "1", "--size", "small",
                 "--hard-fraction", "1", "--facing", "right", "--preview", "--quiet"])
    assert code == 0
    assert "wrote 2 images" in capsys.readouterr().out
    dataset = load_dataset(out)
    assert len(dataset.images) == 2 and (out / "preview.png").is_file()
    for record in dataset.images:
        image, _ = read_image(dataset.image_path(record))
        assert image.dtype == np.float32 and image.max() <= 65535
    assert main(["synth", "--out", str(out), "--images", "1", "--size", "small"]) == 1
    assert "not empty" in capsys.readouterr().err


def test_default_dataset_is_generated_once(tmp_path, monkeypatch):
    monkeypatch.setenv("VERTSEG_TF_CACHE", str(tmp_path))
    first = default_dataset_path(size="small", n_images=2, seed=3)
    stamp = (first / "dataset.json").stat().st_mtime_ns
    second = default_dataset_path(size="small", n_images=2, seed=3)
    assert first == second and first.is_relative_to(tmp_path)
    assert (second / "dataset.json").stat().st_mtime_ns == stamp
    assert len(load_dataset(second).images) == 2


@pytest.mark.parametrize("kind, posterior_loss", [("wedge", 0.0), ("compression", 0.15)])
def test_fracture_outline_has_exact_heights_at_the_stations(kind, posterior_loss):
    depth, height, loss = 16.0, 12.0, 0.35
    fracture = Fracture(kind, loss, posterior_loss, irregularity=0.1, phases=(0.3, 1.0, 2.0))
    params = BodyParams(depth, height, corner_power=6.0, concavity_top=0.0, concavity_bottom=0.0,
                        lip=0.0, osteophyte_mm=0.0, harmonics=np.zeros((0, 4)), fracture=fracture)
    outline = body_outline(params, n_points=4000)
    axis, posterior = np.array([0.0, 1.0]), np.array([1.0, 0.0])
    station = depth / 2 * (1 - 2 * FRACTURE_STATION)
    anterior_height = _chord(outline, axis, posterior, -station)
    posterior_height = _chord(outline, axis, posterior, station)
    # The unfractured superellipse |x/8|^6 + |y/6|^6 = 1 is height 12 * (1 - 0.8^6)^(1/6) there.
    full = height * (1 - (2 * station / depth) ** 6) ** (1 / 6)
    # The outline is a polygon through 1024 superellipse samples: chords through it are
    # within ~1e-3 (relative) of the analytic curve's.
    np.testing.assert_allclose(posterior_height, full * (1 - posterior_loss), rtol=1e-3)
    np.testing.assert_allclose(anterior_height / posterior_height, 1 - loss, atol=1e-3)


def test_the_light_options_match_what_the_generator_renders():
    from vertseg_tf.data.synthetic import options
    from vertseg_tf.data.synthetic.scene import SIZES

    assert set(options.IMAGE_SIZES) == set(SIZES)
    with pytest.raises(ConfigError, match="size must be one of"):
        synthesize(0, 0, size="medium")
    with pytest.raises(ConfigError, match="image_format must be one of"):
        synthesize(0, 0, size="small", image_format="jpeg")
    suffixes = {name: synthesize(0, 0, size="small", image_format=name).record.file
                for name in options.IMAGE_FORMATS}
    assert {name: file[-4:] for name, file in suffixes.items()} == options.IMAGE_FORMATS
