"""The locator's pure numpy parts against references computed here independently."""

import math

import numpy as np
import pytest

from vertseg_tf.locate.heatmaps import (
    MISSING_THRESHOLD,
    CanvasGeometry,
    decode_peaks,
    local_mass,
    render_heatmaps,
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
