"""The shipped locator loads, has one channel per level and an honest record."""

import numpy as np

from vertseg_tf.locate import LOCATED_LEVELS, Locator
from vertseg_tf.pretrained import LOCATOR_FILE, LOCATOR_RECORD_FILE, PRETRAINED_DIR


def test_shipped_locator_loads_and_locates_every_level_or_reports_it_missing():
    locator = Locator()
    assert locator.model.output_shape[-1] == len(LOCATED_LEVELS)
    located = locator.locate(np.zeros((300, 200), np.float32))
    assert [level.label for level in located] == list(LOCATED_LEVELS)
    for level in located:
        assert level.found == (level.confidence >= locator.threshold)


def test_shipped_locator_record_states_its_test_figures_and_validation():
    import json

    record = json.loads((PRETRAINED_DIR / LOCATOR_RECORD_FILE).read_text())
    assert record["validated_on"] == "synthetic v2 films only"
    figures = record["test"]["all"]
    assert figures["found"] + figures["missed"] == figures["n"]
    assert figures["identification_rate"] == figures["identified"] / figures["n"]
    assert set(record["test"]["levels"]) == set(LOCATED_LEVELS)
    per_level = record["test"]["levels"].values()
    for field in ("n", "found", "missed", "false", "identified"):
        assert sum(level[field] for level in per_level) == figures[field]
    assert record["status"].startswith("meets" if figures["identification_rate"] >= 0.95
                                       and figures["median_mm"] <= 2.0 else "misses")


def test_shipped_locator_stays_within_the_package_budget():
    """The locator ships beside the segmenter (10 MiB budget); it gets 2 MiB."""
    assert (PRETRAINED_DIR / LOCATOR_FILE).stat().st_size <= 2 * 2**20
