"""Contact sheets: a PNG grid of patches with their masks and outlines, to look at a patch set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vertseg_tf.atomic import atomic_path
from vertseg_tf.errors import ConfigError

__all__ = ["save_contact_sheet"]


def save_contact_sheet(
    patch_set,
    path,
    count: int = 25,
    seed: int = 0,
    columns: int | None = None,
) -> Path:
    """Write a PNG grid of random patches with the mask tinted and the contour drawn.

    Args:
        patch_set: the patches (a `vertseg_tf.data.patches.PatchSet`).
        path: output PNG file (written atomically).
        count: number of patches (fewer if the set is smaller).
        seed: seed of the random choice.
        columns: grid width; default the ceiling of sqrt(count).

    Returns:
        the written path.

    Example:
        >>> save_contact_sheet(train, "sheet.png", count=25, seed=0)  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    if count < 1:
        raise ConfigError(f"count must be >= 1, got {count}")
    if len(patch_set) == 0:
        raise ConfigError("the patch set is empty: nothing to draw")
    count = min(count, len(patch_set))
    chosen = np.sort(np.random.default_rng(seed).choice(len(patch_set), count, replace=False))
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    figure, grid = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.75 * rows), squeeze=False)
    for cell in grid.ravel():
        cell.axis("off")
    for cell, i in zip(grid.ravel(), chosen.tolist()):
        cell.imshow(patch_set.images[i], cmap="gray", interpolation="nearest")
        if patch_set.masks is not None:
            tint = np.ma.masked_equal(patch_set.masks[i], 0)
            cell.imshow(tint, cmap="autumn", alpha=0.3, interpolation="nearest", vmin=0, vmax=1)
        if patch_set.contours:
            loop = np.vstack([patch_set.contours[i], patch_set.contours[i][:1]])
            cell.plot(loop[:, 0], loop[:, 1], color="cyan", linewidth=0.8)
        title = f"{patch_set.image_ids[i]} {patch_set.labels[i]}\n"
        title += f"a={patch_set.alphas[i]:.1f} {patch_set.angles[i]:+.0f}deg"
        cell.set_title(title, fontsize=6)
    figure.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=110)
    finally:
        plt.close(figure)
    return path
