"""benchmarks.locator_threshold: the films a locator run validated on."""

import numpy as np

from benchmarks.locator_threshold import held_out_films
from vertseg_tf.data.dataset import Dataset, ImageRecord


def _film(name, split):
    return ImageRecord(name, f"{name}.png", split, level_centers={"C3": np.zeros(2)})


def test_a_val_split_is_taken_whole_and_relabelled_test():
    dataset = Dataset([_film("a", "train"), _film("b", "val"), _film("c", "val"),
                       _film("d", "test")])
    films = held_out_films(dataset, 0.5)
    assert [im.id for im in films.images] == ["b", "c"]
    assert {im.split for im in films.images} == {"test"}
    assert [im.split for im in dataset.images] == ["train", "val", "val", "test"]


def test_without_a_val_split_a_share_of_the_training_films_is_held_out():
    dataset = Dataset([_film(f"f{k}", "train") for k in range(20)] + [_film("t", "test")])
    held = [im.id for im in held_out_films(dataset, 0.25).images]
    assert 0 < len(held) < 20 and "t" not in held
    assert held == [im.id for im in held_out_films(dataset, 0.25).images]
