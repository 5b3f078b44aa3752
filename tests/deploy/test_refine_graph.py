"""The in-graph outline centroids against `largest_outline` + `polygon_centroid` (numpy, scikit-
image's marching squares) on masks with holes, several components, diagonal contacts and
pixels on the patch border."""

import numpy as np
import pytest

from vertseg_tf.deploy.refine_graph import outline_centroids_in_graph
from vertseg_tf.geometry import largest_outline, polygon_centroid


def _reference(mask):
    outline = largest_outline(mask)[0]
    return polygon_centroid(outline) if len(outline) else None


def _blobs(seed, size=64):
    """A noisy blob with a hole, a smaller second blob and salt pixels; some touch the border."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    cx, cy = rng.uniform(10, size - 10, 2)
    radius = rng.uniform(8, 20)
    mask = (rows - cy) ** 2 + (cols - cx) ** 2 < radius**2
    mask &= ~((rows - cy) ** 2 + (cols - cx - radius / 3) ** 2 < (radius / 4) ** 2)  # a hole
    mask |= (rows - rng.uniform(0, size)) ** 2 + (cols - rng.uniform(0, size)) ** 2 < 25
    mask ^= rng.uniform(size=(size, size)) < 0.03  # salt, pepper and diagonal contacts
    return mask.astype(np.uint8)


@pytest.mark.parametrize("seed", range(6))
def test_centroids_match_the_outline_recentred_takes(seed):
    masks = np.stack([_blobs(2 * seed), _blobs(2 * seed + 1)])
    centroids, found = outline_centroids_in_graph(masks)
    for mask, centroid, has in zip(masks, centroids.numpy(), found.numpy()):
        assert has
        np.testing.assert_allclose(centroid, _reference(mask), atol=1e-9)


def test_known_shapes_an_empty_mask_and_equal_components():
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[0, 2:5, 1:7] = 1  # a 3 x 6 rectangle: centroid at its pixel centres' middle
    masks[1, 0, 0] = 1  # one pixel in the corner: a diamond around it
    masks[3, 1:3, 1:3] = 1  # two equal squares: the first in raster order counts
    masks[3, 5:7, 5:7] = 1
    centroids, found = outline_centroids_in_graph(masks)
    assert found.numpy().tolist() == [True, True, False, True]
    np.testing.assert_allclose(centroids.numpy()[[0, 1, 3]], [[3.5, 3.0], [0.0, 0.0], [1.5, 1.5]],
                               atol=1e-12)


def test_recentred_in_graph_is_recentred_through_the_patch_affines():
    from vertseg_tf.data.patches import extract_patches, patch_to_image
    from vertseg_tf.deploy.radiograph_signature import _recentred_in_graph
    from vertseg_tf.locate.heatmaps import recentred

    centers = np.array([[40.0, 30.0], [44.0, 70.0], [47.0, 112.0], [20.0, 150.0]])
    affines = extract_patches(np.zeros((160, 90)), centers).affines
    masks = np.stack([_blobs(seed) for seed in range(4)])
    masks[2] = 0  # an empty mask keeps its centre
    masks[3, :, :8] = 1  # a centroid off the image's left edge keeps it too
    masks[3, :, 8:] = 0
    outlines = {k: patch_to_image(largest_outline(mask)[0], affine) if mask.any() else
                np.zeros((0, 2)) for k, (mask, affine) in enumerate(zip(masks, affines))}
    expected = recentred(centers, outlines, (160, 90))
    moved = _recentred_in_graph(centers, masks, affines, (160, 90)).numpy()
    np.testing.assert_allclose(moved, expected, atol=1e-9)
    assert np.array_equal(moved[2:], centers[2:]) and not np.allclose(moved[:2], centers[:2])
