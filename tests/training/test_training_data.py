import json
import shutil

import numpy as np
import pytest

from vertseg_tf.data.dataset import load_dataset
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.training import TRAIN_PRESETS, epoch_order, load_training_data, resolve_dataset
from vertseg_tf.training.data import mirror_choice


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    first = epoch_order(50, seed=3, epoch=4)
    assert sorted(first.tolist()) == list(range(50))
    assert np.array_equal(first, epoch_order(50, seed=3, epoch=4))
    assert not np.array_equal(first, epoch_order(50, seed=3, epoch=5))
    assert not np.array_equal(first, epoch_order(50, seed=4, epoch=4))


def test_validation_holds_out_whole_training_images_unaugmented(tiny_dataset, patch_cache):
    config = TRAIN_PRESETS["smoke"].replace(max_train_patches=0)
    data = load_training_data(tiny_dataset, config, cache_dir=patch_cache)
    train_ids = [im.id for im in load_dataset(tiny_dataset).split("train")]
    assert data.val_source == "held-out training images"
    assert len(data.val_image_ids) == 1  # round(0.25 * 3)
    assert set(data.val_image_ids) | set(data.train_image_ids) == set(train_ids)
    assert not set(data.val_image_ids) & set(data.train_image_ids)
    # 5 vertebrae per synthetic image: 45 augmented patches each, 1 validation patch each.
    assert len(data.x) == 45 * 5 * len(data.train_image_ids)
    assert len(data.val_x) == 5
    assert data.x.shape[1:] == (64, 64, 1) and data.y_true.shape[1:] == (64, 64, 2)
    other_seed = load_training_data(tiny_dataset, config.replace(seed=9), cache_dir=patch_cache)
    assert other_seed.val_image_ids == data.val_image_ids


def test_max_train_patches_takes_a_seeded_subset(tiny_dataset, patch_cache):
    config = TRAIN_PRESETS["smoke"]
    data = load_training_data(tiny_dataset, config, cache_dir=patch_cache)
    again = load_training_data(tiny_dataset, config, cache_dir=patch_cache)
    assert len(data.x) == config.max_train_patches
    assert np.array_equal(data.x, again.x)


def test_augment_mirror_reflects_a_seeded_half_of_the_training_patches(tiny_dataset, patch_cache):
    plain = TRAIN_PRESETS["smoke"]
    assert not plain.augment_mirror and not TRAIN_PRESETS["paper"].augment_mirror
    data = load_training_data(tiny_dataset, plain, cache_dir=patch_cache)
    mirrored = load_training_data(
        tiny_dataset, plain.replace(augment_mirror=True), cache_dir=patch_cache
    )
    flipped = mirror_choice(len(data.x), plain.seed)
    assert flipped.sum() == len(data.x) // 2
    np.testing.assert_array_equal(mirrored.x[flipped], data.x[flipped][:, :, ::-1])
    np.testing.assert_array_equal(mirrored.y_true[flipped], data.y_true[flipped][:, :, ::-1])
    np.testing.assert_array_equal(mirrored.x[~flipped], data.x[~flipped])
    np.testing.assert_array_equal(mirrored.val_x, data.val_x)
    assert not np.array_equal(flipped, mirror_choice(len(data.x), plain.seed + 1))


@pytest.mark.slow
def test_a_val_split_is_used_as_it_is(tiny_dataset, patch_cache, tmp_path):
    document = json.loads((tiny_dataset / "dataset.json").read_text())
    train = [image for image in document["images"] if image["split"] == "train"]
    train[0]["split"] = "val"
    (tmp_path / "dataset.json").write_text(json.dumps(document))
    shutil.copytree(tiny_dataset / "images", tmp_path / "images")
    data = load_training_data(tmp_path, TRAIN_PRESETS["smoke"], cache_dir=patch_cache)
    assert data.val_source == "val split"
    assert data.val_image_ids == [train[0]["id"]]
    assert len(data.train_image_ids) == 2


def test_missing_dataset_and_oversized_batch(tiny_dataset, patch_cache, tmp_path):
    with pytest.raises(DataError, match="no dataset.json"):
        resolve_dataset(tmp_path, TRAIN_PRESETS["smoke"])
    with pytest.raises(DataError, match="not a folder"):
        resolve_dataset(tmp_path / "absent", TRAIN_PRESETS["smoke"])
    config = TRAIN_PRESETS["smoke"].replace(max_train_patches=5)
    with pytest.raises(ConfigError, match="batch_size 10 is larger than the 5 training patches"):
        load_training_data(tiny_dataset, config, cache_dir=patch_cache)
