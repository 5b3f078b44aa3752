"""ASM-M: active shape model with Mahalanobis grey-level profile models (Cootes et al. 1995)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from vertseg_tf.asm.base import ActiveShapeModel, _check_positive_float, _check_positive_int
from vertseg_tf.asm.profiles import (
    landmark_normals,
    normalised_derivative,
    sample_normal_profiles,
    to_level,
)

__all__ = ["ASMM"]


class ASMM(ActiveShapeModel):
    """Grey-level profile active shape model.

    Training samples, at every landmark of every training patch and every pyramid level, the
    intensity along the landmark's normal (2k+2 samples one level pixel apart, centred on the
    landmark), takes its derivative (2k+1 values) and divides it by the sum of absolute
    values. Each landmark and level gets the mean and the covariance of these profiles; the
    covariance is regularised by adding `covariance_regularisation` times its mean diagonal to
    the diagonal, so that it stays invertible with few training shapes. Search slides the
    model along a longer profile and moves each landmark to the offset (+/- m level pixels)
    with the smallest Mahalanobis distance; the point distribution model keeps the shape
    plausible. Levels run coarse to fine until the shape stops moving.

    Args:
        profile_half_length: k, the profile covers 2k+1 derivative samples.
        search_half_length: m, the candidate offsets along the normal are -m..m level pixels.
        covariance_regularisation: ridge added to the covariance, relative to its mean diagonal.
        **kwargs: `ActiveShapeModel` arguments (n_landmarks, variance_kept, n_levels,
            max_iterations, tolerance).

    Example (needs training patches, so not run as a doctest):
        >>> model = ASMM(n_landmarks=40).fit(train_patches, train_contours)  # doctest: +SKIP
        >>> contours = model.predict(test_patches)  # doctest: +SKIP

    Reference:
        Cootes, Taylor, Cooper, Graham, "Active Shape Models - their training and
        application", CVIU 61(1), 1995, section 5.
    """

    method = "asm-m"

    def __init__(
        self,
        profile_half_length: int = 3,
        search_half_length: int = 3,
        covariance_regularisation: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.profile_half_length = _check_positive_int("profile_half_length", profile_half_length)
        self.search_half_length = _check_positive_int("search_half_length", search_half_length)
        self.covariance_regularisation = _check_positive_float(
            "covariance_regularisation", covariance_regularisation
        )
        self.profile_mean: np.ndarray | None = None  # (n_levels, n_landmarks, 2k+1)
        self.profile_precision: np.ndarray | None = None  # (n_levels, n_landmarks, 2k+1, 2k+1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "profile_half_length": self.profile_half_length,
            "search_half_length": self.search_half_length,
            "covariance_regularisation": self.covariance_regularisation,
        }

    def _sample_offsets(self, half_length: int) -> np.ndarray:
        # 2h+2 samples at -h-0.5 .. h+0.5: their differences sit at -h .. h.
        return np.arange(-half_length, half_length + 2) - 0.5

    def _fit_appearance(self, pyramids, landmarks, progress):
        k = self.profile_half_length
        offsets = self._sample_offsets(k)
        profiles = np.empty((self.n_levels, len(landmarks), self.pdm.n_landmarks, 2 * k + 1))
        for index, (pyramid, points) in enumerate(zip(pyramids, landmarks)):
            normals = landmark_normals(points)
            for level in range(self.n_levels):
                samples = sample_normal_profiles(
                    pyramid[level], to_level(points, level), normals, offsets
                )
                profiles[level, index] = normalised_derivative(samples)
            progress(index + 1, len(pyramids))
        self.profile_mean = profiles.mean(axis=1)
        deviations = profiles - self.profile_mean[:, None]
        covariance = np.einsum("lnpi,lnpj->lpij", deviations, deviations) / max(
            len(landmarks) - 1, 1
        )
        ridge = (
            self.covariance_regularisation * np.trace(covariance, axis1=2, axis2=3) / (2 * k + 1)
        )
        covariance += (ridge[..., None, None] + 1e-8) * np.eye(2 * k + 1)
        self.profile_precision = np.linalg.inv(covariance)

    def _suggest(self, image, points, level):
        k, m = self.profile_half_length, self.search_half_length
        normals = landmark_normals(points)
        samples = sample_normal_profiles(image, points, normals, self._sample_offsets(k + m))
        derivative = np.diff(samples, axis=1)
        windows = sliding_window_view(derivative, 2 * k + 1, axis=1)  # (L, 2m+1, 2k+1)
        windows = windows / (np.abs(windows).sum(axis=2, keepdims=True) + 1e-6)
        deviation = windows - self.profile_mean[level][:, None, :]
        distance = np.einsum("loi,lij,loj->lo", deviation, self.profile_precision[level], deviation)
        best = np.argmin(distance, axis=1) - m
        return points + best[:, None] * normals

    def _appearance_arrays(self):
        return {"profile_mean": self.profile_mean, "profile_precision": self.profile_precision}

    def _load_appearance(self, arrays):
        size = 2 * self.profile_half_length + 1
        mean = np.asarray(arrays["profile_mean"], dtype=np.float64)
        precision = np.asarray(arrays["profile_precision"], dtype=np.float64)
        expected = (self.n_levels, self.pdm.n_landmarks, size)
        if mean.shape != expected or precision.shape != (*expected, size):
            raise ValueError(f"profile arrays have shapes {mean.shape}, {precision.shape}")
        self.profile_mean, self.profile_precision = mean, precision
