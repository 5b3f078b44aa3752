"""What every ASM shares: input checks, the point distribution model and the search loop.

A subclass learns an appearance model (`_fit_appearance`) and proposes, for the current
landmarks at one pyramid level, where each landmark should move (`_suggest`). The base class
turns proposals into a plausible shape with the point distribution model, coarse to fine,
until the shape stops moving.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vertseg_tf.asm import persistence
from vertseg_tf.asm.pdm import PointDistributionModel
from vertseg_tf.asm.profiles import from_level, gaussian_pyramid, to_level
from vertseg_tf.errors import ConfigError, DataError

__all__ = ["ActiveShapeModel", "check_images"]

_MIN_PATCH = 16


def check_images(images, source: str, patch_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Images as one (n, H, W) float array, or `DataError` naming the bad one.

    float32 input stays float32 (paper-size training sets are large); anything else becomes
    float64.

    Args:
        images: sequence of 2-D patches (or an (n, H, W) array).
        source: what the images are, for the error message.
        patch_shape: the (H, W) every image must have; None: all alike, at least 16x16.
    """
    checked = []
    for index, image in enumerate(images):
        array = np.asarray(image)
        if array.dtype != np.float32:
            array = array.astype(np.float64)
        expected = patch_shape or (checked[0].shape if checked else None)
        if array.ndim != 2 or (expected is not None and array.shape != tuple(expected)):
            want = f"{tuple(expected)}" if expected else "2-D"
            raise DataError(
                source,
                f"expected a {want} patch, got shape {array.shape}",
                field=f"images[{index}]",
            )
        if min(array.shape) < _MIN_PATCH:
            raise DataError(
                source,
                f"patch {array.shape} is smaller than {_MIN_PATCH}x{_MIN_PATCH}",
                field=f"images[{index}]",
            )
        if not np.all(np.isfinite(array)):
            raise DataError(source, "patch has non-finite pixels", field=f"images[{index}]")
        checked.append(array)
    if not checked:
        raise DataError(source, "no images given", field="images")
    return np.stack(checked)


def _no_progress(done: int, total: int) -> None:
    """Default `progress` callback: report nothing."""


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive_float(name: str, value) -> float:
    if not isinstance(value, (int, float, np.floating)) or not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class _Pyramids(Sequence):
    """Gaussian pyramids of training images, built when read so that they are never all
    held in memory at once."""

    def __init__(self, images: np.ndarray, n_levels: int):
        self.images, self.n_levels = images, n_levels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> list[np.ndarray]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return gaussian_pyramid(self.images[index], self.n_levels)


class ActiveShapeModel(ABC):
    """Base of ASM-G, ASM-M and ASM-RF (see those classes for the appearance models).

    Args:
        n_landmarks: landmarks of the point distribution model.
        variance_kept: share of shape variance the PCA modes keep.
        n_levels: pyramid levels searched, coarsest first.
        max_iterations: search iterations per level at most.
        tolerance: stop a level when no landmark moved more than this many level pixels.

    Example (needs training patches, so not run as a doctest):
        >>> model = ASMG(n_landmarks=40, n_levels=3)  # doctest: +SKIP
        >>> model = model.fit(train_patches, train_contours)  # doctest: +SKIP
        >>> start = model.pdm.initial_points((64, 64)) + 2.0  # doctest: +SKIP
        >>> landmarks = model.search(patch, start=start)  # doctest: +SKIP
    """

    method: str = ""

    def __init__(
        self,
        n_landmarks: int = 40,
        variance_kept: float = 0.98,
        n_levels: int = 3,
        max_iterations: int = 10,
        tolerance: float = 0.2,
    ):
        self.pdm = PointDistributionModel(n_landmarks, variance_kept)
        self.n_levels = _check_positive_int("n_levels", n_levels)
        self.max_iterations = _check_positive_int("max_iterations", max_iterations)
        self.tolerance = _check_positive_float("tolerance", tolerance)
        self.patch_shape: tuple[int, int] | None = None

    def get_config(self) -> dict:
        """Constructor arguments as JSON-ready values."""
        return {
            "n_landmarks": self.pdm.n_landmarks,
            "variance_kept": self.pdm.variance_kept,
            "n_levels": self.n_levels,
            "max_iterations": self.max_iterations,
            "tolerance": self.tolerance,
        }

    def fit(
        self, images, contours, *, progress: Callable[[int, int], None] | None = None
    ) -> ActiveShapeModel:
        """Learn the shape model and the appearance model from training patches.

        Args:
            images: (n, H, W) patches (or a sequence of 2-D arrays), all the same shape.
            contours: n closed polygons (k_i, 2) in patch pixels; k_i may differ.
            progress: called as `progress(done, total)` while the appearance model is
                learned (training patches for ASM-G/ASM-M, forests for ASM-RF).

        Returns:
            self.

        Raises:
            ConfigError: fewer training shapes than landmarks.
            DataError: images of different or too small shapes, non-finite pixels, contours
                with < 3 points or non-finite values, or a count mismatch.
        """
        images = check_images(images, "training images")
        contours = list(contours)
        if len(contours) != len(images):
            raise DataError(
                "training data",
                f"{len(images)} images but {len(contours)} contours",
                field="contours",
            )
        if min(images.shape[1:]) < _MIN_PATCH * 2 ** (self.n_levels - 1):
            raise ConfigError(
                f"n_levels={self.n_levels} is too many for {images.shape[1:]} patches"
            )
        self.pdm.fit(contours)
        landmarks = self.pdm.landmarks(contours)
        pyramids = _Pyramids(images, self.n_levels)
        self._fit_appearance(pyramids, landmarks, progress or _no_progress)
        self.patch_shape = tuple(int(n) for n in images.shape[1:])
        return self

    def predict(self, images) -> list[np.ndarray]:
        """Segment patches: one (n_landmarks, 2) contour in patch pixels per image.

        Every search starts from the mean shape at the patch centre in the mean training pose.
        """
        self._require_fitted()
        images = check_images(images, "images", self.patch_shape)
        return [self.search(image) for image in images]

    def search(self, image: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        """Run the coarse-to-fine search on one patch from `start` (default: mean shape).

        Args:
            image: (H, W) patch of the trained shape.
            start: (n_landmarks, 2) initial landmarks in patch pixels.

        Returns:
            (n_landmarks, 2) landmarks in patch pixels.
        """
        self._require_fitted()
        image = check_images([image], "images", self.patch_shape)[0]
        if start is None:
            points = self.pdm.initial_points(self.patch_shape)
        else:
            points = np.asarray(start, dtype=np.float64)
            if points.shape != (self.pdm.n_landmarks, 2) or not np.all(np.isfinite(points)):
                raise DataError(
                    "start",
                    f"expected ({self.pdm.n_landmarks}, 2) finite landmarks, got {points.shape}",
                )
        pyramid = gaussian_pyramid(image, self.n_levels)
        for level in reversed(range(self.n_levels)):
            for _ in range(self.max_iterations):
                targets = self._suggest(pyramid[level], to_level(points, level), level)
                _, _, moved = self.pdm.fit_points(from_level(targets, level))
                shift = np.max(np.linalg.norm(moved - points, axis=1)) / 2.0**level
                points = moved
                if shift < self.tolerance:
                    break
        return points

    def _require_fitted(self):
        if self.patch_shape is None:
            raise ConfigError(f"this {self.method} model is not fitted: call fit() first")

    def save(self, path) -> Path:
        """Write the model as `path` (JSON metadata) plus `path` with suffix `.npz` (arrays).

        A suffix other than `.json` is replaced by `.json`.

        Both files are written to temporary names and renamed; the JSON records the arrays
        file's SHA-256, which `load` checks. Returns the JSON path.
        """
        self._require_fitted()
        arrays = {f"pdm.{key}": value for key, value in self.pdm.to_arrays().items()}
        arrays.update({f"appearance.{k}": v for k, v in self._appearance_arrays().items()})
        metadata = {"patch_shape": list(self.patch_shape)}
        return persistence.save_model(path, self.method, self.get_config(), metadata, arrays)

    @classmethod
    def load(cls, path):
        """Read a model written by `save`; no code is executed (JSON + `allow_pickle=False`)."""
        method, config, metadata, arrays = persistence.load_model(path)
        if cls.method and method != cls.method:
            raise DataError(path, f"holds a {method!r} model, not {cls.method!r}", field="method")
        return cls._from_parts(path, config, metadata, arrays)

    @classmethod
    def _from_parts(cls, path, config, metadata, arrays):
        try:
            model = cls(**config)
            pdm_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("pdm.")}
            model.pdm = PointDistributionModel.from_arrays(model.pdm.get_config(), pdm_arrays)
            model.patch_shape = tuple(int(n) for n in metadata["patch_shape"])
            appearance = {k[11:]: v for k, v in arrays.items() if k.startswith("appearance.")}
            model._load_appearance(appearance)
        except (KeyError, TypeError, ValueError, IndexError, ConfigError) as error:
            raise DataError(path, f"not a valid {cls.method} model ({error})") from None
        return model

    @abstractmethod
    def _fit_appearance(
        self,
        pyramids: Sequence[list[np.ndarray]],
        landmarks: np.ndarray,
        progress: Callable[[int, int], None],
    ) -> None:
        """Learn the appearance model from each image's pyramid and (n, L, 2) patch landmarks."""

    @abstractmethod
    def _suggest(self, image: np.ndarray, points: np.ndarray, level: int) -> np.ndarray:
        """Target positions (L, 2) for `points` (L, 2), both in pixels of pyramid level `level`."""

    @abstractmethod
    def _appearance_arrays(self) -> dict[str, np.ndarray]:
        """The appearance model as named numeric arrays (no objects)."""

    @abstractmethod
    def _load_appearance(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore the appearance model from what `_appearance_arrays` returned."""
