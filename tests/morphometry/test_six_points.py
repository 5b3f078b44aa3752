import numpy as np
import pytest

from vertseg_tf.errors import DataError
from vertseg_tf.morphometry import check_outline, detect_facing, place_six_points, to_canonical
from vertseg_tf.morphometry.six_points import from_canonical, posterior_wall_direction


def rotate(points, degrees, about=(0.0, 0.0)):
    angle = np.radians(degrees)
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (np.asarray(points, float) - about) @ matrix.T + about


def box(x0, y0, depth, height):
    return np.array([[x0, y0], [x0 + depth, y0], [x0 + depth, y0 + height], [x0, y0 + height]])


def test_rectangle_points_sit_at_the_depth_stations_on_the_endplates():
    points = place_six_points(box(2.0, 3.0, 10.0, 8.0))
    expected_x = [3.0, 7.0, 11.0]
    np.testing.assert_allclose(points[:3], [[x, 3.0] for x in expected_x], atol=1e-9)
    np.testing.assert_allclose(points[3:], [[x, 11.0] for x in expected_x], atol=1e-9)


def test_densely_sampled_rotated_rectangle_keeps_its_frame():
    dense = np.concatenate([np.linspace(a, b, 25, endpoint=False)
                            for a, b in zip(box(0, 0, 16, 12), np.roll(box(0, 0, 16, 12), -1, 0))])
    turned = rotate(dense, 25.0, about=(8.0, 6.0))
    points = place_six_points(turned, down=rotate([[0.0, 1.0]], 30.0)[0])
    np.testing.assert_allclose(points, rotate(place_six_points(dense), 25.0, (8.0, 6.0)),
                               atol=1e-9)


def test_mirroring_round_trip_and_scaling():
    pixels = np.array([[10.0, 4.0], [3.0, 7.5]])
    canonical = to_canonical(pixels, (0.2, 0.5), "right")
    np.testing.assert_allclose(canonical, [[-5.0, 0.8], [-1.5, 1.5]])
    np.testing.assert_allclose(from_canonical(canonical, (0.2, 0.5), "right"), pixels)


@pytest.mark.parametrize(
    ("outline", "problem"),
    [
        ([[0, 0], [1, 0], [1, 1]], "3 distinct point(s)"),
        ([[0, 0], [1, 0], [1, np.nan], [0, 1]], "NaN"),
        ([[0, 0], [2, 2], [2, 0], [0, 2]], "intersects itself"),
        ([[0, 0], [1, 0], [2, 0], [3, 0]], "intersects itself"),
        ([[0, 0, 0], [1, 0, 0]], "shape"),
    ],
)
def test_bad_outlines_raise_a_data_error(outline, problem):
    with pytest.raises(DataError, match="C4.contour") as raised:
        check_outline(outline, "C4.contour")
    assert problem in str(raised.value)


def test_closing_point_repeated_is_accepted():
    square = box(0, 0, 4, 4)
    np.testing.assert_array_equal(check_outline(np.vstack([square, square[:1]])), square)


def test_posterior_wall_direction_follows_a_slanted_wall():
    # A parallelogram: the posterior wall leans 10 degrees while the endplates stay level.
    lean = np.tan(np.radians(10.0)) * 10.0
    parallelogram = np.array([[0.0, 0.0], [14.0, 0.0], [14.0 + lean, 10.0], [lean, 10.0]])
    dense = np.concatenate([np.linspace(a, b, 40, endpoint=False)
                            for a, b in zip(parallelogram, np.roll(parallelogram, -1, 0))])
    wall = posterior_wall_direction(dense, place_six_points(dense, down=[0.0, 1.0]))
    assert np.degrees(np.arctan2(wall[1], wall[0])) == pytest.approx(80.0, abs=1e-6)


def bowed_column(bow):
    """Five boxes whose centres bow by `bow` px towards +x at the middle."""
    offsets = bow * np.array([0.0, 0.75, 1.0, 0.75, 0.0])
    outlines = [box(100 + dx, 20 + 20 * k, 16, 12) for k, dx in enumerate(offsets)]
    centres = np.array([outline.mean(axis=0) for outline in outlines])
    return outlines, centres


def test_facing_from_the_curvature_of_the_column():
    outlines, centres = bowed_column(-8.0)  # convex towards smaller x: anterior there
    facing, score = detect_facing(outlines, centres)
    assert facing == "left" and score == pytest.approx(0.1 / 0.03)  # a 10 % bow, boxes: no lip
    mirrored = [np.c_[300 - o[:, 0], o[:, 1]] for o in outlines]
    facing, mirrored_score = detect_facing(mirrored, np.c_[300 - centres[:, 0], centres[:, 1]])
    assert facing == "right" and mirrored_score == pytest.approx(-score)


def test_facing_from_the_anterior_inferior_lip_when_the_column_is_straight():
    outlines, centres = bowed_column(0.0)
    lipped = [np.insert(o, 3, [o[3, 0] + 1.0, o[3, 1] + 2.0], axis=0) for o in outlines]
    assert detect_facing(lipped, centres)[0] == "left"
    mirrored = [np.c_[-o[:, 0], o[:, 1]] for o in lipped]
    assert detect_facing(mirrored, np.c_[-centres[:, 0], centres[:, 1]])[0] == "right"


def test_a_clear_lip_outweighs_a_slight_bow_the_other_way():
    outlines, centres = bowed_column(2.0)  # bow 2.5 % towards +x: a weak "right" cue
    lipped = [np.insert(o, 3, [o[3, 0] + 1.0, o[3, 1] + 3.0], axis=0) for o in outlines]
    assert detect_facing(outlines, centres)[0] == "right"
    assert detect_facing(lipped, centres)[0] == "left"
