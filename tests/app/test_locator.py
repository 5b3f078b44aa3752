"""The page's "find": `vertseg-tf app --locator M` wires a `vertseg_tf.locate.Locator`."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from tests.app.conftest import Server
from vertseg_tf.app.server import create_app
from vertseg_tf.cli.app import load_locator, locator_finder
from vertseg_tf.locate import LOCATOR_SPECS, SEGMENTED_LEVELS, Locator, build_locator


def test_find_answers_the_levels_the_locator_found(png_film, tmp_path):
    path = tmp_path / "locator.keras"
    build_locator(LOCATOR_SPECS["smoke"]).save(path)
    # an untrained locator peaks low: with threshold 0 every level whose peak fits the spine
    # order is found (at least one always is)
    locator = Locator(str(path), threshold=0.0)
    # the page segments what it finds, so it offers C3-C7 only (C2 and T1 name the others)
    found = [level for level in locator.locate(png_film.image)
             if level.found and level.label in SEGMENTED_LEVELS]
    assert found
    assert load_locator(str(path)) is not None
    find = locator_finder(locator)
    with Server(create_app(png_film.segmenter(), locator=find)) as app:
        assert app.json("/api/info")[1]["find"] is True
        status, opened = app.json("/images", files={"image": ("a.png",
                                                              png_film.path.read_bytes())})
        status, answer = app.json("/find", fields={"image_id": opened["image_id"]})
    assert status == 200
    assert answer["labels"] == [level.label for level in found]
    np.testing.assert_allclose(np.reshape(answer["centers"], (-1, 2)),
                               np.reshape([level.center for level in found], (-1, 2)),
                               atol=0.005)
    assert answer["confidences"] == [level.confidence for level in found]


def test_without_a_shipped_locator_find_is_hidden():
    shipped = importlib.util.find_spec("vertseg_tf.pretrained") is not None and hasattr(
        importlib.import_module("vertseg_tf.pretrained"), "load_pretrained_locator")
    assert (load_locator(None) is not None) == shipped
