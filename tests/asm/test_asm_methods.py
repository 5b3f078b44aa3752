import numpy as np
import pytest

from vertseg_tf.asm import ASMG, ASMM


def rectangle(first_col, last_col, first_row, last_row, noise_seed=None):
    """Bright pixels in [first, last] on a dark background, and the outline through pixel edges."""
    image = np.zeros((64, 64))
    image[first_row : last_row + 1, first_col : last_col + 1] = 1.0
    if noise_seed is not None:
        image += np.random.default_rng(noise_seed).normal(scale=0.05, size=image.shape)
    x0, x1, y0, y1 = first_col - 0.5, last_col + 0.5, first_row - 0.5, last_row + 0.5
    return image, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def distance_to_polygon(points, polygon):
    """Exact distance of each point to a closed polyline (numpy reference)."""
    a = polygon[None, :, :]
    b = np.roll(polygon, -1, axis=0)[None, :, :]
    p = points[:, None, :]
    t = np.clip(np.sum((p - a) * (b - a), axis=2) / np.sum((b - a) ** 2, axis=2), 0.0, 1.0)
    closest = a + t[..., None] * (b - a)
    return np.min(np.linalg.norm(p - closest, axis=2), axis=1)


@pytest.mark.parametrize("shift", [(3, 0), (0, 3), (-2, 2)])
def test_asm_g_finds_bright_rectangle_from_offset_start(shift):
    rng = np.random.default_rng(0)
    images, contours = [], []
    for index in range(24):
        half_w, half_h = int(rng.integers(13, 17)), int(rng.integers(9, 12))
        image, outline = rectangle(32 - half_w, 31 + half_w, 32 - half_h, 31 + half_h, index)
        images.append(image)
        contours.append(outline)
    model = ASMG(n_landmarks=20).fit(images, contours)
    dx, dy = shift
    image, outline = rectangle(17 + dx, 46 + dx, 21 + dy, 42 + dy, noise_seed=99)
    start_error = distance_to_polygon(model.pdm.initial_points((64, 64)), outline).mean()
    assert start_error > 1.5
    found = model.predict([image])[0]
    assert found.shape == (20, 2)
    assert distance_to_polygon(found, outline).mean() < 1.0


def fit_on_fixture(cls, make_patches, **options):
    images, contours = make_patches(24, seed=0)
    return cls(n_landmarks=20, **options).fit(images, contours)


@pytest.mark.parametrize("cls", [ASMG, ASMM])
def test_each_method_beats_mean_shape_initialisation_on_held_out_patches(cls, make_patches, dice):
    model = fit_on_fixture(cls, make_patches)
    images, contours = make_patches(6, seed=1)
    start = model.pdm.initial_points((64, 64))
    predicted = model.predict(images)
    before = np.array([dice(start, truth) for truth in contours])
    after = np.array([dice(found, truth) for found, truth in zip(predicted, contours)])
    assert after.mean() > before.mean()
    assert np.sum(after > before) >= 5
