"""benchmarks.locator_crops: the cuts move the true centres and drop those cut off."""

import numpy as np
import pytest

from benchmarks.locator_crops import _cut
from vertseg_tf.locate.heatmaps import LOCATED_LEVELS

ROWS = [10.0, 30.0, 50.0, 70.0, 90.0, 110.0, 130.0]


@pytest.mark.parametrize(("cut", "top", "bottom", "gone"), [
    ("uncut", 0, 150, []), ("below_c7", 0, 120, ["T1"]), ("above_c3", 20, 150, ["C2"])])
def test_cuts_halfway_between_the_levels(cut, top, bottom, gone):
    image = np.arange(150 * 40, dtype=np.float32).reshape(150, 40)
    truth = np.array([[5.0 + k, row] for k, row in enumerate(ROWS)])
    cropped, moved = _cut(image, truth, list(LOCATED_LEVELS), cut)
    np.testing.assert_array_equal(cropped, image[top:bottom])
    for k, label in enumerate(LOCATED_LEVELS):
        if label in gone:
            assert np.isnan(moved[k]).all()
        else:
            np.testing.assert_array_equal(moved[k], [5.0 + k, ROWS[k] - top])
