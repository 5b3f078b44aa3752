"""The locator model records its levels; earlier C3-C7 locators still load."""

import numpy as np
import pytest

from vertseg_tf.errors import DataError
from vertseg_tf.locate import LOCATED_LEVELS, LOCATOR_SPECS, Locator, build_locator
from vertseg_tf.locate.heatmaps import channel_levels
from vertseg_tf.locate.network import locator_levels
from vertseg_tf.locate.training import annotated_span


@pytest.mark.parametrize("levels", [LOCATED_LEVELS, ("C3", "C4", "C5", "C6", "C7"),
                                    ("C2", "C3", "C4", "C5", "C6", "C7")])
def test_a_saved_locator_keeps_its_levels(levels, tmp_path):
    model = build_locator(LOCATOR_SPECS["smoke"], levels)
    assert model.output_shape[-1] == len(levels)
    model.save(tmp_path / "locator.keras")
    locator = Locator(tmp_path / "locator.keras", threshold=0.0)
    assert locator.levels == levels
    located = locator.locate(np.random.default_rng(0).uniform(size=(90, 70)))
    assert [level.label for level in located] == list(levels)


def test_levels_must_be_consecutive():
    with pytest.raises(ValueError, match="consecutive"):
        build_locator(LOCATOR_SPECS["smoke"], ("C2", "C4"))


def test_an_earlier_locator_without_levels_in_its_name_finds_c3_to_c7(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    for channels, expected in ((5, ("C3", "C4", "C5", "C6", "C7")), (7, LOCATED_LEVELS)):
        model = keras.Model(inputs, keras.layers.Conv2D(channels, 1)(inputs),
                            name="vertseg_locator")
        assert locator_levels(model) == channel_levels(channels) == expected
    odd = keras.Model(inputs, keras.layers.Conv2D(6, 1)(inputs), name="vertseg_locator")
    with pytest.raises(ValueError, match="6 heatmap channels"):
        locator_levels(odd)
    odd.save(tmp_path / "odd.keras")
    with pytest.raises(DataError, match="not a locator model"):
        Locator(tmp_path / "odd.keras")


def test_the_locator_learns_the_span_of_levels_its_films_annotate():
    from vertseg_tf.data.dataset import ImageRecord, VertebraRecord

    def film(labels, ends=()):
        vertebrae = [VertebraRecord(label, np.zeros(2), np.zeros((3, 2))) for label in labels]
        return ImageRecord("a", "a.png", vertebrae=vertebrae,
                           level_centers={label: np.zeros(2) for label in ends})

    assert annotated_span([film(["C3", "C4", "C5", "C6", "C7"])]) == channel_levels(5)
    assert annotated_span([film(["C4"]), film(["C3"], ["T1"])]) == (
        "C3", "C4", "C5", "C6", "C7", "T1")
    assert annotated_span([film(["C5"], ["C2", "T1"])]) == LOCATED_LEVELS
    assert annotated_span([film([])]) == ()
