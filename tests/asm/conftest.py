"""Fixtures of the ASM tests: vertebra-like patches and a Dice of two contours."""

import numpy as np
import pytest

from tests.asm.vertebra_fixture import PATCH, make_vertebra_patches


@pytest.fixture
def make_patches():
    """make_patches(n, seed) -> (images (n, 64, 64) float32, list of dense contours)."""
    return make_vertebra_patches


@pytest.fixture
def dice():
    """Dice of two contours rasterised with a polygon fill at pixel centres."""
    from skimage.draw import polygon2mask

    def score(contour_a, contour_b):
        masks = [
            polygon2mask((PATCH, PATCH), np.asarray(c)[:, ::-1]) for c in (contour_a, contour_b)
        ]
        total = masks[0].sum() + masks[1].sum()
        return 2.0 * np.logical_and(*masks).sum() / total

    return score
