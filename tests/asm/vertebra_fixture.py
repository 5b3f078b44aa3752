"""Vertebra-like 64x64 patches made on the fly for the ASM tests and `benchmarks/asm_speed.py`.

No binary fixtures and no dependency on the synthetic generator (another branch).
"""

import numpy as np
from scipy import ndimage

PATCH = 64


def superellipse_outline(centre, half_width, half_height, angle, n_points, exponent=4.0):
    """Dense outline of a rotated superellipse |x/a|^p + |y/b|^p = 1 (patch pixels)."""
    t = np.linspace(0.0, 2.0 * np.pi, n_points, endpoint=False)
    cos, sin = np.cos(t), np.sin(t)
    x = half_width * np.sign(cos) * np.abs(cos) ** (2.0 / exponent)
    y = half_height * np.sign(sin) * np.abs(sin) ** (2.0 / exponent)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.stack([x, y], axis=1) @ rotation.T + np.asarray(centre)


def render_vertebra(rng, centre, half_width, half_height, angle, exponent=4.0):
    """Bright cortical rim, textured body, darker background, noise; normalised per patch."""
    rows, cols = np.mgrid[0:PATCH, 0:PATCH].astype(float)
    dx, dy = cols - centre[0], rows - centre[1]
    u = np.cos(angle) * dx + np.sin(angle) * dy
    v = -np.sin(angle) * dx + np.cos(angle) * dy
    radius = (np.abs(u / half_width) ** exponent + np.abs(v / half_height) ** exponent) ** (
        1.0 / exponent
    )
    depth = (1.0 - radius) * min(half_width, half_height)  # approx. distance inside, pixels
    texture = ndimage.gaussian_filter(rng.normal(size=(PATCH, PATCH)), 1.5) * 2.0
    image = np.where(depth > 0, 0.55 + 0.1 * texture, 0.15 + 0.05 * texture)
    image = image + 0.45 * np.exp(-(((depth - 1.0) / 1.0) ** 2)) * (depth > -0.5)
    image = ndimage.gaussian_filter(image, 0.7) + rng.normal(scale=0.06, size=image.shape)
    return ((image - image.mean()) / image.std()).astype(np.float32)


def make_vertebra_patches(n, seed=0):
    """(images (n, 64, 64) float32, list of dense contours with 80-199 points each)."""
    rng = np.random.default_rng(seed)
    images, contours = [], []
    for _ in range(n):
        centre = np.array([31.5, 31.5]) + rng.uniform(-2.0, 2.0, size=2)
        half_width, half_height = rng.uniform(14.0, 19.0), rng.uniform(10.0, 14.0)
        angle = np.deg2rad(rng.uniform(-8.0, 8.0))
        images.append(render_vertebra(rng, centre, half_width, half_height, angle))
        n_points = int(rng.integers(80, 200))
        contours.append(superellipse_outline(centre, half_width, half_height, angle, n_points))
    return np.stack(images), contours
