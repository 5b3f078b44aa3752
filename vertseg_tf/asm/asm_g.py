"""ASM-G: active shape model that moves each landmark to the strongest edge along its normal."""

from __future__ import annotations

import numpy as np

from vertseg_tf.asm.base import ActiveShapeModel, _check_positive_float
from vertseg_tf.asm.profiles import landmark_normals, sample_normal_profiles, to_level

__all__ = ["ASMG"]


class ASMG(ActiveShapeModel):
    """Maximum-gradient active shape model (Cootes et al. 1995).

    Training learns, per pyramid level and landmark, the polarity of the intensity step
    across the outline (brighter inside or outside). Search samples the patch along each
    landmark's normal, takes the derivative along the normal and moves the landmark to the
    offset with the largest derivative of the learned sign; the point distribution model then
    keeps the shape plausible. Levels run coarse to fine until the shape stops moving.

    Args:
        search_half_length: search range along the normal, +/- this many level pixels.
        search_step: spacing of the samples along the normal, in level pixels.
        **kwargs: `ActiveShapeModel` arguments (n_landmarks, variance_kept, n_levels,
            max_iterations, tolerance).

    Example (needs training patches, so not run as a doctest):
        >>> model = ASMG(n_landmarks=40).fit(train_patches, train_contours)  # doctest: +SKIP
        >>> contours = model.predict(test_patches)  # doctest: +SKIP

    Reference:
        Cootes, Taylor, Cooper, Graham, "Active Shape Models - their training and
        application", CVIU 61(1), 1995.
    """

    method = "asm-g"

    def __init__(self, search_half_length: float = 3.0, search_step: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.search_half_length = _check_positive_float("search_half_length", search_half_length)
        self.search_step = _check_positive_float("search_step", search_step)
        self.polarity: np.ndarray | None = None  # (n_levels, n_landmarks), +1 or -1

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "search_half_length": self.search_half_length,
            "search_step": self.search_step,
        }

    def _fit_appearance(self, pyramids, landmarks, progress):
        offsets = np.array([-0.5, 0.5])
        step = np.zeros((self.n_levels, self.pdm.n_landmarks))
        for index, (pyramid, points) in enumerate(zip(pyramids, landmarks)):
            normals = landmark_normals(points)
            for level in range(self.n_levels):
                profile = sample_normal_profiles(
                    pyramid[level], to_level(points, level), normals, offsets
                )
                step[level] += profile[:, 1] - profile[:, 0]
            progress(index + 1, len(pyramids))
        self.polarity = np.where(step >= 0, 1.0, -1.0)

    def _suggest(self, image, points, level):
        normals = landmark_normals(points)
        n_steps = round(self.search_half_length / self.search_step)
        offsets = np.arange(-n_steps - 1, n_steps + 2) * self.search_step
        profiles = sample_normal_profiles(image, points, normals, offsets)
        gradient = (profiles[:, 2:] - profiles[:, :-2]) * self.polarity[level][:, None]
        best = offsets[1:-1][np.argmax(gradient, axis=1)]
        return points + best[:, None] * normals

    def _appearance_arrays(self):
        return {"polarity": self.polarity}

    def _load_appearance(self, arrays):
        polarity = np.asarray(arrays["polarity"], dtype=np.float64)
        if polarity.shape != (self.n_levels, self.pdm.n_landmarks):
            raise ValueError(f"polarity has shape {polarity.shape}")
        self.polarity = polarity
