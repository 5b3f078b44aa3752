"""The locator's pure numpy parts against references computed here independently."""

import math

import numpy as np
import pytest

from vertseg_tf.locate.heatmaps import (
    MISSING_THRESHOLD,
    CanvasGeometry,
    decode_chain,
    decode_peaks,
    local_mass,
    located_scales,
    render_heatmaps,
    typical_spacing,
)
from vertseg_tf.locate.locator import locate_from_heatmaps


def _reference_gaussian(cx, cy, shape, sigma):
    out = np.zeros(shape)
    for row in range(shape[0]):
        for col in range(shape[1]):
            out[row, col] = math.exp(-((col - cx) ** 2 + (row - cy) ** 2) / (2 * sigma**2))
    return out


def test_render_matches_a_pixel_loop_and_leaves_missing_levels_empty():
    maps = render_heatmaps([[2.3, 1.6], [np.nan, np.nan], [0.0, 4.0]], (5, 6), sigma=1.2)
    assert maps.shape == (5, 6, 3) and maps.dtype == np.float32
    np.testing.assert_allclose(maps[..., 0], _reference_gaussian(2.3, 1.6, (5, 6), 1.2),
                               atol=1e-6)
    assert not maps[..., 1].any()
    np.testing.assert_allclose(maps[..., 2], _reference_gaussian(0.0, 4.0, (5, 6), 1.2),
                               atol=1e-6)


@pytest.mark.parametrize("center", [(3.0, 4.0), (3.37, 4.81), (5.49, 2.5), (2.51, 6.2)])
def test_log_parabola_refinement_recovers_a_gaussian_centre_exactly(center):
    maps = _reference_gaussian(*center, (9, 8), 1.5)[..., None]
    (peak,) = decode_peaks(maps, threshold=0.1)
    np.testing.assert_allclose(peak.xy, center, atol=1e-9)
    assert peak.confidence == pytest.approx(maps.max())


def test_peak_on_the_border_keeps_the_integer_position_on_that_axis():
    maps = _reference_gaussian(0.0, 2.4, (5, 4), 1.0)[..., None]
    (peak,) = decode_peaks(maps, threshold=0.1)
    np.testing.assert_allclose(peak.xy, [0.0, 2.4], atol=1e-9)


def test_confidence_maps_decide_missing_levels():
    maps = np.stack([_reference_gaussian(2.0, 2.0, (5, 5), 1.0)] * 2, -1)
    confidence = np.stack([np.full((5, 5), 0.5), np.full((5, 5), 0.2)], -1)
    findings = decode_peaks(maps, threshold=0.3, confidence=confidence)
    assert [f.found for f in findings] == [True, False]
    assert [f.confidence for f in findings] == [0.5, 0.2]


def test_a_weak_channel_is_missing_never_a_guess():
    strong = _reference_gaussian(2.0, 2.0, (5, 5), 1.0)
    weak = 0.29 * _reference_gaussian(1.0, 3.0, (5, 5), 1.0)
    findings = decode_peaks(np.stack([strong, weak, np.zeros((5, 5))], -1), threshold=0.3)
    assert [f.found for f in findings] == [True, False, False]
    assert np.isnan(findings[1].xy).all() and findings[1].confidence == pytest.approx(0.29)
    assert MISSING_THRESHOLD == 0.3


def test_geometry_maps_the_image_centre_to_the_heatmap_centre_and_back():
    geometry = CanvasGeometry.fit((100, 50), long_side=20, stride=2)
    assert geometry.scale == pytest.approx(0.2)
    assert geometry.resized_shape((100, 50)) == (20, 10)
    # The image's centre pixel position (24.5, 49.5) is the centre of the 5 x 10 heatmap
    # that covers the 10 x 20 resized image.
    np.testing.assert_allclose(geometry.to_heatmap([[24.5, 49.5]]), [[2.0, 4.5]])
    shifted = CanvasGeometry.fit((100, 50), 20, 2, offset=(4, 0))
    np.testing.assert_allclose(shifted.to_heatmap([[24.5, 49.5]]), [[4.0, 4.5]])
    points = np.array([[0.0, 0.0], [13.2, 77.7]])
    np.testing.assert_allclose(shifted.to_image(shifted.to_heatmap(points)), points, atol=1e-9)


def test_local_mass_matches_a_window_loop():
    maps = np.random.default_rng(1).uniform(size=(6, 7, 2))
    mass = local_mass(maps, radius=1)
    for row in range(6):
        for col in range(7):
            window = maps[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2]
            np.testing.assert_allclose(mass[row, col], window.sum(axis=(0, 1)), rtol=1e-12)


def test_locate_from_heatmaps_reports_a_hidden_c7_as_missing():
    """C7 under the shoulders: its distribution is spread, no window holds 0.3 of its mass."""
    geometry = CanvasGeometry.fit((100, 50), long_side=20, stride=2)
    truth = np.array([[25.0, 20.0], [26.0, 35.0], [27.0, 50.0], [27.5, 65.0]])
    channels = [_reference_gaussian(*xy, (10, 10), 0.8) for xy in geometry.to_heatmap(truth)]
    channels = [channel / channel.sum() for channel in channels]
    channels.append(np.full((10, 10), 0.01))
    located = locate_from_heatmaps(np.stack(channels, -1), geometry)
    assert [level.label for level in located] == ["C3", "C4", "C5", "C6", "C7"]
    assert [level.found for level in located] == [True, True, True, True, False]
    # A flat map's maximum is its first pixel, whose (zero-padded) 5 x 5 window holds 3 x 3
    # pixels of mass 0.01.
    assert located[4].center is None and located[4].confidence == pytest.approx(0.09)
    assert all(level.confidence > 0.9 for level in located[:4])
    np.testing.assert_allclose([level.center for level in located[:4]], truth, atol=1e-6)


def _spine_maps(peaks, shape=(40, 20), sigma=1.0):
    """One spatial distribution per level: a sum of Gaussians (xy, weight), normalised."""
    channels = []
    for level in peaks:
        channel = sum(weight * _reference_gaussian(x, y, shape, sigma) for (x, y), weight in level)
        channels.append(channel / channel.sum())
    return np.stack(channels, -1)


def test_chain_moves_a_level_off_a_vertebra_its_neighbour_holds_more_strongly():
    # Vertebrae 8 px apart at y = 6, 14, 22, 30. C4's strongest peak sits on C3's vertebra,
    # its second (weaker) one on its own; argmax decoding gives both the same place.
    maps = _spine_maps([[((10, 6), 1.0)], [((10, 6), 0.6), ((10, 14), 0.4)],
                        [((10, 22), 1.0)], [((10, 30), 1.0)]])
    mass = local_mass(maps)
    assert np.allclose(decode_peaks(maps, 0.3, mass)[1].xy, [10, 6], atol=1e-6)
    chain = decode_chain(maps, 0.3, mass)
    np.testing.assert_allclose([p.xy for p in chain], [[10, 6], [10, 14], [10, 22], [10, 30]],
                               atol=0.05)
    assert chain[1].confidence == pytest.approx(mass[14, 10, 1])


def test_chain_reports_missing_a_level_with_no_place_of_its_own():
    maps = _spine_maps([[((10, 6), 1.0)], [((10, 6), 1.0)], [((10, 22), 1.0)],
                        [((10, 30), 1.0)]])
    chain = decode_chain(maps, 0.3, local_mass(maps))
    assert [p.found for p in chain] == [True, False, True, True]
    # Still the mass at that channel's maximum, which is on C3's vertebra.
    assert chain[1].confidence > 0.9


def test_chain_refuses_a_level_above_the_one_before():
    maps = _spine_maps([[((10, 10), 1.0)], [((10, 20), 1.0)], [((10, 4), 1.0)]])
    assert [p.found for p in decode_chain(maps, 0.3, local_mass(maps))] == [True, True, False]


def test_chain_refuses_a_level_far_off_the_spacing():
    # Typical spacing: the median of 6, 6, 6, 32 / 3, 26 / 2 and 20 per level, 8.33; C6 lies
    # 20 below C5 (2.4 spacings for one level, above the 1.5 allowed), 26 below C4 (1.56 per
    # level) and only fits after C3 with C4 and C5 missing, a chain of lower score.
    maps = _spine_maps([[((10, 4), 1.0)], [((10, 10), 1.0)], [((10, 16), 1.0)],
                        [((10, 36), 1.0)]])
    assert [p.found for p in decode_chain(maps, 0.3, local_mass(maps))] == [
        True, True, True, False]


def test_chain_never_finds_a_level_under_the_threshold():
    maps = _spine_maps([[((10, 6), 1.0)], [((10, 14), 1.0)]], sigma=1.0)
    maps[..., 1] = 1.0 / maps[..., 1].size
    assert [p.found for p in decode_chain(maps, 0.3, local_mass(maps))] == [True, False]


def test_typical_spacing_is_the_median_step_per_level_over_every_pair():
    # C3, C4, C5 and C7 found (C6 missing): steps per level 30, 30, 30 (C3-C4, C3-C5, C4-C5),
    # 150 / 4, 120 / 3 and 90 / 2 (to C7); their median is (30 + 37.5) / 2
    centers = [[0.0, 0.0], [0.0, 30.0], [0.0, 60.0], [np.nan, np.nan], [0.0, 150.0]]
    assert typical_spacing(centers) == 33.75
    assert typical_spacing([[5.0, 5.0], [np.nan, np.nan]]) is None


def test_located_scales_count_missing_levels_and_stay_near_the_typical_spacing():
    # C7 two levels below C5 at 1.5 spacings: its scale 90 / 2 = 45 is cut to 1.25 x 33.75
    far = [[0.0, 0.0], [0.0, 30.0], [0.0, 60.0], [np.nan, np.nan], [0.0, 150.0]]
    assert located_scales(far, scale_range=None).tolist() == [30.0, 30.0, 37.5, 45.0]
    assert located_scales(far).tolist() == [30.0, 30.0, 37.5, 42.1875]
    # "C7" found where C6 is, C6 missing: 40 / 2 = 20 is raised to 0.8 x 35 (median of the
    # per-level steps 40, 40, 40, 30, 80 / 3, 20)
    near = [[0.0, 0.0], [0.0, 40.0], [0.0, 80.0], [np.nan, np.nan], [0.0, 120.0]]
    assert located_scales(near, scale_range=None).tolist() == [40.0, 40.0, 30.0, 20.0]
    assert located_scales(near).tolist() == [40.0, 40.0, 30.0, 28.0]
