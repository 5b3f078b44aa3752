"""ASM-RF: random-forest regression voting with a shape model (Lindner et al., TPAMI 2015).

The forests are trained with scikit-learn and then flattened into plain arrays (children,
split feature, threshold, leaf value). Prediction, before and after a save/load round trip,
always runs the same vectorised numpy traversal of those arrays (`predict_flat_forests`), so
a loaded model gives exactly the predictions of the model that was saved, and model files
hold numbers only.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from vertseg_tf.asm.base import ActiveShapeModel, _check_positive_float, _check_positive_int
from vertseg_tf.asm.profiles import sample, to_level
from vertseg_tf.errors import ConfigError

__all__ = ["ASMRF", "flatten_forests", "predict_flat_forests"]


def flatten_forests(forests: list[RandomForestRegressor]) -> dict[str, np.ndarray]:
    """Pack fitted forests (same number of trees each) into flat node arrays.

    Leaves point to themselves (left = right = own index), so a traversal can run a fixed
    number of steps.

    Returns:
        `left`, `right` (int64), `feature` (int64), `threshold` (float64), `value`
        (n_nodes, n_outputs) float64, `roots` (n_forests, n_trees) int64 and `depth` (the
        deepest tree's depth, as a 0-d int64 array).
    """
    left, right, feature, threshold, value, roots = [], [], [], [], [], []
    offset, depth = 0, 0
    for forest in forests:
        forest_roots = []
        for estimator in forest.estimators_:
            tree = estimator.tree_
            nodes = np.arange(tree.node_count)
            leaf = tree.children_left < 0
            left.append(np.where(leaf, nodes, tree.children_left) + offset)
            right.append(np.where(leaf, nodes, tree.children_right) + offset)
            feature.append(np.where(leaf, 0, tree.feature))
            threshold.append(np.where(leaf, 0.0, tree.threshold))
            value.append(tree.value[:, :, 0])
            forest_roots.append(offset)
            offset += tree.node_count
            depth = max(depth, tree.max_depth)
        roots.append(forest_roots)
    return {
        "left": np.concatenate(left).astype(np.int64),
        "right": np.concatenate(right).astype(np.int64),
        "feature": np.concatenate(feature).astype(np.int64),
        "threshold": np.concatenate(threshold).astype(np.float64),
        "value": np.concatenate(value).astype(np.float64),
        "roots": np.asarray(roots, dtype=np.int64),
        "depth": np.asarray(depth, dtype=np.int64),
    }


def predict_flat_forests(trees: dict[str, np.ndarray], roots: np.ndarray, features) -> np.ndarray:
    """Mean leaf value of forest f over its trees for every row of `features[f]`.

    Mirrors scikit-learn: features are cast to float32 and a sample goes left when
    ``x[feature] <= threshold``.

    Args:
        trees: arrays from `flatten_forests`.
        roots: (n_forests, n_trees) root indices (a subset of `trees["roots"]` rows).
        features: (n_forests, n_rows, n_features) samples, one block per forest.

    Returns:
        (n_forests, n_rows, n_outputs) predictions.

    Example (needs fitted forests, so not run as a doctest):
        >>> trees = flatten_forests([forest])  # doctest: +SKIP
        >>> predict_flat_forests(trees, trees["roots"], X[None])[0]  # doctest: +SKIP
    """
    # float32 like scikit-learn, compared in float64 against the float64 thresholds.
    features = np.asarray(features, dtype=np.float32).astype(np.float64)
    n_forests, n_rows, n_features = features.shape
    n_trees = roots.shape[1]
    node = np.broadcast_to(roots[:, None, :], (n_forests, n_rows, n_trees)).reshape(-1)
    row_start = np.repeat(np.arange(n_forests * n_rows) * n_features, n_trees)
    values = features.reshape(-1)
    children = np.stack([trees["left"], trees["right"]], axis=1).reshape(-1)
    for _ in range(int(trees["depth"])):
        x = values.take(row_start + trees["feature"].take(node))
        node = children.take(2 * node + (x > trees["threshold"].take(node)))
    node = node.reshape(n_forests, n_rows, n_trees)
    return trees["value"][node].mean(axis=2)


class ASMRF(ActiveShapeModel):
    """Random-forest regression-voting active shape model (RFRV-CLM style).

    For each pyramid level and landmark a `RandomForestRegressor` learns the displacement
    from a point to the landmark, from features sampled around the point: the intensities of
    a (2r+1)^2 window one level pixel apart plus differences of fixed random pixel pairs in
    that window (Haar-like). Training points are the true landmarks displaced uniformly by up
    to `max_displacement` level pixels. Search evaluates every point of a (2g+1)^2 grid
    around the current landmark, each casts a bilinear vote at its predicted landmark
    position, the landmark moves to the vote-map peak (refined by the centroid of its 3x3
    neighbourhood), and the point distribution model keeps the shape plausible; coarse to fine.

    Patches are already pose-normalised (upright, similar scale), so features are sampled in
    the patch axes of each pyramid level rather than in a shape-aligned reference frame as in
    Lindner et al.

    Forests are stored as tree arrays and evaluated with `predict_flat_forests` (see the
    module docstring), so save/load round trips are exact.

    Args:
        n_trees: trees per forest.
        max_depth: maximal tree depth.
        min_samples_leaf: smallest leaf.
        window_radius: r, the feature window is (2r+1)^2 samples.
        n_pair_features: number of pixel-pair difference features.
        samples_per_landmark: displaced training points per landmark and training patch.
        max_displacement: training displacement range, +/- level pixels.
        grid_radius: g, the search grid is (2g+1)^2 points one level pixel apart.
        max_samples_per_forest: cap on training rows per forest; with more training patches
            than this allows, each level trains on a random subset of the patches (bounds
            memory and time on the paper's 45-fold augmented patch sets).
        n_jobs: processes scikit-learn uses to train each forest (the trees do not depend on
            it; prediction is always single-threaded numpy).
        seed: seed of the training displacements, the pixel pairs and the forests.
        n_levels, max_iterations, **kwargs: `ActiveShapeModel` arguments.

    Example (needs training patches, so not run as a doctest):
        >>> model = ASMRF(n_trees=10, max_depth=8)  # doctest: +SKIP
        >>> model = model.fit(train_patches, train_contours)  # doctest: +SKIP
        >>> contours = model.predict(test_patches)  # doctest: +SKIP

    Reference:
        Lindner, Bromiley, Ionita, Cootes, "Robust and Accurate Shape Model Matching Using
        Random Forest Regression-Voting", IEEE TPAMI 37(9), 2015.
    """

    method = "asm-rf"

    def __init__(
        self,
        n_trees: int = 10,
        max_depth: int = 8,
        min_samples_leaf: int = 3,
        window_radius: int = 3,
        n_pair_features: int = 32,
        samples_per_landmark: int = 8,
        max_displacement: float = 3.0,
        grid_radius: int = 2,
        max_samples_per_forest: int = 20000,
        n_jobs: int = 1,
        seed: int = 0,
        n_levels: int = 2,
        max_iterations: int = 5,
        **kwargs,
    ):
        super().__init__(n_levels=n_levels, max_iterations=max_iterations, **kwargs)
        self.n_trees = _check_positive_int("n_trees", n_trees)
        self.max_depth = _check_positive_int("max_depth", max_depth)
        self.min_samples_leaf = _check_positive_int("min_samples_leaf", min_samples_leaf)
        self.window_radius = _check_positive_int("window_radius", window_radius)
        self.n_pair_features = _check_positive_int("n_pair_features", n_pair_features, 0)
        self.samples_per_landmark = _check_positive_int(
            "samples_per_landmark", samples_per_landmark
        )
        self.max_displacement = _check_positive_float("max_displacement", max_displacement)
        self.grid_radius = _check_positive_int("grid_radius", grid_radius, 0)
        self.max_samples_per_forest = _check_positive_int(
            "max_samples_per_forest", max_samples_per_forest
        )
        self.n_jobs = _check_positive_int("n_jobs", n_jobs)
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        side = np.arange(-self.window_radius, self.window_radius + 1, dtype=np.float64)
        self._window = np.stack(np.meshgrid(side, side), axis=-1).reshape(-1, 2)
        grid = np.arange(-self.grid_radius, self.grid_radius + 1, dtype=np.float64)
        self._grid = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
        self.pairs: np.ndarray | None = None  # (n_pair_features, 2) window indices
        self.trees: dict[str, np.ndarray] | None = None

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "n_trees": self.n_trees,
            "max_depth": self.max_depth,
            "min_samples_leaf": self.min_samples_leaf,
            "window_radius": self.window_radius,
            "n_pair_features": self.n_pair_features,
            "samples_per_landmark": self.samples_per_landmark,
            "max_displacement": self.max_displacement,
            "grid_radius": self.grid_radius,
            "max_samples_per_forest": self.max_samples_per_forest,
            "n_jobs": self.n_jobs,
            "seed": self.seed,
        }

    def _features(self, image: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Features (..., n_features) float32 at level-pixel `positions` (..., 2)."""
        return self._window_features(sample(image, positions[..., None, :] + self._window))

    def _window_features(self, window: np.ndarray) -> np.ndarray:
        pairs = window[..., self.pairs[:, 0]] - window[..., self.pairs[:, 1]]
        return np.concatenate([window, pairs], axis=-1).astype(np.float32)

    def _grid_features(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """`_features` at every search-grid point around each of `points`: (L, C, F).

        Grid and window are both one level pixel apart, so all windows of one landmark lie
        on a single (2g+2r+1)^2 lattice: sample it once and gather the windows from it.
        """
        reach = self.grid_radius + self.window_radius
        side = np.arange(-reach, reach + 1, dtype=np.float64)
        lattice = np.stack(np.meshgrid(side, side), axis=-1).reshape(-1, 2)
        values = sample(image, points[:, None, :] + lattice)  # (L, side**2)
        grid = (self._grid[:, None, :] + self._window[None, :, :] + reach).astype(np.int64)
        index = grid[..., 1] * (2 * reach + 1) + grid[..., 0]  # (C, W)
        return self._window_features(values[:, index])

    def _fit_appearance(self, pyramids, landmarks, progress):
        rng = np.random.default_rng(self.seed)
        n_window = len(self._window)
        self.pairs = rng.integers(0, n_window, size=(self.n_pair_features, 2)).astype(np.int64)
        n_landmarks = self.pdm.n_landmarks
        n_used = min(
            len(pyramids), max(1, self.max_samples_per_forest // self.samples_per_landmark)
        )
        forests = []
        for level in range(self.n_levels):
            features, targets = [], []
            used = np.sort(rng.choice(len(pyramids), size=n_used, replace=False))
            for pyramid, points in zip((pyramids[i] for i in used), landmarks[used]):
                shift = rng.uniform(
                    -self.max_displacement,
                    self.max_displacement,
                    size=(n_landmarks, self.samples_per_landmark, 2),
                )
                positions = to_level(points, level)[:, None, :] + shift
                features.append(self._features(pyramid[level], positions))
                targets.append(-shift)
            features = np.concatenate(features, axis=1)  # (L, n_images * S, F)
            targets = np.concatenate(targets, axis=1)
            for landmark in range(n_landmarks):
                forest = RandomForestRegressor(
                    n_estimators=self.n_trees,
                    max_depth=self.max_depth,
                    min_samples_leaf=self.min_samples_leaf,
                    max_features=1.0 / 3.0,
                    random_state=int(rng.integers(2**31 - 1)),
                    n_jobs=self.n_jobs,
                )
                forests.append(forest.fit(features[landmark], targets[landmark]))
                progress(len(forests), self.n_levels * n_landmarks)
        trees = flatten_forests(forests)
        trees["roots"] = trees["roots"].reshape(self.n_levels, n_landmarks, self.n_trees)
        self.trees = trees

    def _suggest(self, image, points, level):
        displacement = predict_flat_forests(
            self.trees, self.trees["roots"][level], self._grid_features(image, points)
        )
        votes = self._grid[None] + displacement  # relative to the current landmark
        radius = self.grid_radius + int(np.ceil(self.max_displacement)) + 1
        side = 2 * radius + 1
        vote_map = _splat(votes + radius, side).reshape(len(points), side, side)
        return points + _peak(vote_map) - radius

    def _appearance_arrays(self):
        return {"pairs": self.pairs, **{f"tree_{k}": v for k, v in self.trees.items()}}

    def _load_appearance(self, arrays):
        self.pairs = np.asarray(arrays["pairs"])
        self.trees = {k[5:]: v for k, v in arrays.items() if k.startswith("tree_")}
        for key in ("left", "right", "feature", "roots", "depth"):
            if not np.issubdtype(self.trees[key].dtype, np.integer):
                raise ValueError(f"forest {key} must be integers")
        if not np.issubdtype(self.pairs.dtype, np.integer):
            raise ValueError("pixel pairs must be integers")
        expected_roots = (self.n_levels, self.pdm.n_landmarks, self.n_trees)
        if self.pairs.shape != (self.n_pair_features, 2) or np.any(
            (self.pairs < 0) | (self.pairs >= len(self._window))
        ):
            raise ValueError("pixel pairs do not match the feature window")
        if self.trees["roots"].shape != expected_roots:
            raise ValueError(f"forest roots have shape {self.trees['roots'].shape}")
        n_nodes = len(self.trees["threshold"])
        n_features = len(self._window) + self.n_pair_features
        for key in ("left", "right", "roots"):
            if np.any((self.trees[key] < 0) | (self.trees[key] >= n_nodes)):
                raise ValueError(f"forest {key} indices out of range")
        if np.any((self.trees["feature"] < 0) | (self.trees["feature"] >= n_features)):
            raise ValueError("forest split features out of range")
        if self.trees["value"].shape != (n_nodes, 2):
            raise ValueError(f"forest leaf values have shape {self.trees['value'].shape}")


def _splat(votes: np.ndarray, side: int) -> np.ndarray:
    """Bilinear votes (L, C, 2) into flattened (L * side * side) maps; outside votes dropped."""
    n_maps = votes.shape[0]
    base = np.floor(votes)
    frac = votes - base
    base = base.astype(np.int64)
    totals = np.zeros(n_maps * side * side)
    map_index = np.arange(n_maps)[:, None] * side * side
    for dx in (0, 1):
        for dy in (0, 1):
            x, y = base[..., 0] + dx, base[..., 1] + dy
            weight = np.abs(1 - dx - frac[..., 0]) * np.abs(1 - dy - frac[..., 1])
            inside = (x >= 0) & (x < side) & (y >= 0) & (y < side)
            index = (map_index + y * side + x)[inside]
            totals += np.bincount(index, weight[inside], minlength=totals.size)
    return totals


def _peak(vote_maps: np.ndarray) -> np.ndarray:
    """Per map, the (x, y) of the highest vote refined by its 3x3 neighbourhood's centroid."""
    n_maps, side, _ = vote_maps.shape
    flat = vote_maps.reshape(n_maps, -1).argmax(axis=1)
    peak_y, peak_x = np.divmod(flat, side)
    offsets = np.arange(-1, 2)
    ys = np.clip(peak_y[:, None] + offsets, 0, side - 1)
    xs = np.clip(peak_x[:, None] + offsets, 0, side - 1)
    block = vote_maps[np.arange(n_maps)[:, None, None], ys[:, :, None], xs[:, None, :]]
    total = block.sum(axis=(1, 2))
    x = (block.sum(axis=1) * xs).sum(axis=1) / total
    y = (block.sum(axis=2) * ys).sum(axis=1) / total
    return np.stack([x, y], axis=1)
