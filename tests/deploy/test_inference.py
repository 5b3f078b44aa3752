"""Segmenter: inverse patch mapping by known geometry, quality flags, CLI, bad input."""

import json

import keras
import numpy as np
import pytest

from vertseg_tf import build_unet
from vertseg_tf.cli import main
from vertseg_tf.data.dataset import load_dataset, validate_dataset
from vertseg_tf.data.images import read_image
from vertseg_tf.data.patches import TEST_ALPHA, extract_patches, vertebra_poses
from vertseg_tf.data.synthetic import generate, synthesize
from vertseg_tf.deploy import Segmenter
from vertseg_tf.deploy.inference import check_patch_batch, parse_centers, read_centers_file
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.geometry import point_to_polyline_distance, polygon_centroid


def _one_hot(masks):
    masks = np.asarray(masks, dtype=np.float32)
    return np.stack([1.0 - masks, masks], axis=-1)


class _GroundTruthModel:
    """A stand-in network that returns given masks, in the order the patches arrive."""

    def __init__(self, masks):
        self.masks = masks

    def __call__(self, patches):
        assert patches.shape == (len(self.masks), 64, 64, 1) and patches.dtype == np.float32
        return _one_hot(self.masks)


@pytest.fixture(scope="module")
def radiograph():
    item = synthesize(0, 0, size="small")
    centers = np.array([v.center for v in item.record.vertebrae])
    contours = [v.contour for v in item.record.vertebrae]
    return item.image.astype(np.float32), centers, contours


@pytest.fixture(scope="module")
def whole_patch_model(tmp_path_factory):
    """A smoke UNet whose output layer says 'vertebra' everywhere: the mask is the full patch."""
    model = build_unet("smoke")
    layer = model.get_layer("probabilities")
    kernel, _ = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.array([0.0, 5.0], np.float32)])
    path = tmp_path_factory.mktemp("model") / "whole_patch.keras"
    model.save(path)
    return path


def test_ground_truth_masks_map_back_onto_the_ground_truth_outlines(radiograph):
    image, centers, contours = radiograph
    truth = extract_patches(image, centers, contours).masks
    labels = ["C3", "C4", "C5", "C6", "C7"]
    results = Segmenter(_GroundTruthModel(truth)).segment(image, centers, labels)
    _, scales = vertebra_poses(centers)
    assert [r.label for r in results] == labels
    for result, contour, scale, mask in zip(results, contours, scales, truth):
        patch_pixel = TEST_ALPHA * scale / 64  # image pixels per patch pixel
        gap = np.linalg.norm(polygon_centroid(result.contour) - polygon_centroid(contour))
        assert gap < min(2.0, patch_pixel)
        distances = point_to_polyline_distance(result.contour, contour, closed=True)
        assert distances.mean() < patch_pixel
        assert result.flags == [] and result.components == 1
        np.testing.assert_array_equal(result.patch_mask, mask)


def test_full_patch_mask_gives_the_rotated_patch_square(radiograph, whole_patch_model):
    image, centers, _ = radiograph
    results = Segmenter(whole_patch_model).segment(image, centers)
    axes, scales = vertebra_poses(centers)
    for result, center, axis, scale in zip(results, centers, axes, scales):
        side = TEST_ALPHA * scale / 64
        # marching squares around a full 64 x 64 mask: the square [-0.5, 63.5]^2 with each
        # corner cut by a right triangle of legs 0.5
        np.testing.assert_allclose(result.area_px, (64**2 - 4 * 0.125) * side**2, rtol=1e-9)
        np.testing.assert_allclose(polygon_centroid(result.contour), center, atol=1e-6)
        # the patch's left edge (x = -0.5) lies half a patch side from the centre, across
        # the spine axis
        across = np.array([axis[1], -axis[0]])
        offsets = (result.contour - center) @ across
        np.testing.assert_allclose(np.abs(offsets).max(), 32 * side, rtol=1e-9)
        assert result.probabilities.shape == (64, 64) and result.probabilities.min() > 0.99


def test_quality_flags(radiograph):
    image, centers, contours = radiograph
    truth = extract_patches(image, centers, contours).masks.copy()
    truth[1, :3, :3] = 1  # a second component in a corner of C4
    truth[3] = 0
    truth[3, 28:32, 28:32] = 1  # C6 far smaller than C5 and C7
    truth[4] = 0  # C7 empty
    results = Segmenter(_GroundTruthModel(truth)).segment(image, centers)
    assert results[1].flags == ["several_components"] and results[1].components == 2
    assert results[3].flags == ["area_outlier"]
    assert results[4].flags == ["empty"] and results[4].contour.shape == (0, 2)
    assert results[0].flags == [] and results[2].flags == []


def test_bad_input_is_one_clear_error(radiograph, whole_patch_model, tmp_path):
    image, centers, _ = radiograph
    segmenter = Segmenter(_GroundTruthModel(np.zeros((5, 64, 64))))
    outside = centers.copy()
    outside[2] = [image.shape[1] + 3.0, 10.0]
    with pytest.raises(DataError, match=r"centers\[2\].*outside the 478 x 543 image"):
        segmenter.segment(image, outside)
    with pytest.raises(ConfigError, match="lone vertebra centre"):
        segmenter.segment(image, centers[:1])
    with pytest.raises(DataError, match="model not found"):
        Segmenter(tmp_path / "missing.keras")
    for name in ("broken.keras", "broken.tflite"):
        (tmp_path / name).write_bytes(b"not a model")
        with pytest.raises(DataError, match="cannot load"):
            Segmenter(tmp_path / name)
    with pytest.raises(DataError, match="not a SavedModel folder"):
        Segmenter(tmp_path)
    with pytest.raises(DataError, match=r"expected float32 \(N, 64, 64, 1\), got shape"):
        check_patch_batch(np.zeros((2, 32, 32, 1), np.float32))
    with pytest.raises(DataError, match="got dtype uint8"):
        Segmenter(whole_patch_model).predict_patches(np.zeros((2, 64, 64, 1), np.uint8))
    with pytest.raises(DataError, match="2 labels for 5 centres"):
        segmenter.segment(image, centers, ["C3", "C4"])


def test_single_centre_with_explicit_scale(radiograph, whole_patch_model, tmp_path):
    image, centers, _ = radiograph
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(whole_patch_model.read_bytes())
    (result,) = Segmenter(run_dir).segment(image, centers[2:3], scale=40.0)
    np.testing.assert_allclose(result.area_px, (64**2 - 0.5) * (TEST_ALPHA * 40 / 64) ** 2)


def test_centre_parsing(tmp_path):
    np.testing.assert_array_equal(parse_centers("1,2; 3.5,4"), [[1, 2], [3.5, 4]])
    with pytest.raises(DataError, match=r"centers\[1\]: expected 'x,y', got '3'"):
        parse_centers("1,2;3")
    text = tmp_path / "centers.txt"
    text.write_text("1 2\n3,4\n")
    np.testing.assert_array_equal(read_centers_file(text), [[1, 2], [3, 4]])
    listed = tmp_path / "centers.json"
    listed.write_text(json.dumps([[1, 2], [3, 4]]))
    np.testing.assert_array_equal(read_centers_file(listed), [[1, 2], [3, 4]])
    with pytest.raises(DataError, match="cannot read"):
        read_centers_file(tmp_path / "none.txt")


@pytest.fixture(scope="module")
def dicom_radiograph(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic") / "data"
    dataset = generate(1, 3, folder, size="small", image_format="dicom", progress=False)
    record = dataset.images[0]
    return dataset.image_path(record), record


def test_cli_writes_a_valid_reimportable_dataset(dicom_radiograph, whole_patch_model, tmp_path,
                                                 capsys):
    image_path, record = dicom_radiograph
    centers = ";".join(f"{x},{y}" for x, y in (v.center for v in record.vertebrae))
    out = tmp_path / "segmented"
    code = main(["segment", str(image_path), "--centers", centers, "--model",
                 str(whole_patch_model), "--out", str(out), "--labels", "C3,C4,C5,C6,C7"])
    assert code == 0, capsys.readouterr().err
    assert not [p for p in validate_dataset(out) if p.is_error]
    dataset = load_dataset(out)
    (image,) = dataset.images
    assert [v.label for v in image.vertebrae] == ["C3", "C4", "C5", "C6", "C7"]
    _, meta = read_image(dataset.image_path(image))
    row_mm, col_mm = meta["pixel_spacing_mm"]
    for vertebra, truth in zip(image.vertebrae, record.vertebrae):
        np.testing.assert_allclose(vertebra.center, truth.center)
        np.testing.assert_allclose(vertebra.extra["contour_mm"],
                                   vertebra.contour * [col_mm, row_mm], rtol=1e-12)
    assert (out / "overlay.png").stat().st_size > 0


def test_cli_bad_centre_is_one_line(dicom_radiograph, whole_patch_model, tmp_path, capsys):
    image_path, _ = dicom_radiograph
    code = main(["segment", str(image_path), "--centers", "10,10;99999,20", "--model",
                 str(whole_patch_model), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "centers[1]" in err[0] and "outside" in err[0]
    assert not (tmp_path / "out").exists()
    code = main(["segment", str(image_path), "--centers", "100,100", "--model",
                 str(whole_patch_model), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "scale" in err[0]


def test_keras_model_object_is_accepted(radiograph):
    image, centers, _ = radiograph
    model = build_unet("smoke")
    probabilities = Segmenter(model).predict_patches(extract_patches(image, centers).x())
    expected = keras.ops.convert_to_numpy(model(extract_patches(image, centers).x()))
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


def test_serving_base_folder_resolves_to_its_highest_version(tmp_path):
    from vertseg_tf.deploy.inference import latest_version

    for version in ("1", "2", "10"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").write_bytes(b"")
    (tmp_path / "11").mkdir()  # being written: no saved_model.pb yet
    assert latest_version(tmp_path) == tmp_path / "10"
    assert latest_version(tmp_path / "2") == tmp_path / "2"


@pytest.mark.parametrize("scale", ["1e308", "-5", "nan", "0", "inf"])
def test_cli_scale_out_of_range_is_one_line(dicom_radiograph, whole_patch_model, tmp_path,
                                            capsys, scale):
    image_path, _ = dicom_radiograph
    code = main(["segment", str(image_path), "--centers", "100,100", "--scale", scale,
                 "--model", str(whole_patch_model), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "scale" in err[0], captured
    assert "nan" not in captured.out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("labels", "words"), [("X9,C4,C5,C6,C7", "'X9'"),
                                               ("C3,C3,C5,C6,C7", "C3 appears twice")])
def test_cli_labels_validate_would_reject_are_refused(dicom_radiograph, whole_patch_model,
                                                      tmp_path, capsys, labels, words):
    image_path, record = dicom_radiograph
    centers = ";".join(f"{x},{y}" for x, y in (v.center for v in record.vertebrae))
    code = main(["segment", str(image_path), "--centers", centers, "--model",
                 str(whole_patch_model), "--out", str(tmp_path / "out"), "--labels", labels])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and words in err[0] and "labels" in err[0], err
    assert not (tmp_path / "out").exists()


def test_cli_segment_replaces_a_folder_only_with_overwrite(dicom_radiograph, whole_patch_model,
                                                           tmp_path, capsys):
    image_path, record = dicom_radiograph
    centers = ";".join(f"{x},{y}" for x, y in (v.center for v in record.vertebrae))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    arguments = ["segment", str(image_path), "--centers", centers, "--model",
                 str(whole_patch_model), "--out", str(out)]
    assert main(arguments) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert main([*arguments, "--overwrite"]) == 0
    assert not (out / "notes.txt").exists() and (out / "dataset.json").is_file()
