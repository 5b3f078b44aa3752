import numpy as np
import pytest

from vertseg_tf.asm import ASMG, ASMRF
from vertseg_tf.asm.profiles import (
    from_level,
    gaussian_pyramid,
    landmark_normals,
    normalised_derivative,
    sample,
    sample_normal_profiles,
    to_level,
)
from vertseg_tf.errors import ConfigError


def test_level_coordinates_follow_two_by_two_blocks():
    # Coarse pixel (0, 0) of level 1 covers patch pixels 0 and 1: its centre is patch 0.5.
    np.testing.assert_allclose(from_level(np.array([[0.0, 0.0]]), 1), [[0.5, 0.5]], atol=1e-12)
    np.testing.assert_allclose(from_level(np.array([[0.0, 0.0]]), 2), [[1.5, 1.5]], atol=1e-12)
    points = np.random.default_rng(0).uniform(0, 63, size=(10, 2))
    for level in range(4):
        np.testing.assert_allclose(from_level(to_level(points, level), level), points, atol=1e-12)


def test_pyramid_keeps_a_linear_ramp_at_mapped_coordinates():
    # A linear ramp survives smoothing (away from the border) and block averaging, so the
    # coarse value at a mapped point equals the fine ramp there.
    ramp = np.tile(np.arange(64, dtype=float), (64, 1))
    pyramid = gaussian_pyramid(ramp, 3)
    assert [level.shape for level in pyramid] == [(64, 64), (32, 32), (16, 16)]
    for level in (1, 2):
        coarse = np.array([[5.0, 7.0], [9.0, 3.0]])
        expected = from_level(coarse, level)[:, 0]
        np.testing.assert_allclose(sample(pyramid[level], coarse), expected, atol=1e-9)


def test_normals_of_a_circle_point_outwards():
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1) * 10 + 32  # positive shoelace area
    np.testing.assert_allclose(landmark_normals(circle), (circle - 32) / 10, atol=1e-12)


def test_normal_profiles_sample_along_the_normal():
    image = np.tile(np.arange(64, dtype=float), (64, 1))  # value = x
    points = np.array([[10.0, 20.0], [30.0, 5.0]])
    normals = np.array([[1.0, 0.0], [0.0, 1.0]])
    profiles = sample_normal_profiles(image, points, normals, np.array([-1.0, 0.0, 2.5]))
    np.testing.assert_allclose(profiles, [[9.0, 10.0, 12.5], [30.0, 30.0, 30.0]], atol=1e-12)


def test_normalised_derivative_has_unit_absolute_sum():
    profile = np.array([[0.0, 1.0, 3.0, 2.0]])
    np.testing.assert_allclose(normalised_derivative(profile, eps=0.0), [[0.25, 0.5, -0.25]])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ASMG(tolerance=-1.0), "tolerance must be a positive number"),
        (lambda: ASMG(n_levels=0), "n_levels must be an integer >= 1"),
        (lambda: ASMRF(seed=1.5), "seed must be an integer"),
        (lambda: ASMG(n_landmarks=2), "n_landmarks must be an integer >= 3"),
        (lambda: ASMG(variance_kept=1.5), "variance_kept must be in"),
    ],
)
def test_bad_options_are_config_errors(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_too_many_levels_for_the_patch_is_a_config_error():
    images = np.zeros((6, 32, 32))
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    contours = [np.stack([np.cos(t), np.sin(t)], axis=1) * 8 + 15.5] * 6
    with pytest.raises(ConfigError, match="n_levels=3 is too many for"):
        ASMG(n_landmarks=5, n_levels=3).fit(images, contours)
