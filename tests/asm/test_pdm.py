import numpy as np
import pytest

from vertseg_tf.asm.pdm import PointDistributionModel, resample_contour
from vertseg_tf.errors import ConfigError, DataError


def ellipse(centre, half_width, half_height, n_points, angle=0.0):
    t = np.linspace(0.0, 2.0 * np.pi, n_points, endpoint=False)
    points = np.stack([half_width * np.cos(t), half_height * np.sin(t)], axis=1)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return points @ rotation.T + np.asarray(centre)


def noisy_ellipses(seed, count, centres, n_points, noise):
    """`count` seeded ellipses (half axes 12-18 by 8-12 px, centre coordinates drawn from
    `centres`, tilted up to 0.2 rad) with Gaussian noise of sd `noise` on every point."""
    rng = np.random.default_rng(seed)
    return [
        ellipse(
            rng.uniform(*centres, 2),
            rng.uniform(12, 18),
            rng.uniform(8, 12),
            n_points,
            angle=rng.uniform(-0.2, 0.2),
        )
        + rng.normal(scale=noise, size=(n_points, 2))
        for _ in range(count)
    ]


def test_resample_square_known_landmarks():
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    expected = [[2, 0], [4, 0], [4, 2], [4, 4], [2, 4], [0, 4], [0, 2], [0, 0]]
    np.testing.assert_allclose(resample_contour(square, 8), expected, atol=1e-12)


@pytest.mark.parametrize("roll", [0, 1, 3])
@pytest.mark.parametrize("reverse", [False, True])
def test_resample_independent_of_input_start_and_orientation(roll, reverse):
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    changed = np.roll(square, roll, axis=0)
    changed = changed[::-1] if reverse else changed
    np.testing.assert_allclose(
        resample_contour(changed, 8), resample_contour(square, 8), atol=1e-12
    )


def test_resample_equal_arc_spacing_and_start_direction():
    circle = ellipse((10.0, 20.0), 5.0, 5.0, 720)
    landmarks = resample_contour(circle, 12, start_direction=(1.0, 0.0))
    chords = np.linalg.norm(np.diff(np.vstack([landmarks, landmarks[:1]]), axis=0), axis=1)
    np.testing.assert_allclose(chords, chords.mean(), rtol=1e-3)
    np.testing.assert_allclose(landmarks[0], [15.0, 20.0], atol=1e-9)


def test_full_variance_model_reconstructs_training_shapes_exactly():
    contours = noisy_ellipses(seed=0, count=30, centres=(25, 38), n_points=60, noise=0.3)
    pdm = PointDistributionModel(n_landmarks=12, variance_kept=1.0).fit(contours)
    landmarks = pdm.landmarks(contours)
    for points in landmarks:
        _, _, fitted = pdm.fit_points(points, n_iterations=3, clamp=False)
        np.testing.assert_allclose(fitted, points, atol=1e-6)


def test_98_percent_model_reconstruction_error_matches_discarded_variance():
    # With 98 % of the variance kept, the mean squared residual of the aligned training shapes
    # is the sum of the discarded eigenvalues (times (n-1)/n). Mapped to patch pixels by the
    # mean pose scale this bounds the landmark RMS error; the fit re-optimises the pose, so it
    # may only do better (a 5 % margin covers the pose/shape alternation's approximation).
    contours = noisy_ellipses(seed=1, count=40, centres=(28, 35), n_points=80, noise=0.4)
    pdm = PointDistributionModel(n_landmarks=16, variance_kept=0.98).fit(contours)
    kept = pdm.variances.sum() / pdm.training_variances.sum()
    assert kept >= 0.98
    assert pdm.variances.sum() - pdm.variances[-1] < 0.98 * pdm.training_variances.sum()
    discarded = pdm.training_variances[pdm.n_modes :].sum() * (len(contours) - 1) / len(contours)
    landmarks = pdm.landmarks(contours)
    errors, scales = [], []
    for points in landmarks:
        _, (pose, _), fitted = pdm.fit_points(points, clamp=False)
        errors.append(np.sum((fitted - points) ** 2))
        scales.append(abs(pose))
    bound = discarded * np.mean(np.square(scales))
    assert np.mean(errors) <= 1.05 * bound


def test_initial_points_are_mean_shape_in_mean_pose_at_patch_centre():
    reference = ellipse((0.0, 0.0), 15.0, 10.0, 90, angle=0.1)
    rng = np.random.default_rng(2)
    contours = [reference + rng.uniform(-4, 4, 2) + 31.5 for _ in range(12)]
    pdm = PointDistributionModel(n_landmarks=10).fit(contours)
    expected = resample_contour(reference + 31.5, 10)
    np.testing.assert_allclose(pdm.initial_points((64, 64)), expected, atol=1e-6)


def test_shape_parameters_are_clamped_to_three_standard_deviations():
    rng = np.random.default_rng(3)
    contours = [ellipse((32, 32), rng.uniform(10, 20), 10.0, 40) for _ in range(20)]
    pdm = PointDistributionModel(n_landmarks=8).fit(contours)
    b, _, _ = pdm.fit_points(ellipse((32, 32), 60.0, 10.0, 40)[::5])
    np.testing.assert_allclose(np.abs(b[0]), 3.0 * np.sqrt(pdm.variances[0]), rtol=1e-9)


def test_fewer_shapes_than_landmarks_is_a_config_error():
    contours = [ellipse((32, 32), 10, 8, 30) for _ in range(9)]
    with pytest.raises(ConfigError, match="at least 10 training shapes, got 9"):
        PointDistributionModel(n_landmarks=10).fit(contours)


@pytest.mark.parametrize(
    "bad, message",
    [
        ([[0.0, 0.0], [1.0, 1.0]], "at least 3 distinct points"),
        ([[0.0, 0.0], [1.0, np.nan], [2.0, 0.0]], "non-finite"),
        ([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], "no area"),
    ],
)
def test_bad_contour_is_a_data_error_naming_it(bad, message):
    contours = [ellipse((32, 32), 10, 8, 30) for _ in range(6)] + [bad]
    with pytest.raises(DataError, match=rf"contours\[6\].*{message}"):
        PointDistributionModel(n_landmarks=5).fit(contours)
