import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.legacy_patches import legacy_distance_map
from tests.polylines import adversarial_outlines, random_outlines, similarity_maps
from vertseg_tf import distance, geometry

UNIT_SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def test_geometry_re_exports_the_distances():
    for name in ("point_to_polyline_distance", "polyline_distance_map", "polyline_distance_maps"):
        assert getattr(geometry, name) is getattr(distance, name)


def test_point_to_unit_square_distance():
    points = np.array([[0.5, 0.5], [0.5, 0.25], [2.0, 0.5], [-3.0, -4.0], [1.0, 0.3], [0.5, 1.5]])
    expected = np.array([0.5, 0.25, 1.0, 5.0, 0.0, 0.5])
    distances = distance.point_to_polyline_distance(points, UNIT_SQUARE)
    np.testing.assert_allclose(distances, expected, atol=1e-12)


def test_open_polyline_distance_ignores_closing_segment():
    points = np.array([[-0.5, 0.5]])
    assert distance.point_to_polyline_distance(points, UNIT_SQUARE, closed=True)[0] == 0.5
    open_distance = distance.point_to_polyline_distance(points, UNIT_SQUARE, closed=False)[0]
    assert open_distance == pytest.approx(np.hypot(0.5, 0.5))


def test_distance_matches_brute_force_on_random_points(monkeypatch):
    rng = np.random.default_rng(3)
    polyline = rng.uniform(0, 10, (7, 2))
    points = rng.uniform(-2, 12, (50, 2))
    dense = np.concatenate(
        [
            a + np.linspace(0, 1, 20001)[:, None] * (b - a)
            for a, b in zip(polyline, np.roll(polyline, -1, 0))
        ]
    )
    brute = np.sqrt(((points[:, None] - dense[None]) ** 2).sum(-1)).min(1)
    monkeypatch.setattr(distance, "_POINTS_PER_CHUNK", 7)
    exact = distance.point_to_polyline_distance(points, polyline)
    assert np.all(exact <= brute + 1e-12)
    np.testing.assert_allclose(exact, brute, atol=1e-3)


def test_distance_map_of_horizontal_line():
    y0 = 2.25
    line = np.array([[-100.0, y0], [100.0, y0]])
    dist = distance.polyline_distance_map(line, (6, 5), closed=False)
    ys = np.arange(6, dtype=np.float64)[:, None] * np.ones((1, 5))
    assert dist.dtype == np.float32
    np.testing.assert_allclose(dist, np.abs(ys - y0), atol=1e-6)


def test_single_vertex_and_repeated_vertex_polylines():
    points = np.array([[3.0, 4.0], [0.0, -2.0]])
    np.testing.assert_allclose(
        distance.point_to_polyline_distance(points, np.zeros((1, 2))), [5.0, 2.0]
    )
    repeated = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(
        distance.point_to_polyline_distance(points, repeated), [np.hypot(2.0, 3.0), 2.0]
    )


def test_distance_maps_equal_the_every_segment_reference():
    outlines = random_outlines(11, 60)
    for shape in ((13, 7), (16, 16), (1, 5)):
        for closed in (True, False):
            maps = distance.polyline_distance_maps(outlines, shape, closed)
            assert maps.shape == (len(outlines), *shape) and maps.dtype == np.float32
            reference = np.stack([legacy_distance_map(o, shape, closed) for o in outlines])
            np.testing.assert_allclose(maps, reference, rtol=0, atol=1e-5)


def test_distance_map_far_from_the_curve_and_of_a_point():
    far = distance.polyline_distance_map(np.array([[500.0, -300.0], [520.0, -300.0]]), (8, 8))
    ys, xs = np.mgrid[0:8, 0:8]
    expected = np.hypot(np.maximum(500.0 - xs, 0.0), ys + 300.0)
    np.testing.assert_allclose(far, expected, rtol=1e-6)
    point = distance.polyline_distance_map(np.array([[2.0, 3.0]]), (5, 6))
    np.testing.assert_allclose(point, np.hypot(xs[:5, :6] - 2.0, ys[:5, :6] - 3.0), atol=1e-6)


def _mapped_reference(polyline, maps, shape, closed):
    """Every segment measured at every pixel (the previous cutter's map) after each map."""
    return np.stack([
        legacy_distance_map(geometry.apply_affine(a, polyline), shape, closed) for a in maps
    ])


# The default structure, and settings that push every part of it: one slot (most cells use the
# ragged list), cells three pixels wide (many candidates each), tiny chunks of tiles and maps.
STRUCTURES = {
    "default": {},
    "one slot": {"_SLOTS": 1},
    "wide cells": {"_CELL_PIXELS": 3.0},
    "small chunks": {"_TILE_PAIRS_PER_CHUNK": 300, "_MAPS_PER_CHUNK": 1},
}


@pytest.mark.parametrize("structure", STRUCTURES)
def test_similar_maps_equal_the_every_segment_reference(structure, monkeypatch):
    for name, value in STRUCTURES[structure].items():
        monkeypatch.setattr(distance, name, value)
    rng = np.random.default_rng(5)
    outlines = random_outlines(21, 8)
    for shape in ((64, 64), (9, 23)):
        for closed in (True, False):
            for polyline in outlines:
                maps = similarity_maps(rng, 5, max(shape))
                similar = distance.similar_distance_maps(polyline, maps, shape, closed)
                assert similar.shape == (5, *shape) and similar.dtype == np.float32
                reference = _mapped_reference(polyline, maps, shape, closed)
                np.testing.assert_allclose(similar, reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", adversarial_outlines())
def test_similar_maps_of_adversarial_outlines(name):
    polyline = adversarial_outlines()[name]
    maps = similarity_maps(np.random.default_rng(len(name)), 6, 64)
    for closed in (True, False):
        similar = distance.similar_distance_maps(polyline, maps, (64, 64), closed)
        reference = _mapped_reference(polyline, maps, (64, 64), closed)
        np.testing.assert_allclose(similar, reference, rtol=0, atol=1e-5)


def test_ties_use_the_ragged_candidate_lists():
    """The 96-gon's centre ties all 96 segments: its cells hold more candidates than slots."""
    polyline = adversarial_outlines()["96-gon on a pixel centre"]
    maps = similarity_maps(np.random.default_rng(0), 3, 64)
    scales, inverses = distance._similarity_inverses(maps)
    frames = distance._segment_frames([polyline], True)[:, 0]
    cells = distance._CellTable(frames, inverses, scales, (64, 64))
    assert cells.count.max() > distance._SLOTS
    centre = distance.similar_distance_maps(polyline, maps[:1], (64, 64))[0]
    # the first map is a quarter turn at scale 2: the centre (10, 10) lands on pixel (32, 32)
    assert centre[32, 32] == pytest.approx(2.0 * 9.0 * np.cos(np.pi / 96), abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    points=st.lists(
        st.tuples(st.floats(-5.0, 25.0), st.floats(-5.0, 25.0)), min_size=1, max_size=12
    ),
    angle=st.floats(-np.pi, np.pi),
    scale=st.floats(0.2, 5.0),
    reflect=st.booleans(),
    shift=st.tuples(st.floats(-20.0, 20.0), st.floats(-20.0, 20.0)),
    closed=st.booleans(),
)
def test_similar_maps_equal_the_reference_for_any_polyline(
    points, angle, scale, reflect, shift, closed
):
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if reflect:
        linear[:, 0] *= -1.0
    maps = np.stack([
        np.column_stack([linear, np.array([8.0, 8.0]) + shift - linear @ [10.0, 10.0]]),
        np.column_stack([linear.T / scale, [3.0, -1.0]]),  # a second, unscaled map
    ])
    polyline = np.array(points, dtype=np.float64)
    similar = distance.similar_distance_maps(polyline, maps, (16, 16), closed)
    reference = _mapped_reference(polyline, maps, (16, 16), closed)
    np.testing.assert_allclose(similar, reference, rtol=0, atol=1e-5)


def test_similar_maps_refuse_a_map_that_is_not_a_similarity():
    shear = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]]])
    with pytest.raises(ValueError, match=r"affines\[1\] is not a similarity"):
        distance.similar_distance_maps(UNIT_SQUARE, shear, (4, 4))
    with pytest.raises(ValueError, match="not a similarity"):
        distance.similar_distance_maps(UNIT_SQUARE, np.zeros((1, 2, 3)), (4, 4))


def test_similar_maps_of_no_maps_and_of_an_empty_grid():
    maps = similarity_maps(np.random.default_rng(1), 2, 8)
    assert distance.similar_distance_maps(UNIT_SQUARE, np.zeros((0, 2, 3)), (4, 4)).shape == (
        0, 4, 4
    )
    assert distance.similar_distance_maps(UNIT_SQUARE, maps, (0, 5)).shape == (2, 0, 5)
