import numpy as np
import pytest

from vertseg_tf.morphometry import genant, genant_grade, measure_column
from vertseg_tf.morphometry.readouts import angle_difference


def trapezoid(anterior, posterior, depth, x0=0.0, y0=0.0):
    """A body symmetric about its horizontal mid-line: anterior wall at x0 (facing left)."""
    mid = y0 + posterior / 2.0
    return np.array([[x0, mid - anterior / 2], [x0 + depth, mid - posterior / 2],
                     [x0 + depth, mid + posterior / 2], [x0, mid + anterior / 2]])


def one(outline, spacing=None, facing="left", label="C5"):
    return measure_column([label], outlines=[outline], spacing=spacing, facing=facing)


def test_rectangle_in_mm_from_non_square_pixels():
    # 40 x 25 px at 0.4 mm per column and 0.5 mm per row: 16 mm deep, 12.5 mm high.
    rectangle = np.array([[10.0, 10.0], [50.0, 10.0], [50.0, 35.0], [10.0, 35.0]])
    vertebra = one(rectangle, spacing=(0.5, 0.4)).vertebra("C5")
    assert vertebra.unit == "mm"
    assert (vertebra.ha, vertebra.hm, vertebra.hp) == pytest.approx((12.5, 12.5, 12.5))
    assert (vertebra.ha_hp, vertebra.hm_hp) == pytest.approx((1.0, 1.0))
    assert vertebra.superior_endplate_deg == pytest.approx(0.0, abs=1e-9)
    assert vertebra.wedge_angle_deg == pytest.approx(0.0, abs=1e-9)
    assert vertebra.posterior_wall_deg == pytest.approx(90.0)
    assert (vertebra.genant_grade, vertebra.fracture_type, vertebra.height_loss) == (0, "none", 0)
    assert vertebra.ha_vs_neighbours is None
    np.testing.assert_allclose(vertebra.six_points[0], [14.0, 10.0])


def test_rectangle_without_spacing_is_in_pixels():
    vertebra = one(np.array([[0.0, 0.0], [20.0, 0.0], [20.0, 9.0], [0.0, 9.0]])).vertebra("C5")
    assert vertebra.unit == "px" and vertebra.hp == pytest.approx(9.0)


@pytest.mark.parametrize("facing", ["left", "right"])
def test_trapezoid_of_known_wedge_angle(facing):
    anterior, posterior, depth = 7.0, 11.0, 16.0
    outline = trapezoid(anterior, posterior, depth)
    if facing == "right":
        outline = np.c_[-outline[:, 0], outline[:, 1]]
    vertebra = one(outline, facing=facing).vertebra("C5")
    height_at = lambda f: anterior + f * (posterior - anterior)
    assert vertebra.ha == pytest.approx(height_at(0.1))
    assert vertebra.hm == pytest.approx(height_at(0.5))
    assert vertebra.hp == pytest.approx(height_at(0.9))
    half = np.degrees(np.arctan2((posterior - anterior) / 2, depth))
    assert vertebra.wedge_angle_deg == pytest.approx(2 * half)
    assert vertebra.superior_endplate_deg == pytest.approx(-half)
    assert vertebra.inferior_endplate_deg == pytest.approx(half)
    loss = 1 - height_at(0.1) / height_at(0.9)
    assert vertebra.height_loss == pytest.approx(loss)
    assert (vertebra.genant_grade, vertebra.fracture_type) == (genant_grade(loss), "wedge")


def test_wedge_angle_of_a_tilted_trapezoid_with_a_flat_inferior_endplate():
    # Inferior endplate flat, superior one rising 3 mm over 15 mm: the angle between them.
    outline = np.array([[0.0, 3.0], [15.0, 0.0], [15.0, 12.0], [0.0, 12.0]])
    turned = outline @ np.array([[np.cos(0.3), np.sin(0.3)], [-np.sin(0.3), np.cos(0.3)]])
    vertebra = one(turned).vertebra("C5")
    assert vertebra.wedge_angle_deg == pytest.approx(np.degrees(np.arctan2(3.0, 15.0)))


def test_biconcave_body():
    depth, height, dip = 16.0, 12.0, 2.0
    outline = np.array([[0, 0], [depth / 2, dip], [depth, 0], [depth, height],
                        [depth / 2, height - dip], [0, height]], dtype=float)
    vertebra = one(outline).vertebra("C5")
    assert vertebra.ha == pytest.approx(height - 2 * 0.2 * dip)
    assert vertebra.hm == pytest.approx(height - 2 * dip)
    assert vertebra.height_loss == pytest.approx(1 - (height - 2 * dip) / (height - 0.4 * dip))
    assert vertebra.fracture_type == "biconcave"


def box(x0, y0, depth=16.0, height=12.0):
    return np.array([[x0, y0], [x0 + depth, y0], [x0 + depth, y0 + height], [x0, y0 + height]])


def test_crush_against_the_neighbours_mean_posterior_height():
    outlines = [box(0, 0, height=12.0), box(0, 16, height=0.7 * 11.0), box(0, 30, height=10.0)]
    column = measure_column(["C4", "C5", "C6"], outlines=outlines, facing="left")
    crushed = column.vertebra("C5")
    assert crushed.hp_vs_neighbours == pytest.approx(0.7 * 11.0 / 11.0)
    assert crushed.height_loss == pytest.approx(0.3)
    assert (crushed.genant_grade, crushed.fracture_type) == (2, "crush")
    assert column.vertebra("C4").hp_vs_neighbours == pytest.approx(12.0 / 7.7)


@pytest.mark.parametrize(
    ("heights", "grade"),
    [((8.01, 10, 10), 0), ((8, 10, 10), 1), ((7.51, 10, 10), 1), ((7.5, 10, 10), 2),
     ((6, 10, 10), 2), ((5.99, 10, 10), 3), ((10, 7.5, 10), 2)],
)
def test_genant_grade_boundaries(heights, grade):
    assert genant(*heights)[1] == grade


def test_two_boxes_shifted_by_a_known_distance_along_a_tilted_endplate():
    shift, tilt = 2.5, np.radians(12.0)
    rotation = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    upper, lower = box(-shift, 0.0), box(0.0, 17.0)  # upper body moved anteriorly (-x)
    outlines = [upper @ rotation.T, lower @ rotation.T]
    centres = [o.mean(axis=0) for o in outlines]
    for facing, flip in (("left", 1.0), ("right", -1.0)):
        mirrored = [o * [flip, 1.0] for o in outlines]
        column = measure_column(["C5", "C6"], outlines=mirrored,
                                centres=np.array(centres) * [flip, 1.0], spacing=(0.2, 0.2),
                                facing=facing)
        segment = column.segments[0]
        assert segment.listhesis == pytest.approx(0.2 * shift)
        assert segment.segmental_angle_deg == pytest.approx(0.0, abs=1e-9)
        assert segment.over_limit is False


def test_lordosis_and_posterior_tangents_of_a_column_of_turned_boxes():
    labels = ["C3", "C4", "C5", "C6", "C7"]
    turns = [14.0, 7.0, 0.0, -5.0, -12.0]  # endplate angles, lordotic down the column
    outlines, centres = [], []
    for k, turn in enumerate(turns):
        angle = np.radians(turn)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        body = (box(-8.0, -6.0) @ rotation.T) + [0.0, 18.0 * k]
        outlines.append(body)
        centres.append([0.0, 18.0 * k])
    column = measure_column(labels, outlines=outlines, centres=np.array(centres), facing="left")
    assert column.lordosis_c3_c7_deg == pytest.approx(turns[0] - turns[-1])
    assert column.posterior_tangent_c3_c7_deg == pytest.approx(turns[0] - turns[-1])
    np.testing.assert_allclose([s.segmental_angle_deg for s in column.segments],
                               -np.diff(turns))
    np.testing.assert_allclose([v.superior_endplate_deg for v in column.vertebrae], turns)


def test_mirrored_film_gives_the_same_read_outs():
    from vertseg_tf.data.synthetic import synthesize

    record = synthesize(0, 4, size="small").record
    width = 1000.0
    read = {}
    for facing, flip in (("left", lambda p: p), ("right", lambda p: np.c_[width - p[:, 0],
                                                                        p[:, 1]])):
        column = measure_column(
            [v.label for v in record.vertebrae],
            outlines=[flip(v.contour) for v in record.vertebrae],
            centres=flip(np.array([v.center for v in record.vertebrae])),
            spacing=record.pixel_spacing_mm, facing=facing)
        read[facing] = column.to_dict()
    for side in read.values():
        side.pop("facing")
        for vertebra in side["vertebrae"]:
            vertebra.pop("six_points")
    assert read["left"] == read["right"]


def test_segment_only_between_adjacent_levels_and_bad_outline_kept_as_error():
    outlines = [box(0, 0), np.array([[0, 0], [1, 1], [1, 0], [0, 1.0]]), box(0, 34)]
    column = measure_column(["C3", "C4", "C5"], outlines=outlines, facing="left")
    assert [v.label for v in column.vertebrae] == ["C3", "C5"]
    assert column.segments == [] and "intersects itself" in column.errors["C4"]
    assert column.vertebra("C3").hp_vs_neighbours is None


def test_angle_difference_wraps():
    assert angle_difference(-179.0, 179.0) == pytest.approx(2.0)
    assert angle_difference(10.0, -10.0) == pytest.approx(20.0)
