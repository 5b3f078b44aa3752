import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.legacy_patches import legacy_distance_map
from tests.polylines import adversarial_outlines, random_outlines, similarity_maps
from vertseg_tf import geometry, similar_distance
from vertseg_tf.distance import segment_frames

UNIT_SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


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
        monkeypatch.setattr(similar_distance, name, value)
    rng = np.random.default_rng(5)
    outlines = random_outlines(21, 8)
    for shape in ((64, 64), (9, 23)):
        for closed in (True, False):
            for polyline in outlines:
                maps = similarity_maps(rng, 5, max(shape))
                similar = similar_distance.similar_distance_maps(polyline, maps, shape, closed)
                assert similar.shape == (5, *shape) and similar.dtype == np.float32
                reference = _mapped_reference(polyline, maps, shape, closed)
                np.testing.assert_allclose(similar, reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", adversarial_outlines())
def test_similar_maps_of_adversarial_outlines(name):
    polyline = adversarial_outlines()[name]
    maps = similarity_maps(np.random.default_rng(len(name)), 6, 64)
    for closed in (True, False):
        similar = similar_distance.similar_distance_maps(polyline, maps, (64, 64), closed)
        reference = _mapped_reference(polyline, maps, (64, 64), closed)
        np.testing.assert_allclose(similar, reference, rtol=0, atol=1e-5)


def test_ties_use_the_ragged_candidate_lists():
    """The 96-gon's centre ties all 96 segments: its cells hold more candidates than slots."""
    polyline = adversarial_outlines()["96-gon on a pixel centre"]
    maps = similarity_maps(np.random.default_rng(0), 3, 64)
    scales, inverses = similar_distance._similarity_inverses(maps)
    frames = segment_frames([polyline], True)[:, 0]
    cells = similar_distance._CellTable(frames, inverses, scales, (64, 64))
    assert cells.count.max() > similar_distance._SLOTS
    centre = similar_distance.similar_distance_maps(polyline, maps[:1], (64, 64))[0]
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
    similar = similar_distance.similar_distance_maps(polyline, maps, (16, 16), closed)
    reference = _mapped_reference(polyline, maps, (16, 16), closed)
    np.testing.assert_allclose(similar, reference, rtol=0, atol=1e-5)


def test_similar_maps_refuse_a_map_that_is_not_a_similarity():
    shear = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]]])
    with pytest.raises(ValueError, match=r"affines\[1\] is not a similarity"):
        similar_distance.similar_distance_maps(UNIT_SQUARE, shear, (4, 4))
    with pytest.raises(ValueError, match="not a similarity"):
        similar_distance.similar_distance_maps(UNIT_SQUARE, np.zeros((1, 2, 3)), (4, 4))


def test_similar_maps_of_no_maps_and_of_an_empty_grid():
    maps = similarity_maps(np.random.default_rng(1), 2, 8)
    no_maps = similar_distance.similar_distance_maps(UNIT_SQUARE, np.zeros((0, 2, 3)), (4, 4))
    assert no_maps.shape == (0, 4, 4)
    assert similar_distance.similar_distance_maps(UNIT_SQUARE, maps, (0, 5)).shape == (2, 0, 5)
