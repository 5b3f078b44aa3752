import dataclasses
from pathlib import Path

import pytest

from vertseg_tf.data.patches import TRAIN_ALPHAS, TRAIN_ANGLES
from vertseg_tf.errors import ConfigError
from vertseg_tf.training import TRAIN_PRESETS, TrainConfig, load_config
from vertseg_tf.training.config import MODEL_PRESET_NAMES

TRAINING_DIR = Path(__file__).resolve().parents[2] / "training"


@pytest.mark.parametrize("name", ["paper", "demo", "study", "smoke", "pretrained"])
def test_config_files_equal_the_built_in_presets(name):
    assert load_config(TRAINING_DIR / f"{name}.toml") == TRAIN_PRESETS[name]


def test_paper_preset_is_the_papers_protocol():
    paper = TRAIN_PRESETS["paper"]
    assert (paper.optimizer, paper.batch_size, paper.epochs) == ("rmsprop", 25, 30)
    assert paper.model == "paper" and paper.method == "unet-s" and paper.shape_weight == 1.0
    assert paper.augment and len(TRAIN_ALPHAS) * len(TRAIN_ANGLES) == 45
    assert paper.max_train_patches == 0
    assert not paper.augment_mirror and TRAIN_PRESETS["pretrained"].augment_mirror


def test_model_preset_names_match_the_model_module():
    from vertseg_tf.model import PRESETS

    assert MODEL_PRESET_NAMES == tuple(PRESETS)


def test_dict_round_trip_and_replace():
    config = TRAIN_PRESETS["demo"].replace(epochs=3, seed=7)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert (config.epochs, config.seed) == (3, 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 4


def test_learning_rate_scales_linearly_with_the_batch():
    config = TrainConfig(learning_rate=0.001, batch_size=250, reference_batch_size=25)
    assert config.effective_learning_rate == 0.001
    assert config.replace(scale_lr=True).effective_learning_rate == pytest.approx(0.01, abs=1e-12)


def test_unet_ignores_the_shape_weight():
    assert TrainConfig(method="unet", shape_weight=2.0).loss_weight == 0.0
    assert TrainConfig(method="unet-s", shape_weight=2.0).loss_weight == 2.0


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"method": "unet-x"}, "method"),
        ({"model": "huge"}, "model"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"deterministic": "yes"}, "deterministic"),
        ({"mixed_precision": "float16"}, "mixed_precision"),
    ],
)
def test_bad_values_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=f"TrainConfig.{field}"):
        TrainConfig(**changes)


def test_config_file_errors_name_the_file(tmp_path):
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('method = "unet"\nbatchsize = 3\n')
    with pytest.raises(ConfigError, match=r"unknown\.toml: unknown setting\(s\) batchsize"):
        load_config(unknown)
    broken = tmp_path / "broken.toml"
    broken.write_text("epochs = = 3\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_config(broken)
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = -1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: TrainConfig\.epochs"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_a_file_may_leave_settings_out(tmp_path):
    path = tmp_path / "short.toml"
    path.write_text('model = "smoke"\nepochs = 1\n')
    assert load_config(path) == TrainConfig(model="smoke", epochs=1)


def test_locator_demo_recipe_file_equals_the_locator_demo_preset():
    from vertseg_tf.training.config import LOCATOR_PRESETS

    assert load_config(TRAINING_DIR / "locator_demo.toml") == LOCATOR_PRESETS["demo"]
