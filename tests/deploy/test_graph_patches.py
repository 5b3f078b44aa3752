"""The in-graph test-patch pipeline against `vertseg_tf.data.patches` and known geometry."""

import numpy as np
import pytest

from vertseg_tf.data.patches import TEST_ALPHA, extract_patches, patch_affine, vertebra_poses
from vertseg_tf.deploy.graph_patches import (
    cut_patches_in_graph,
    normalise_patches,
    patch_affines_in_graph,
    typical_spacing_in_graph,
)

# a curved spine whose top vertebra lies 8 px from the image border
CENTERS = np.array([[30.0, 8.0], [38.5, 47.0], [44.0, 88.3], [46.0, 131.0], [43.2, 170.9]])


def test_affines_match_vertebra_poses_and_patch_affine():
    axes, scales = vertebra_poses(CENTERS)
    expected = [patch_affine(c, a, s, TEST_ALPHA, 0.0) for c, a, s in zip(CENTERS, axes, scales)]
    np.testing.assert_allclose(patch_affines_in_graph(CENTERS).numpy(), expected, atol=1e-9)


def test_a_missing_level_between_found_ones_counts_as_a_level():
    from vertseg_tf.locate.heatmaps import located_scales

    levels = np.array([0, 2, 3])  # C4 missing
    centers = np.array([[50.0, 20.0], [50.0, 100.0], [50.0, 140.0]])
    scales = located_scales(np.array([centers[0], [np.nan, np.nan], *centers[1:]]))
    assert scales.tolist() == [40.0, 40.0, 40.0]
    affines = patch_affines_in_graph(centers, levels).numpy()
    np.testing.assert_allclose(affines[:, :, :2], [64 / (1.5 * 40.0) * np.eye(2)] * 3,
                               atol=1e-12)


def test_located_scales_are_kept_near_the_typical_spacing_in_the_graph_too():
    # "C7" found where C6 is, C6 missing: scale 20 raised to 0.8 x 35 (tests/locate)
    levels = np.array([0, 1, 2, 4])
    centers = np.array([[50.0, 0.0], [50.0, 40.0], [50.0, 80.0], [50.0, 120.0]])
    affines = patch_affines_in_graph(centers, levels).numpy()
    zooms = [64 / (1.5 * scale) for scale in (40.0, 40.0, 30.0, 28.0)]
    np.testing.assert_allclose(affines[:, :, :2], [z * np.eye(2) for z in zooms], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_typical_spacing_in_the_graph_is_the_numpy_one(seed):
    from vertseg_tf.locate.heatmaps import typical_spacing

    rng = np.random.default_rng(seed)
    levels = np.sort(rng.choice(5, size=2 + seed, replace=False))
    points = rng.uniform(0, 300, (len(levels), 2))
    per_level = np.full((5, 2), np.nan)
    per_level[levels] = points
    assert float(typical_spacing_in_graph(points, levels)) == pytest.approx(
        typical_spacing(per_level), rel=1e-12)
    assert np.isnan(float(typical_spacing_in_graph(points[:1], levels[:1])))


def test_a_straight_spine_gives_upright_patches_of_known_zoom():
    centers = np.array([[50.0, 20.0], [50.0, 60.0], [50.0, 110.0]])
    affines = patch_affines_in_graph(centers).numpy()
    # scales 40, 45, 50 px (mean distance to the neighbours); zoom 64 / (1.5 s); no rotation
    for affine, center, scale in zip(affines, centers, (40.0, 45.0, 50.0)):
        zoom = 64 / (1.5 * scale)
        np.testing.assert_allclose(affine[:, :2], zoom * np.eye(2), atol=1e-12)
        np.testing.assert_allclose(affine @ [*center, 1.0], [31.5, 31.5], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_cut_patches_match_extract_patches_at_the_border_too(seed):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:200, :90]
    image = (2000 + 800 * np.sin(cols / 7.0) * np.cos(rows / 11.0)
             + rng.uniform(0, 50, (200, 90))).astype(np.float32)
    expected = extract_patches(image, CENTERS).x()
    cut = cut_patches_in_graph(image, patch_affines_in_graph(CENTERS))
    assert cut.shape == (5, 64, 64, 1)
    np.testing.assert_allclose(normalise_patches(cut).numpy(), expected, atol=1e-3)


def test_a_flat_patch_normalises_to_zeros():
    raw = np.full((2, 64, 64, 1), 900.0, np.float32)
    raw[1] += np.arange(64, dtype=np.float32)[None, :, None]
    out = normalise_patches(raw).numpy()
    assert not out[0].any()
    ramp = np.arange(64) - 31.5
    np.testing.assert_allclose(out[1, 0, :, 0], ramp / ramp.std(), atol=1e-5)
