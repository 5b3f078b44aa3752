import numpy as np
import pytest

from benchmarks.legacy_patches import legacy_distance_map
from tests.polylines import random_outlines
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
