"""Segmentation without clicks: the locator's centres, a hidden C7 reported missing."""

import json

import numpy as np
import pytest

from vertseg_tf.data.images import read_image
from vertseg_tf.data.synthetic import generate
from vertseg_tf.deploy import Segmenter
from vertseg_tf.deploy.inference import segment_to_dataset
from vertseg_tf.locate.heatmaps import CanvasGeometry, render_heatmaps
from vertseg_tf.locate.locator import locate_from_heatmaps


def _disk_model(patches):
    rows, cols = np.mgrid[:64, :64]
    disk = ((rows - 31.5) ** 2 + (cols - 31.5) ** 2 < 15**2).astype(np.float32)
    masks = np.broadcast_to(disk, (len(patches), 64, 64))
    return np.stack([1.0 - masks, masks], axis=-1)


class _HeatmapLocator:
    """A locator whose heatmaps peak sharply at the true C3-C6 and are flat for C7 (a film
    whose shoulders hide C7), decoded by the package's own `locate_from_heatmaps`."""

    source = "test-heatmaps"

    def __init__(self, truth, shape):
        self.geometry = CanvasGeometry.fit(shape, 128, 2)
        maps = render_heatmaps(self.geometry.to_heatmap(truth[:4]), (64, 64), sigma=1.0)
        maps /= maps.sum(axis=(0, 1))
        self.maps = np.concatenate([maps, np.full((64, 64, 1), 1 / 64**2, np.float32)], -1)

    def locate(self, image):
        return locate_from_heatmaps(self.maps, self.geometry)


class _SevenLevelLocator(_HeatmapLocator):
    """`_HeatmapLocator` with sharp C2 and T1 channels around its C3-C7 ones (C7 flat)."""

    def __init__(self, truth, shape, c2, t1):
        super().__init__(truth, shape)
        ends = render_heatmaps(self.geometry.to_heatmap(np.array([c2, t1])), (64, 64), 1.0)
        ends /= ends.sum(axis=(0, 1))
        self.maps = np.concatenate([ends[..., :1], self.maps, ends[..., 1:]], -1)


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic") / "data"
    dataset = generate(1, 7, folder, size="small", version=2, progress=False)
    record = dataset.images[0]
    image, _ = read_image(dataset.image_path(record))
    truth = np.array([v.center for v in record.vertebrae])
    return dataset.image_path(record), image, truth, record.level_centers


def test_c2_and_t1_name_the_levels_but_only_c3_c7_are_segmented(film, tmp_path):
    image_path, image, truth, ends = film
    seven = _SevenLevelLocator(truth, image.shape, ends["C2"], ends["T1"])
    assert [level.label for level in seven.locate(image)] == [
        "C2", "C3", "C4", "C5", "C6", "C7", "T1"]
    five = _HeatmapLocator(truth, image.shape)
    with_ends = Segmenter(_shifted_disk_model, locator=seven).segment(image)
    without = Segmenter(_shifted_disk_model, locator=five).segment(image)
    assert [r.label for r in with_ends] == ["C3", "C4", "C5", "C6"]
    # the same patches as from C3-C6 alone: C2 and T1 change no scale and no refinement
    np.testing.assert_array_equal([r.affine for r in with_ends], [r.affine for r in without])
    np.testing.assert_array_equal([r.center for r in with_ends], [r.center for r in without])
    json_path, _ = segment_to_dataset(Segmenter(_disk_model, locator=seven), image_path, None,
                                      tmp_path / "out")
    levels = json.loads(json_path.read_text())["images"][0]["located_levels"]
    assert [label for label, level in levels.items() if level["found"]] == [
        "C2", "C3", "C4", "C5", "C6", "T1"]
    np.testing.assert_allclose(levels["T1"]["center"], ends["T1"], atol=0.05)
    assert "center" not in levels["C7"]


def test_segment_without_centres_uses_the_found_levels_and_never_guesses_c7(film):
    _, image, truth, _ = film
    segmenter = Segmenter(_disk_model, locator=_HeatmapLocator(truth, image.shape))
    results = segmenter.segment(image)
    assert [r.label for r in results] == ["C3", "C4", "C5", "C6"]
    assert all(r.center_source == "locator" and r.center_confidence > 0.9 for r in results)
    np.testing.assert_allclose([r.center for r in results], truth[:4], atol=1e-6)


def test_segment_to_dataset_records_sources_confidences_and_the_missing_level(film, tmp_path):
    image_path, image, truth, _ = film
    segmenter = Segmenter(_disk_model, locator=_HeatmapLocator(truth, image.shape))
    json_path, _ = segment_to_dataset(segmenter, image_path, None, tmp_path / "out", review=True)
    stored = json.loads(json_path.read_text())["images"][0]
    assert [v["label"] for v in stored["vertebrae"]] == ["C3", "C4", "C5", "C6"]
    assert {v["center_source"] for v in stored["vertebrae"]} == {"locator"}
    levels = stored["located_levels"]
    assert [levels[label]["found"] for label in ("C3", "C4", "C5", "C6", "C7")] == [
        True, True, True, True, False]
    # C7's flat map: its maximum is the first pixel, whose zero-padded 5 x 5 window holds 9
    # pixels of mass 1/4096.
    assert levels["C7"]["confidence"] == pytest.approx(9 / 64**2)
    assert stored["located_by"] == "test-heatmaps"
    assert (tmp_path / "out" / "review.png").is_file()


def _shifted_disk_model(patches):
    """A disk 3 patch pixels right of the patch centre: each refinement moves a centre there."""
    rows, cols = np.mgrid[:64, :64]
    disk = ((rows - 31.5) ** 2 + (cols - 34.5) ** 2 < 12**2).astype(np.float32)
    masks = np.broadcast_to(disk, (len(patches), 64, 64))
    return np.stack([1.0 - masks, masks], axis=-1)


@pytest.mark.parametrize("refine", [0, 1, 2])
def test_each_refinement_moves_the_located_centres_to_their_outlines_centroids(film, refine):
    from vertseg_tf.data.patches import extract_patches, vertebra_poses
    from vertseg_tf.geometry import apply_affine, invert_affine

    _, image, truth, _ = film
    locator = _HeatmapLocator(truth, image.shape)
    segmenter = Segmenter(_shifted_disk_model, locator=locator)
    results = segmenter.segment_located(image, locator.locate(image), refine=refine)
    expected = truth[:4].copy()
    for _ in range(refine):
        # Patches cut as the segmenter cuts them; the disk's centre (34.5, 31.5) in each.
        cut = extract_patches(image, expected, scale=vertebra_poses(expected)[1])
        expected = np.array([apply_affine(invert_affine(a), [[34.5, 31.5]])[0]
                             for a in cut.affines])
    np.testing.assert_allclose([r.center for r in results], expected, atol=0.05)
    if refine:
        assert np.linalg.norm(expected - truth[:4], axis=1).min() > 1.0


def test_clicked_centres_keep_their_source(film, tmp_path):
    _, image, truth, _ = film
    results = Segmenter(_disk_model).segment(image, truth)
    assert {r.center_source for r in results} == {"clicked"}
    assert {r.center_confidence for r in results} == {None}
