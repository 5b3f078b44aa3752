"""Point distribution model: landmarks, generalised Procrustes alignment, PCA, pose fitting.

Shapes live in two frames. The *model frame* holds Procrustes-aligned shapes (centred, unit
norm, tangent-space projected onto the mean). The *patch frame* is patch pixels (x = column,
y = row, origin at the centre of the top-left pixel). A similarity pose maps model to patch:
``z_patch = a * z_model + t`` with points written as complex numbers ``x + i*y``, so
``|a|`` is the scale, ``arg(a)`` the rotation and ``t`` the translation.

Reference: Cootes, Taylor, Cooper, Graham, "Active Shape Models - their training and
application", CVIU 61(1), 1995.
"""

from __future__ import annotations

import numpy as np

from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.geometry import polygon_area, polygon_centroid, resample_closed

__all__ = ["PointDistributionModel", "check_contour", "resample_contour"]

_TRAINING = "training contours"


def check_contour(contour, *, source: str = _TRAINING, field: str = "contour") -> np.ndarray:
    """Return `contour` as a float64 (k, 2) array, or raise `DataError` naming `field`.

    Args:
        contour: closed polygon, (k, 2) points (x, y), first point not repeated.
        source: what the contour came from, for the error message.
        field: which contour it is, for the error message.

    Returns:
        The contour as a float64 array.

    Example:
        >>> check_contour([[0, 0], [4, 0], [4, 3]]).shape
        (3, 2)
    """
    points = np.asarray(contour, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise DataError(source, f"expected (k, 2) points, got shape {points.shape}", field=field)
    if not np.all(np.isfinite(points)):
        raise DataError(source, "contour has non-finite coordinates", field=field)
    if len(points) > 1 and np.array_equal(points[0], points[-1]):
        points = points[:-1]
    if len(np.unique(points, axis=0)) < 3:
        raise DataError(source, "contour needs at least 3 distinct points", field=field)
    if abs(polygon_area(points)) < 1e-9:
        raise DataError(source, "contour encloses no area", field=field)
    return points


def _start_on_ray(points: np.ndarray, origin: np.ndarray, direction: np.ndarray):
    """Edge index and point where the ray origin + t * direction (t > 0) leaves the polygon."""
    starts = points
    edges = np.roll(points, -1, axis=0) - points
    # Solve origin + t d = p + u e for every edge at once (Cramer's rule).
    det = direction[0] * (-edges[:, 1]) - direction[1] * (-edges[:, 0])
    rel = starts - origin
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rel[:, 0] * (-edges[:, 1]) - rel[:, 1] * (-edges[:, 0])) / det
        u = (direction[0] * rel[:, 1] - direction[1] * rel[:, 0]) / det
    hits = (np.abs(det) > 1e-12) & (t > 0) & (u >= 0) & (u < 1)
    if np.any(hits):
        edge = int(np.flatnonzero(hits)[np.argmax(t[hits])])
        return edge, starts[edge] + u[edge] * edges[edge]
    # No crossing (centroid outside a strongly concave outline): nearest vertex by angle.
    angles = np.arctan2(rel[:, 1], rel[:, 0]) - np.arctan2(direction[1], direction[0])
    vertex = int(np.argmin(np.abs(np.angle(np.exp(1j * angles)))))
    return vertex, starts[vertex].copy()


def resample_contour(
    contour, n_landmarks: int, start_direction: tuple[float, float] = (0.0, -1.0)
) -> np.ndarray:
    """Resample a closed contour to `n_landmarks` points equally spaced by arc length.

    The outline is first oriented to a positive shoelace area (clockwise as displayed, with y
    pointing down). Landmark 0 is where the ray from the polygon's centroid in
    `start_direction` leaves the outline (default: straight up the patch, the middle of the
    superior endplate for an upright vertebra), so landmark k means the same anatomical place
    on every shape.

    Args:
        contour: (k, 2) closed polygon, k >= 3, first point not repeated.
        n_landmarks: number of output points.
        start_direction: patch direction (x, y) that picks landmark 0.

    Returns:
        (n_landmarks, 2) float64 landmarks.

    Example:
        >>> square = [[0, 0], [2, 0], [2, 2], [0, 2]]
        >>> resample_contour(square, 4).tolist()
        [[1.0, 0.0], [2.0, 1.0], [1.0, 2.0], [0.0, 1.0]]
    """
    points = check_contour(contour)
    if polygon_area(points) < 0:
        points = points[::-1]
    direction = np.asarray(start_direction, dtype=np.float64)
    centroid = polygon_centroid(points)
    edge, start = _start_on_ray(points, centroid, direction / np.linalg.norm(direction))
    return resample_closed(np.vstack([start[None], points[edge + 1 :], points[: edge + 1]]),
                           n_landmarks)


def _to_complex(points: np.ndarray) -> np.ndarray:
    return points[..., 0] + 1j * points[..., 1]


def _to_points(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1)


def _to_vector(z: np.ndarray) -> np.ndarray:
    return np.concatenate([z.real, z.imag], axis=-1)


def _from_vector(v: np.ndarray) -> np.ndarray:
    n = v.shape[-1] // 2
    return v[..., :n] + 1j * v[..., n:]


def _align(z: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Complex similarity factor a minimising |a z - reference| along the last axis.

    Both are centred complex shapes; `z` may hold many shapes (..., n_points).
    """
    return np.sum(np.conj(z) * reference, axis=-1) / np.sum(np.abs(z) ** 2, axis=-1)


class PointDistributionModel:
    """Statistical shape model of closed contours with a similarity pose in patch pixels.

    Args:
        n_landmarks: landmarks per shape (resampled by arc length).
        variance_kept: share of the shape variance the kept PCA modes explain.
        start_direction: patch direction (x, y) that picks landmark 0 (see `resample_contour`).

    Example (needs training contours, so not run as a doctest):
        >>> pdm = PointDistributionModel(n_landmarks=40).fit(contours)  # doctest: +SKIP
        >>> points = pdm.initial_points((64, 64))  # doctest: +SKIP
        >>> b, pose, fitted = pdm.fit_points(points)  # doctest: +SKIP
    """

    def __init__(
        self,
        n_landmarks: int = 40,
        variance_kept: float = 0.98,
        start_direction: tuple[float, float] = (0.0, -1.0),
    ):
        if not isinstance(n_landmarks, (int, np.integer)) or n_landmarks < 3:
            raise ConfigError(f"n_landmarks must be an integer >= 3, got {n_landmarks!r}")
        if not 0.0 < variance_kept <= 1.0:
            raise ConfigError(f"variance_kept must be in (0, 1], got {variance_kept!r}")
        if not np.all(np.isfinite(start_direction)) or not np.any(start_direction):
            raise ConfigError(f"start_direction must be a non-zero (x, y), got {start_direction!r}")
        self.n_landmarks = int(n_landmarks)
        self.variance_kept = float(variance_kept)
        self.start_direction = (float(start_direction[0]), float(start_direction[1]))
        self.mean: np.ndarray | None = None  # (n_landmarks,) complex, model frame
        self.modes: np.ndarray | None = None  # (2 n_landmarks, n_modes)
        self.variances: np.ndarray | None = None  # (n_modes,)
        self.training_variances: np.ndarray | None = None  # every eigenvalue, for diagnostics
        self.mean_pose: complex = 1.0 + 0.0j

    def landmarks(self, contours) -> np.ndarray:
        """Resample every contour to this model's landmarks: (n_shapes, n_landmarks, 2)."""
        out = []
        for index, contour in enumerate(contours):
            try:
                out.append(resample_contour(contour, self.n_landmarks, self.start_direction))
            except DataError as error:
                raise DataError(error.file, error.problem, field=f"contours[{index}]") from None
        return np.asarray(out)

    def fit(self, contours) -> PointDistributionModel:
        """Build the model from patch-frame training contours.

        Args:
            contours: closed polygons (k_i, 2) in patch pixels, k_i >= 3 and may differ.

        Returns:
            self.

        Raises:
            ConfigError: fewer training shapes than landmarks.
            DataError: a contour with < 3 points, no area or non-finite values.
        """
        contours = list(contours)
        if len(contours) < self.n_landmarks:
            raise ConfigError(
                f"a point distribution model with {self.n_landmarks} landmarks needs at least "
                f"{self.n_landmarks} training shapes, got {len(contours)}"
            )
        shapes = _to_complex(self.landmarks(contours))
        aligned, self.mean = _procrustes(shapes)
        deviations = _to_vector(aligned) - _to_vector(self.mean)
        covariance = deviations.T @ deviations / (len(shapes) - 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        eigenvalues, eigenvectors = eigenvalues[::-1].clip(min=0.0), eigenvectors[:, ::-1]
        total = eigenvalues.sum()
        if total <= 0:
            n_modes = 0
        else:
            explained = np.cumsum(eigenvalues) / total
            n_modes = int(np.searchsorted(explained, self.variance_kept - 1e-12) + 1)
            n_modes = min(n_modes, int(np.sum(eigenvalues > total * 1e-12)))
        # Contiguous copies: a strided view would take another BLAS path than the same
        # array reloaded from disk, and round trips must predict bit-identically.
        self.variances = np.ascontiguousarray(eigenvalues[:n_modes])
        self.modes = np.ascontiguousarray(eigenvectors[:, :n_modes])
        self.training_variances = np.ascontiguousarray(eigenvalues)
        centred = shapes - shapes.mean(axis=1, keepdims=True)
        poses = _align(np.broadcast_to(self.mean, centred.shape), centred)
        self.mean_pose = complex(np.mean(np.abs(poses)) * np.exp(1j * np.angle(poses.sum())))
        return self

    @property
    def n_modes(self) -> int:
        """Number of kept PCA modes."""
        return 0 if self.modes is None else self.modes.shape[1]

    def _require_fitted(self):
        if self.mean is None:
            raise ConfigError("the point distribution model is not fitted: call fit() first")

    def shape(self, b: np.ndarray, pose: complex = 1.0, translation: complex = 0.0) -> np.ndarray:
        """Points (n_landmarks, 2) of shape parameters `b` under the given pose."""
        self._require_fitted()
        z = self.mean + _from_vector(self.modes @ np.asarray(b, dtype=np.float64))
        return _to_points(pose * z + translation)

    def clamp(self, b: np.ndarray) -> np.ndarray:
        """Shape parameters clamped to +/- 3 sqrt(eigenvalue) per mode."""
        limit = 3.0 * np.sqrt(self.variances)
        return np.clip(b, -limit, limit)

    def initial_points(self, patch_shape: tuple[int, int]) -> np.ndarray:
        """The mean shape at the patch centre in the mean training pose (scale and rotation)."""
        self._require_fitted()
        centre = (patch_shape[1] - 1) / 2.0 + 1j * (patch_shape[0] - 1) / 2.0
        return _to_points(self.mean_pose * self.mean + centre)

    def fit_points(self, targets, n_iterations: int = 5, clamp: bool = True):
        """Closest plausible shape to patch-frame target points (Cootes et al. 1995, sec. 4.2).

        Alternates the similarity pose that maps the current model shape onto the targets
        with the shape parameters of the targets projected into the model's tangent space.

        Args:
            targets: (n_landmarks, 2) points in the patch frame.
            n_iterations: pose/shape alternations.
            clamp: clamp the shape parameters to +/- 3 sqrt(eigenvalue).

        Returns:
            `(b, (pose, translation), points)`: shape parameters, complex similarity factor and
            translation, and the model's (n_landmarks, 2) points in the patch frame.
        """
        self._require_fitted()
        target = _to_complex(np.asarray(targets, dtype=np.float64))
        translation = target.mean()
        centred = target - translation
        b = np.zeros(self.n_modes)
        for _ in range(n_iterations):
            model = self.mean + _from_vector(self.modes @ b)
            pose = _align(model, centred)
            projected = centred / pose
            projected = projected / np.vdot(projected, self.mean).real
            b = self.modes.T @ (_to_vector(projected) - _to_vector(self.mean))
            if clamp:
                b = self.clamp(b)
        model = self.mean + _from_vector(self.modes @ b)
        pose = _align(model, centred)
        return b, (pose, translation), _to_points(pose * model + translation)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted model as named arrays (for `.npz` persistence)."""
        self._require_fitted()
        return {
            "mean": _to_points(self.mean),
            "modes": self.modes,
            "variances": self.variances,
            "training_variances": self.training_variances,
            "mean_pose": np.array([self.mean_pose.real, self.mean_pose.imag]),
        }

    def get_config(self) -> dict:
        """Constructor arguments as JSON-ready values."""
        return {
            "n_landmarks": self.n_landmarks,
            "variance_kept": self.variance_kept,
            "start_direction": list(self.start_direction),
        }

    @classmethod
    def from_arrays(cls, config: dict, arrays: dict[str, np.ndarray]) -> PointDistributionModel:
        """Rebuild a fitted model from `get_config()` and `to_arrays()`."""
        pdm = cls(**config)
        pdm.mean = _to_complex(np.asarray(arrays["mean"], dtype=np.float64))
        pdm.modes = np.asarray(arrays["modes"], dtype=np.float64)
        pdm.variances = np.asarray(arrays["variances"], dtype=np.float64)
        pdm.training_variances = np.asarray(arrays["training_variances"], dtype=np.float64)
        pose = np.asarray(arrays["mean_pose"], dtype=np.float64)
        pdm.mean_pose = complex(pose[0], pose[1])
        if pdm.mean.shape != (pdm.n_landmarks,) or pdm.modes.shape[0] != 2 * pdm.n_landmarks:
            raise ValueError("point distribution model arrays do not match n_landmarks")
        return pdm


def _procrustes(shapes: np.ndarray, max_iterations: int = 100, tolerance: float = 1e-12):
    """Generalised Procrustes alignment (similarity) of complex shapes (n_shapes, n_points).

    Returns the aligned shapes projected into the tangent space of the mean (each has unit
    projection on the mean) and the unit-norm mean, rotated to the first shape's orientation.
    """
    centred = shapes - shapes.mean(axis=1, keepdims=True)
    centred = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    reference = centred[0]
    mean = reference
    for _ in range(max_iterations):
        aligned = _align(centred, mean)[:, None] * centred
        new_mean = aligned.mean(axis=0)
        new_mean = _align(new_mean, reference) * new_mean
        new_mean = new_mean / np.linalg.norm(new_mean)
        change = np.linalg.norm(new_mean - mean)
        mean = new_mean
        if change < tolerance:
            break
    aligned = _align(centred, mean)[:, None] * centred
    aligned = aligned / np.sum(np.conj(aligned) * mean, axis=1).real[:, None]
    return aligned, mean
