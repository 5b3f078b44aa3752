"""locator_figures on hand-made centres: errors in mm, identification, misses, false finds."""

import numpy as np
import pytest

from vertseg_tf.locate.evaluate import locator_figures

NAN = [np.nan, np.nan]


def test_figures_count_errors_identification_misses_and_false_detections():
    truth = np.array([
        [[10, 10], [10, 30], [10, 50], [10, 70], [10, 90]],
        [[20, 10], [20, 30], [20, 50], [20, 70], NAN],
    ], float)
    found = np.array([
        # 3 px off; C4 found at C5's place (not identified); C7 missed.
        [[13, 10], [10, 50], [10, 50], [10, 74], NAN],
        # exact, except C6 off by 12 px (over half the 20 px spacing); a false C7.
        [[20, 10], [20, 30], [20, 50], [20, 82], [20, 95]],
    ], float)
    figures = locator_figures(found, truth, spacing_mm=[0.5, 2.0])
    c3, c4, c6, c7 = (figures["levels"][k] for k in ("C3", "C4", "C6", "C7"))
    assert c3["median_mm"] == pytest.approx((1.5 + 0.0) / 2) and c3["identified"] == 2
    assert c4["identified"] == 1 and c4["mean_mm"] == pytest.approx((10.0 + 0.0) / 2)
    assert c6["identified"] == 1 and c6["mean_mm"] == pytest.approx((2.0 + 24.0) / 2)
    assert (c7["n"], c7["found"], c7["missed"], c7["false"]) == (1, 0, 1, 1)
    overall = figures["all"]
    assert (overall["n"], overall["found"], overall["missed"], overall["false"]) == (9, 8, 1, 1)
    assert overall["identified"] == 6 and overall["identification_rate"] == pytest.approx(6 / 9)


def test_c3_to_c7_are_also_summed_apart_when_c2_and_t1_are_located():
    from vertseg_tf.locate.heatmaps import LOCATED_LEVELS

    truth = np.array([[[10, y] for y in range(10, 150, 20)]], float)  # C2 at 10 ... T1 at 130
    found = truth.copy()
    found[0, 0] = NAN  # C2 missed
    found[0, 3, 0] += 4  # C5 4 px off
    truth[0, 6] = NAN  # T1 not annotated, found anyway: a false detection
    figures = locator_figures(found, truth, spacing_mm=[1.0], levels=LOCATED_LEVELS)
    assert list(figures["levels"]) == list(LOCATED_LEVELS)
    segmented, overall = figures["segmented"], figures["all"]
    assert (segmented["n"], segmented["found"], segmented["missed"], segmented["false"]) == (
        5, 5, 0, 0)
    assert segmented["identified"] == 5 and segmented["mean_mm"] == pytest.approx(4 / 5)
    assert (overall["n"], overall["found"], overall["missed"], overall["false"]) == (6, 5, 1, 1)
    assert "segmented" not in locator_figures(found[:, 1:6], truth[:, 1:6], [1.0])
