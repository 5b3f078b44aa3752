"""Random and adversarial polylines for the distance and mask tests."""

import numpy as np


def random_outlines(seed: int, count: int) -> list[np.ndarray]:
    """Polylines of 1 to 40 vertices, some on pixel centres and half-pixels, some off the grid."""
    rng = np.random.default_rng(seed)
    outlines = []
    for k in range(count):
        points = rng.uniform(-6.0, 20.0, (int(rng.integers(1, 40)), 2))
        if k % 3 == 0:
            points = np.round(points * 2.0) / 2.0
        outlines.append(points)
    return outlines


def adversarial_outlines() -> dict[str, np.ndarray]:
    """Outlines where many segments tie or nearly tie for the nearest one, and degenerate ones.

    All but "far away" lie within about [-5, 25] x [-5, 25], like `random_outlines`.
    """
    turn = np.linspace(0.0, 2.0 * np.pi, 96, endpoint=False)
    circle = np.column_stack([np.cos(turn), np.sin(turn)])
    zigzag_x = np.linspace(0.0, 20.0, 41)
    zigzag = np.column_stack([zigzag_x, 8.0 + 0.05 * (np.arange(41) % 2)])
    spiral_turn = np.linspace(0.0, 6.0 * np.pi, 300)
    spiral = 10.0 + (1.0 + spiral_turn)[:, None] * np.column_stack(
        [np.cos(spiral_turn), np.sin(spiral_turn)]
    ) * 0.45
    return {
        # every segment of a regular 96-gon is equally far from its centre, a pixel centre
        "96-gon on a pixel centre": 10.0 + 9.0 * circle,
        "96-gon off the grid": np.array([10.3, 9.7]) + 7.77 * circle,
        "two concentric squares": np.array(
            [[2, 2], [18, 2], [18, 18], [2, 18], [2, 2], [6, 6], [14, 6], [14, 14], [6, 14],
             [6, 6]], float
        ),
        "thin sliver": np.array([[0.0, 10.0], [20.0, 10.02], [0.0, 10.04]]),
        "zigzag of near ties": zigzag,
        "collinear run with repeats": np.array(
            [[1.0, 1.0], [1.0, 1.0], [5.0, 5.0], [5.0, 5.0], [9.0, 9.0], [13.0, 13.0],
             [13.0, 13.0], [2.0, 15.0]]
        ),
        "vertices on pixel centres": np.array([[3.0, 3.0], [12.0, 3.0], [12.0, 9.0], [3.0, 9.0]]),
        "spiral": spiral,
        "single point": np.array([[4.5, 7.0]]),
        "two points": np.array([[0.0, 0.0], [0.0, 0.0]]),
        "far away": np.array([[60.0, -40.0], [64.0, -40.0], [62.0, -36.0]]),
    }


def similarity_maps(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """(count, 2, 3) random similarity maps taking [-5, 25]^2 onto about a size x size grid.

    Random turn, scale (0.3 to 4), reflection and shift; the first map is a quarter turn at
    scale 2 with an integer shift, which keeps grid points on pixel centres.
    """
    maps = np.empty((count, 2, 3))
    for k in range(count):
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 4.0)
        linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        if rng.random() < 0.3:
            linear[:, 0] *= -1.0
        middle = (size - 1) / 2.0 + rng.normal(0.0, size / 8.0, 2)
        maps[k] = np.column_stack([linear, middle - linear @ [10.0, 10.0]])
    if count:
        maps[0] = [[0.0, -2.0, size / 2.0 + 20.0], [2.0, 0.0, size / 2.0 - 20.0]]
    return maps
