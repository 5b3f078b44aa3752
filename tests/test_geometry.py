import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.polylines import random_outlines
from vertseg_tf import geometry

UNIT_SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def test_rectangle_mask_area_equals_pixel_centre_count():
    x0, x1, y0, y1 = 2.3, 9.6, 1.0, 5.0
    rectangle = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    mask = geometry.polygon_to_mask(rectangle, (12, 14))
    ys, xs = np.mgrid[0:12, 0:14]
    expected = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, expected.astype(np.uint8))
    assert mask.sum() == 7 * 5


def test_polygon_partly_outside_grid_is_clipped():
    rectangle = np.array([[-5.0, -5.0], [2.0, -5.0], [2.0, 1.0], [-5.0, 1.0]])
    mask = geometry.polygon_to_mask(rectangle, (4, 4))
    assert mask.sum() == 3 * 2
    assert mask[:2, :3].all()


def test_mask_to_contours_of_block_is_half_pixel_outside_centres():
    mask = np.zeros((6, 7), np.uint8)
    mask[1:4, 2:5] = 1
    contours = geometry.mask_to_contours(mask)
    assert len(contours) == 1
    contour = contours[0]
    assert contour.min(0) == pytest.approx([1.5, 0.5])
    assert contour.max(0) == pytest.approx([4.5, 3.5])
    assert not np.allclose(contour[0], contour[-1])


def test_mask_to_contours_closes_at_border_and_finds_all_components():
    mask = np.zeros((5, 8), np.uint8)
    mask[0:2, 0:2] = 1
    mask[3:5, 5:8] = 1
    contours = geometry.mask_to_contours(mask)
    assert len(contours) == 2
    lows = sorted(tuple(np.round(c.min(0), 6)) for c in contours)
    assert lows == [(-0.5, -0.5), (4.5, 2.5)]
    assert geometry.mask_to_contours(np.zeros((3, 3))) == []


def test_resample_closed_square_by_arc_length():
    square = UNIT_SQUARE * 4
    points = geometry.resample_closed(square, 8, start_index=1)
    expected = [[4, 0], [4, 2], [4, 4], [2, 4], [0, 4], [0, 2], [0, 0], [2, 0]]
    np.testing.assert_allclose(points, expected, atol=1e-12)


def test_affine_inverse_round_trip():
    angle = np.deg2rad(37.0)
    linear = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    affine = np.hstack([linear, [[3.5], [-2.0]]])
    points = np.random.default_rng(0).normal(size=(10, 2)) * 50
    mapped = geometry.apply_affine(affine, points)
    np.testing.assert_allclose(mapped, points @ linear.T + [3.5, -2.0], atol=1e-9)
    back = geometry.apply_affine(geometry.invert_affine(affine), mapped)
    np.testing.assert_allclose(back, points, atol=1e-9)


def test_area_and_centroid_of_rectangle():
    rectangle = np.array([[1.0, 2.0], [5.0, 2.0], [5.0, 4.0], [1.0, 4.0]])
    assert geometry.polygon_area(rectangle) == pytest.approx(8.0)
    assert geometry.polygon_area(rectangle[::-1]) == pytest.approx(-8.0)
    np.testing.assert_allclose(geometry.polygon_centroid(rectangle), [3.0, 3.0])


def test_masks_equal_scikit_image_on_random_and_grid_aligned_polygons():
    from skimage.draw import polygon2mask

    polygons = [o for o in random_outlines(12, 90) if len(o) >= 3]
    polygons.append(np.array([[1.0, 1.0], [4.0, 1.0], [4.0, 3.0], [1.0, 3.0]]))  # edges on rows
    polygons.append(np.array([[2.0, 0.0], [4.0, 2.0], [2.0, 4.0], [0.0, 2.0]]))  # vertices on rows
    for shape in ((12, 9), (20, 20)):
        masks = geometry.polygons_to_masks(polygons, shape)
        assert masks.dtype == np.uint8
        for polygon, mask in zip(polygons, masks):
            expected = polygon2mask(shape, polygon[:, ::-1]).astype(np.uint8)
            np.testing.assert_array_equal(mask, expected)


@settings(max_examples=150, deadline=None)
@given(
    vertices=st.lists(
        st.tuples(st.integers(-12, 60), st.integers(-12, 60)), min_size=3, max_size=14
    ),
    step=st.sampled_from([1.0, 0.5, 0.25, 0.1, 1.0 / 3.0]),
    shape=st.tuples(st.integers(1, 24), st.integers(1, 24)),
)
def test_masks_equal_scikit_image_on_lattice_polygons(vertices, step, shape):
    """Vertices on lattices of pixel fractions: edges and crossings land on pixel centres."""
    from skimage.draw import polygon2mask

    polygon = np.array(vertices, dtype=np.float64) * step
    mask = geometry.polygons_to_masks([polygon, polygon[::-1]], shape)
    expected = polygon2mask(shape, polygon[:, ::-1]).astype(np.uint8)
    np.testing.assert_array_equal(mask[0], expected)
    np.testing.assert_array_equal(mask[1], polygon2mask(shape, polygon[::-1, ::-1]))


def test_polygon_is_simple_on_known_shapes():
    assert geometry.polygon_is_simple(UNIT_SQUARE)
    bow_tie = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert not geometry.polygon_is_simple(bow_tie)
    touching = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 2.0], [1.0, 1.0]])
    assert not geometry.polygon_is_simple(touching)  # a repeated vertex
    folded_back = np.array([[0.0, 0.0], [3.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    assert not geometry.polygon_is_simple(folded_back)  # collinear overlap
    concave = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [2.0, 1.0], [0.0, 4.0]])
    assert geometry.polygon_is_simple(concave)


def test_line_crossings_of_a_square():
    square = 2.0 * UNIT_SQUARE
    np.testing.assert_allclose(geometry.line_crossings(square, [1.0, 0.5], [0.0, 2.0]),
                               [-0.25, 0.75])
    # x + y = 3.5 crosses the top edge at (1.5, 2) and the right edge at (2, 1.5)
    np.testing.assert_allclose(geometry.line_crossings(square, [0.5, 3.0], [1.0, -1.0]),
                               [1.0, 1.5])
    assert len(geometry.line_crossings(square, [5.0, 0.0], [0.0, 1.0])) == 0
    across = geometry.line_crossings(square, [1.0, 1.0], [1.0, 0.0])
    np.testing.assert_allclose(across, [-1.0, 1.0])
    open_path = geometry.line_crossings(square, [1.0, 1.0], [1.0, 0.0], closed=False)
    np.testing.assert_allclose(open_path, [1.0])  # the closing edge x = 0 is left out


def test_second_moments_of_a_rotated_rectangle():
    depth, height, angle = 4.0, 2.0, 0.4
    rectangle = np.array([[0.0, 0.0], [depth, 0.0], [depth, height], [0.0, height]])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    axis_aligned = np.diag([depth**3 * height / 12.0, depth * height**3 / 12.0])
    np.testing.assert_allclose(geometry.polygon_second_moments(rectangle @ rotation.T + 3.0),
                               rotation @ axis_aligned @ rotation.T, atol=1e-12)
    np.testing.assert_allclose(geometry.polygon_second_moments(rectangle[::-1]), axis_aligned,
                               atol=1e-12)
