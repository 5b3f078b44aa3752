import sys
import types

import numpy as np
import pytest

from vertseg_tf.data import patch_build, patch_cut, patches
from vertseg_tf.data.dataset import (
    Dataset,
    ImageRecord,
    VertebraRecord,
    load_dataset,
    save_dataset,
)
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.geometry import apply_affine, point_to_polyline_distance, polygon_to_mask


def rotation(degrees):
    angle = np.deg2rad(degrees)
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def rotated_spine(center=(100.0, 80.0), degrees=30.0, step=20.0, half_side=7.5):
    """Three centres on a line turned by `degrees` and a square (around the middle one)."""
    turn = rotation(degrees)
    axis = turn @ [0.0, 1.0]
    center = np.asarray(center)
    centers = np.stack([center - step * axis, center, center + step * axis])
    corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]) * half_side
    square = center + corners @ turn.T
    return centers, square, axis


def test_poses_axis_and_scale_with_one_sided_ends():
    centers = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 20.0]])
    axes, scales = patches.vertebra_poses(centers)
    np.testing.assert_allclose(axes[0], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(axes[1], np.array([10.0, 20.0]) / np.hypot(10, 20), atol=1e-12)
    np.testing.assert_allclose(axes[2], [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)
    np.testing.assert_allclose(scales, [10.0, (10.0 + np.hypot(10, 10)) / 2, np.hypot(10, 10)])


def test_lone_centre_needs_explicit_scale():
    with pytest.raises(ConfigError, match="lone"):
        patches.vertebra_poses(np.array([[5.0, 5.0]]))
    axes, scales = patches.vertebra_poses(np.array([[5.0, 5.0]]), scale=12.0)
    np.testing.assert_allclose(axes, [[0.0, 1.0]])
    np.testing.assert_allclose(scales, [12.0])


def test_duplicate_and_bad_centres_are_clear_errors():
    with pytest.raises(DataError, match=r"centers\[2\].*coincides with centre 0"):
        patches.vertebra_poses(np.array([[1.0, 1.0], [1.0, 9.0], [1.0, 1.0]]))
    with pytest.raises(DataError, match=r"centers\[1\].*finite"):
        patches.vertebra_poses(np.array([[1.0, 1.0], [np.nan, 9.0]]))
    with pytest.raises(ConfigError, match="positive"):
        patches.vertebra_poses(np.array([[1.0, 1.0], [1.0, 9.0]]), scale=-3.0)


def test_rotated_square_comes_out_axis_aligned():
    centers, square, axis = rotated_spine()
    size, alpha, step = 64, 1.5, 20.0
    zoom = size / (alpha * step)
    # The image is the coordinate along the spine axis: linear, so linear resampling keeps it.
    ys, xs = np.mgrid[0:200, 0:200].astype(np.float64)
    image = (xs - centers[1, 0]) * axis[0] + (ys - centers[1, 1]) * axis[1]
    contours = [square + 30.0 * (k - 1) * axis for k in range(3)]
    cut = patches.extract_patches(image, centers, contours, alphas=(alpha,), size=size)

    middle = (size - 1) / 2
    half = 7.5 * zoom
    expected_corners = middle + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    np.testing.assert_allclose(cut.contours[1], expected_corners, atol=1e-9)
    grid_y, grid_x = np.mgrid[0:size, 0:size]
    inside = (np.abs(grid_x - middle) <= half) & (np.abs(grid_y - middle) <= half)
    np.testing.assert_array_equal(cut.masks[1], inside.astype(np.uint8))
    assert cut.masks[1].sum() == 32 * 32

    rows = np.arange(size, dtype=np.float64) - middle
    expected_image = np.repeat(((rows - rows.mean()) / rows.std())[:, None], size, axis=1)
    np.testing.assert_allclose(cut.images[1], expected_image, atol=2e-2)


def test_dist_map_is_distance_to_mapped_contour():
    centers, square, _ = rotated_spine()
    cut = patches.extract_patches(np.zeros((200, 200)), centers, [square] * 3)
    ys, xs = np.mgrid[0:64, 0:64]
    grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    expected = point_to_polyline_distance(grid, cut.contours[1]).reshape(64, 64)
    np.testing.assert_allclose(cut.dist_maps[1], expected, atol=1e-5)


def test_positive_angle_turns_axis_to_minus_sin_cos():
    centers, _, axis = rotated_spine(degrees=-50.0)
    for angle in (0.0, 20.0, 90.0):
        affine = patches.patch_affine(centers[1], axis, 20.0, 1.5, angle)
        direction = affine[:, :2] @ axis
        direction /= np.linalg.norm(direction)
        expected = [-np.sin(np.deg2rad(angle)), np.cos(np.deg2rad(angle))]
        np.testing.assert_allclose(direction, expected, atol=1e-12)
        np.testing.assert_allclose(apply_affine(affine, centers[1]), [31.5, 31.5], atol=1e-9)


def test_patch_image_patch_round_trip():
    centers = rotated_spine(degrees=-12.0)[0]
    cut = patches.extract_patches(
        np.zeros((200, 200)),
        centers,
        alphas=patches.TRAIN_ALPHAS,
        angles=patches.TRAIN_ANGLES,
    )
    points = np.random.default_rng(1).uniform(-5, 70, (40, 2))
    for affine in cut.affines:
        back = apply_affine(affine, patches.patch_to_image(points, affine))
        np.testing.assert_allclose(back, points, atol=1e-6)


def test_training_grid_gives_45_distinct_rotation_scalings_vertebra_major():
    centers, _, _ = rotated_spine()
    cut = patches.extract_patches(
        np.ones((200, 200)), centers, alphas=patches.TRAIN_ALPHAS, angles=patches.TRAIN_ANGLES
    )
    assert len(cut) == 3 * 45
    assert cut.masks is None and cut.dist_maps is None
    np.testing.assert_array_equal(cut.vertebra_index, np.repeat([0, 1, 2], 45))
    first = cut.affines[:45].reshape(45, 6)
    assert len(np.unique(first.round(9), axis=0)) == 45
    linear = cut.affines[:, :, :2]
    determinants = np.linalg.det(linear)
    assert (determinants > 0).all()
    scales = np.sqrt(determinants)
    np.testing.assert_allclose(
        linear / scales[:, None, None] @ linear.transpose(0, 2, 1) / scales[:, None, None],
        np.broadcast_to(np.eye(2), linear.shape),
        atol=1e-12,
    )
    assert cut.alphas[:9].tolist() == [1.3] * 9
    assert cut.angles[:9].tolist() == list(patches.TRAIN_ANGLES)


def test_normalisation_zero_mean_unit_variance_and_constant_patch_zero():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1000, (120, 120))
    centers = np.array([[60.0, 40.0], [60.0, 70.0]])
    cut = patches.extract_patches(image, centers)
    for patch in cut.images:
        assert patch.dtype == np.float32
        assert abs(patch.astype(np.float64).mean()) < 1e-5
        assert patch.astype(np.float64).std() == pytest.approx(1.0, abs=1e-5)
    flat = patches.extract_patches(np.full((120, 120), 7.0), centers)
    np.testing.assert_array_equal(flat.images, 0.0)


def test_border_vertebra_is_padded_not_cropped():
    image = np.random.default_rng(2).uniform(0, 1, (40, 30))
    centers = np.array([[1.0, 2.0], [2.0, 30.0]])
    square = np.array([[-8.0, -6.0], [8.0, -6.0], [8.0, 8.0], [-8.0, 8.0]])
    cut = patches.extract_patches(image, centers, [square, square + [1, 28]], alphas=(1.7,))
    assert cut.images.shape == (2, 64, 64)
    assert np.isfinite(cut.images).all()
    assert cut.images[0].std() > 0.5
    assert cut.masks[0].sum() > 0


def test_mask_to_image_inverts_an_unscaled_cut():
    centers = np.array([[100.5, 50.5], [100.5, 82.5]])
    rectangle = np.array([[90.2, 40.6], [112.4, 40.6], [112.4, 61.3], [90.2, 61.3]])
    cut = patches.extract_patches(np.zeros((140, 200)), centers, [rectangle] * 2, alphas=(2.0,))
    np.testing.assert_allclose(cut.affines[0, :, :2], np.eye(2), atol=1e-12)
    back = patches.mask_to_image(cut.masks[0], cut.affines[0], (140, 200))
    np.testing.assert_array_equal(back, polygon_to_mask(rectangle, (140, 200)))


def test_contour_count_and_shape_are_checked():
    centers, square, _ = rotated_spine()
    with pytest.raises(DataError, match="2 contours for 3"):
        patches.extract_patches(np.zeros((50, 50)), centers, [square] * 2)
    with pytest.raises(DataError, match=r"contours\[1\]: must be \(K, 2\) with K >= 3"):
        patches.extract_patches(np.zeros((50, 50)), centers, [square, square[:2], square])
    broken = square.copy()
    broken[2, 0] = np.nan
    with pytest.raises(DataError, match=r"contours\[2\]: has a point that is not finite"):
        patches.extract_patches(np.zeros((50, 50)), centers, [square, square, broken])


def test_y_true_and_x_layout_and_save_load(tmp_path):
    centers, square, _ = rotated_spine()
    cut = patches.extract_patches(
        np.random.default_rng(0).uniform(size=(200, 200)),
        centers,
        [square] * 3,
        angles=(0.0, 10.0),
        image_id="img",
        labels=["C3", "C4", "C5"],
        conditions=[[], ["fracture"], []],
    )
    y_true = cut.y_true()
    assert y_true.shape == (6, 64, 64, 2) and y_true.dtype == np.float32
    np.testing.assert_array_equal(y_true[..., 0], cut.masks)
    np.testing.assert_array_equal(y_true[..., 1], cut.dist_maps)
    assert cut.x().shape == (6, 64, 64, 1) and cut.x().dtype == np.float32
    assert cut.labels == ["C3", "C3", "C4", "C4", "C5", "C5"]
    assert cut.conditions[2] == ["fracture"]

    loaded = patches.PatchSet.load(cut.save(tmp_path / "set.npz"))
    for name in ("images", "masks", "dist_maps", "affines", "vertebra_index", "alphas", "angles"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(cut, name))
    for a, b in zip(loaded.contours, cut.contours, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (loaded.image_ids, loaded.labels, loaded.conditions) == (
        cut.image_ids,
        cut.labels,
        cut.conditions,
    )


@pytest.fixture
def counted_reader(monkeypatch):
    """A stand-in `vertseg_tf.data.images` reading .npy files and counting the reads."""
    reads = []

    def read_image(path):
        reads.append(path)
        return np.load(path).astype(np.float32), {}

    module = types.ModuleType("vertseg_tf.data.images")
    module.read_image = read_image
    monkeypatch.setitem(sys.modules, "vertseg_tf.data.images", module)
    return reads


def write_dataset(root, square_shift=0.0):
    centers, square, _ = rotated_spine()
    (root / "images").mkdir(parents=True, exist_ok=True)
    image_path = root / "images" / "a.npy"
    if not image_path.exists():
        np.save(image_path, np.random.default_rng(0).uniform(size=(200, 200)))
    vertebrae = [
        VertebraRecord(f"C{3 + k}", centers[k], square + [square_shift, 0.0], ["implant"] * k)
        for k in range(3)
    ]
    records = [
        ImageRecord("a", "images/a.npy", "train", None, vertebrae),
        ImageRecord("b", "images/a.npy", "test", None, vertebrae[:2]),
    ]
    save_dataset(Dataset(records), root)
    return load_dataset(root)


def test_from_dataset_builds_45_per_vertebra_and_reuses_cache(tmp_path, counted_reader):
    cache = tmp_path / "cache"
    dataset = write_dataset(tmp_path / "ds")
    first = patches.PatchSet.from_dataset(dataset, "train", True, cache_dir=cache, progress=False)
    assert len(first) == 3 * 45 and len(counted_reader) == 1
    assert first.image_ids == ["a"] * 135
    assert first.labels[45] == "C4" and first.conditions[100] == ["implant", "implant"]

    again = patches.PatchSet.from_dataset(
        load_dataset(tmp_path / "ds"), "train", True, cache_dir=cache, progress=False
    )
    assert len(counted_reader) == 1
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.masks, first.masks)

    test = patches.PatchSet.from_dataset(dataset, "test", False, cache_dir=cache, progress=False)
    assert len(test) == 2 and len(counted_reader) == 2
    assert set(test.alphas.tolist()) == {patches.TEST_ALPHA} and set(test.angles) == {0.0}


def test_cache_rebuilt_when_contour_or_image_changes(tmp_path, counted_reader):
    cache = tmp_path / "cache"
    base = patches.PatchSet.from_dataset(
        write_dataset(tmp_path / "ds"), "test", False, cache_dir=cache, progress=False
    )
    moved = patches.PatchSet.from_dataset(
        write_dataset(tmp_path / "ds", square_shift=2.0),
        "test",
        False,
        cache_dir=cache,
        progress=False,
    )
    assert len(counted_reader) == 2
    assert not np.array_equal(moved.masks, base.masks)
    np.testing.assert_array_equal(moved.images, base.images)

    image_path = tmp_path / "ds" / "images" / "a.npy"
    np.save(image_path, np.random.default_rng(5).uniform(size=(200, 200)))
    changed = patches.PatchSet.from_dataset(
        load_dataset(tmp_path / "ds"), "test", False, cache_dir=cache, progress=False
    )
    assert len(counted_reader) == 3
    assert not np.array_equal(changed.images, moved.images)


def test_from_dataset_names_file_and_field_of_duplicate_centre(tmp_path, counted_reader):
    dataset = write_dataset(tmp_path / "ds")
    dataset.images[1].vertebrae[1].center = dataset.images[1].vertebrae[0].center.copy()
    with pytest.raises(DataError, match=r"dataset\.json: images\[1\]\.vertebrae\[1\]\.center"):
        patches.PatchSet.from_dataset(dataset, "test", False, cache_dir=tmp_path, progress=False)
    dataset.images[1].vertebrae[1].center += 5.0
    dataset.images[1].vertebrae[0].contour[1, 1] = np.inf
    with pytest.raises(DataError, match=r"dataset\.json: images\[1\]\.vertebrae\[0\]\.contour"):
        patches.PatchSet.from_dataset(dataset, "test", False, cache_dir=tmp_path, progress=False)
    with pytest.raises(DataError, match="no images in split 'val'"):
        patches.PatchSet.from_dataset(dataset, "val", False, cache_dir=tmp_path, progress=False)


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VERTSEG_TF_CACHE", str(tmp_path))
    assert patches.default_cache_dir() == tmp_path / "patches"


def test_cli_prints_counts_and_writes_contact_sheet(tmp_path, counted_reader, capsys):
    from vertseg_tf.cli import main

    write_dataset(tmp_path / "ds")
    sheet = tmp_path / "out" / "sheet.png"
    argv = ["patches", "--dataset", str(tmp_path / "ds"), "--split", "train", "--augment"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--sheet", str(sheet), "--count", "6"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "135 patches from 3 vertebrae (train)" in out
    assert "C4: 1 vertebrae, 45 patches (45 per vertebra)" in out
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main([*argv[:-2], "--count", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vertseg-tf patches: error: count must be >= 1, got 0"]

    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--workers", "0"])
    assert exit_info.value.code == 2
    assert "argument --workers: expected a positive integer, got '0'" in capsys.readouterr().err


def test_from_dataset_with_the_real_image_reader(tmp_path):
    import cv2

    centers, square, _ = rotated_spine()
    pixels = np.random.default_rng(4).integers(0, 65535, (200, 200)).astype(np.uint16)
    (tmp_path / "ds" / "images").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "ds" / "images" / "a.png"), pixels)
    vertebrae = [VertebraRecord(f"C{3 + k}", centers[k], square) for k in range(3)]
    save_dataset(
        Dataset([ImageRecord("a", "images/a.png", "test", None, vertebrae)]), tmp_path / "ds"
    )
    cut = patches.PatchSet.from_dataset(
        load_dataset(tmp_path / "ds"), "test", False, cache_dir=tmp_path / "cache", progress=False
    )
    expected = patches.extract_patches(pixels.astype(np.float32), centers, [square] * 3)
    np.testing.assert_allclose(cut.images, expected.images, atol=1e-5)


@pytest.fixture(scope="module")
def synthetic_dataset(tmp_path_factory):
    from vertseg_tf.data.synthetic import generate

    return generate(
        4, 0, out_dir=tmp_path_factory.mktemp("synth") / "ds", size="small", progress=False
    )


def test_synthetic_test_patches_show_upright_bodies_under_the_outline(synthetic_dataset, tmp_path):
    cut = patches.PatchSet.from_dataset(
        synthetic_dataset, "test", False, cache_dir=tmp_path, progress=False
    )
    vertebrae = sum(len(im.vertebrae) for im in synthetic_dataset.split("test"))
    assert len(cut) == vertebrae
    # Generator v2 lets the shoulders cover C6-C7 in some films: bright over the whole patch.
    shouldered = {im.id for im in synthetic_dataset.images
                  if im.extra["synthetic"]["shoulders_cover_c6_c7"]}
    for image, mask, image_id, label in zip(cut.images, cut.masks.astype(bool), cut.image_ids,
                                            cut.labels):
        rows, cols = np.nonzero(mask)
        # Upright: the spine runs down the patch, so a body is wider (anterior-posterior)
        # than tall, and it sits on the centre; bone is bright under the outline.
        assert np.ptp(cols) > np.ptp(rows)
        assert abs(cols.mean() - 31.5) < 4 and abs(rows.mean() - 31.5) < 4
        if not (image_id in shouldered and label in ("C6", "C7")):
            assert image[mask].mean() > image[~mask].mean() + 0.1


@pytest.mark.slow
def test_synthetic_training_split_has_45_patches_per_vertebra(synthetic_dataset, tmp_path):
    cut = patches.PatchSet.from_dataset(
        synthetic_dataset, "train", True, cache_dir=tmp_path, progress=False
    )
    records = synthetic_dataset.split("train")
    assert len(cut) == 45 * sum(len(im.vertebrae) for im in records)
    keys = list(zip(cut.image_ids, cut.vertebra_index.tolist()))
    assert set(keys) == {(im.id, k) for im in records for k in range(len(im.vertebrae))}
    assert all(keys.count(key) == 45 for key in set(keys))


def test_patch_set_without_contours_saves_loads_and_refuses_y_true(tmp_path):
    centers = rotated_spine()[0]
    cut = patches.extract_patches(np.random.default_rng(0).uniform(size=(200, 200)), centers)
    loaded = patches.PatchSet.load(cut.save(tmp_path / "inference"))
    assert loaded.masks is None and loaded.dist_maps is None and loaded.contours == []
    np.testing.assert_array_equal(loaded.images, cut.images)
    with pytest.raises(ConfigError, match="without contours"):
        loaded.y_true()
    with_targets = patches.extract_patches(np.zeros((200, 200)), centers, [centers] * 3)
    with pytest.raises(ConfigError, match="cannot mix"):
        patches.PatchSet.concatenate([cut, with_targets])
    (tmp_path / "inference.json").write_text("{}")
    with pytest.raises(DataError, match="format"):
        patches.PatchSet.load(tmp_path / "inference.npz")


def test_cut_equals_the_previous_one_by_one_cutter():
    from benchmarks.legacy_patches import legacy_extract
    from vertseg_tf.data.synthetic import synthesize

    item = synthesize(3, 0, size="small")
    centers = np.array([v.center for v in item.record.vertebrae])
    contours = [v.contour for v in item.record.vertebrae]
    grid = {"alphas": (1.3, 1.7), "angles": (-20.0, 0.0, 15.0)}
    cut = patches.extract_patches(item.image, centers, contours, **grid)
    reference = legacy_extract(item.image, centers, contours, **grid)
    np.testing.assert_array_equal(cut.affines, reference["affines"])
    np.testing.assert_allclose(cut.images, reference["images"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(cut.masks, reference["masks"])
    np.testing.assert_allclose(cut.dist_maps, reference["dist_maps"], rtol=0, atol=1e-5)


def test_training_grid_equals_the_previous_one_by_one_cutter():
    """45 patches per vertebra: the distance maps share one structure per vertebra."""
    from benchmarks.legacy_patches import legacy_extract
    from vertseg_tf.data.synthetic import synthesize

    item = synthesize(1, 4, size="small")
    centers = np.array([v.center for v in item.record.vertebrae])
    contours = [v.contour for v in item.record.vertebrae]
    grid = {"alphas": patches.TRAIN_ALPHAS, "angles": patches.TRAIN_ANGLES}
    assert len(grid["alphas"]) * len(grid["angles"]) >= patch_cut.SHARED_DISTANCE_PATCHES
    cut = patches.extract_patches(item.image, centers, contours, **grid)
    reference = legacy_extract(item.image, centers, contours, **grid)
    np.testing.assert_array_equal(cut.affines, reference["affines"])
    np.testing.assert_array_equal(cut.masks, reference["masks"])
    np.testing.assert_allclose(cut.dist_maps, reference["dist_maps"], rtol=0, atol=1e-5)


def test_workers_must_be_a_positive_integer(tmp_path, counted_reader):
    dataset = write_dataset(tmp_path / "ds")
    for workers in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="workers must be a positive integer"):
            patches.PatchSet.from_dataset(
                dataset, "train", True, cache_dir=tmp_path, progress=False, workers=workers
            )


def test_data_error_crosses_a_process_boundary():
    import pickle

    error = pickle.loads(pickle.dumps(DataError("a/dataset.json", "is bad", field="images[2]")))
    assert (error.file, error.problem, error.field) == ("a/dataset.json", "is bad", "images[2]")
    assert str(error) == "a/dataset.json: images[2]: is bad"


@pytest.mark.slow
def test_any_worker_count_gives_the_same_patch_set(synthetic_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(patch_build, "PATCHES_PER_WORKER", 1)
    dataset = load_dataset(synthetic_dataset.root)
    for record in dataset.images:
        record.split = "train"
    built = [
        patches.PatchSet.from_dataset(
            dataset, "train", True, cache_dir=tmp_path / str(workers), progress=False,
            workers=workers,
        )
        for workers in (1, 3)
    ]
    for other in built[1:]:
        for name in ("images", "masks", "dist_maps", "affines", "vertebra_index"):
            np.testing.assert_array_equal(getattr(other, name), getattr(built[0], name))
        assert other.image_ids == built[0].image_ids and other.labels == built[0].labels
    dataset.images[2].vertebrae[1].center = dataset.images[2].vertebrae[0].center.copy()
    with pytest.raises(DataError, match=r"dataset\.json: images\[2\]\.vertebrae\[1\]\.center"):
        patches.PatchSet.from_dataset(
            dataset, "train", True, cache_dir=tmp_path / "bad", progress=False, workers=2
        )


def test_mirrored_patch_is_the_cut_through_the_reflected_affine():
    # Reference: cut each patch again with OpenCV through (x -> size - 1 - x) o affine, and map
    # the image contour through that affine; the mirrored patch set must equal both.
    import cv2

    centers, square, _ = rotated_spine(degrees=25.0)
    image = np.random.default_rng(3).random((200, 220)).astype(np.float32) * 100.0
    cut = patches.extract_patches(
        image, centers, [square + shift for shift in (-20.0, 0.0, 20.0)],
        alphas=(1.4, 1.6), angles=(-10.0, 5.0), size=32,
    )
    which = np.arange(len(cut)) % 3 == 1
    mirrored = patches.mirror_patches(cut, which)
    reflection = np.array([[-1.0, 0.0, 31.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    for i in range(len(cut)):
        if not which[i]:
            np.testing.assert_array_equal(mirrored.images[i], cut.images[i])
            np.testing.assert_array_equal(mirrored.affines[i], cut.affines[i])
            continue
        affine = reflection[:2] @ np.vstack([cut.affines[i], [0.0, 0.0, 1.0]])
        np.testing.assert_allclose(mirrored.affines[i], affine, atol=1e-12)
        assert np.linalg.det(mirrored.affines[i][:, :2]) < 0
        recut = cv2.warpAffine(image, affine, (32, 32), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        recut = (recut - recut.mean()) / recut.std()
        np.testing.assert_allclose(mirrored.images[i], recut, atol=1e-3)
        vertebra = cut.vertebra_index[i]
        outline = apply_affine(affine, [square - 20.0, square, square + 20.0][vertebra])
        np.testing.assert_allclose(mirrored.contours[i], outline[::-1], atol=1e-9)
        np.testing.assert_array_equal(mirrored.masks[i], polygon_to_mask(outline, (32, 32)))
        row, column = 7, 25
        expected = point_to_polyline_distance(np.array([[column, row]], float), outline)
        np.testing.assert_allclose(mirrored.dist_maps[i][row, column], expected[0], atol=1e-5)
        # The way back: patch points of the mirrored patch land on the same image points.
        np.testing.assert_allclose(
            patches.patch_to_image(mirrored.contours[i], mirrored.affines[i])[::-1],
            patches.patch_to_image(cut.contours[i], cut.affines[i]),
            atol=1e-9,
        )


def test_mirror_patches_keeps_the_input_and_checks_its_choice():
    centers, square, _ = rotated_spine()
    cut = patches.extract_patches(np.ones((200, 200)), centers, [square] * 3, size=16)
    before = cut.images.copy()
    patches.mirror_patches(cut, np.ones(len(cut), bool))
    np.testing.assert_array_equal(cut.images, before)
    with pytest.raises(ConfigError, match="3 booleans"):
        patches.mirror_patches(cut, np.ones(2, bool))
