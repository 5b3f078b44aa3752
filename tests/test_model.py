import json

import keras
import numpy as np
import pytest

from vertseg_tf import build_unet
from vertseg_tf.errors import ConfigError
from vertseg_tf.model import PRESETS, UNet, UNetConfig


def conv_params(kernel, cin, cout):
    return kernel * kernel * cin * cout + cout


def batch_norm_params(channels):
    return 4 * channels  # gamma, beta, moving mean, moving variance


def unet_params_by_formula(config: UNetConfig) -> int:
    k = config.kernel_size
    bn = batch_norm_params if config.batch_norm else (lambda channels: 0)
    total, channels = 0, config.input_channels
    widths = [config.base_filters * 2**level for level in range(config.depth)]
    for width in widths:
        for _ in range(config.convs_per_level):
            total += conv_params(k, channels, width) + bn(width)
            channels = width
    for _ in range(config.bottleneck_convs):
        total += conv_params(k, channels, config.bottleneck_filters) + bn(config.bottleneck_filters)
        channels = config.bottleneck_filters
    for width in reversed(widths):
        total += conv_params(2, channels, width)  # transposed conv to the skip's width
        channels = 2 * width  # concatenated with the skip
        for _ in range(config.convs_per_level):
            total += conv_params(k, channels, width) + bn(width)
            channels = width
    return total + conv_params(1, channels, config.num_classes)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_parameter_count_matches_formula(preset):
    model = build_unet(preset)
    assert model.count_params() == unet_params_by_formula(PRESETS[preset])


def test_paper_preset_has_the_design_parameter_count():
    assert unet_params_by_formula(PRESETS["paper"]) == 25_936_770
    assert PRESETS["paper"].bottleneck_filters == 1024
    assert 350_000 < unet_params_by_formula(PRESETS["demo"]) < 450_000


def test_parameter_count_of_a_custom_config_without_batch_norm():
    config = UNetConfig(base_filters=2, depth=2, bottleneck_convs=1, batch_norm=False,
                        input_size=16, num_classes=3)
    model = build_unet(config)
    assert model.count_params() == unet_params_by_formula(config)
    assert model.output_shape == (None, 16, 16, 3)


def test_interface_input_name_shapes_and_softmax():
    model = build_unet("smoke")
    assert model.input.name == "patch"
    assert model.input_shape == (None, 64, 64, 1)
    assert model.output_shape == (None, 64, 64, 2)
    assert model.name == "unet_smoke"
    probabilities = model(np.random.default_rng(0).random((2, 64, 64, 1), dtype="float32"))
    probabilities = keras.ops.convert_to_numpy(probabilities)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-6)
    assert (probabilities >= 0).all()


def test_output_is_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_unet("smoke")
        assert model.get_layer("enc1_conv1").compute_dtype == "float16"
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.output.dtype == "float32"
    output = model(np.zeros((1, 64, 64, 1), "float32"))
    assert keras.backend.standardize_dtype(output.dtype) == "float32"


def test_save_load_round_trip_identical_outputs(tmp_path):
    model = build_unet("smoke", name="my_unet")
    patches = np.random.default_rng(1).random((3, 64, 64, 1), dtype="float32")
    expected = keras.ops.convert_to_numpy(model(patches, training=False))
    model.save(tmp_path / "unet.keras")
    loaded = keras.models.load_model(tmp_path / "unet.keras")
    assert isinstance(loaded, UNet)
    assert loaded.unet_config == PRESETS["smoke"]
    assert loaded.name == "my_unet"
    reloaded = keras.ops.convert_to_numpy(loaded(patches, training=False))
    np.testing.assert_allclose(reloaded, expected, atol=1e-6)


def test_config_dict_round_trip_is_json():
    config = UNetConfig(base_filters=8, bottleneck_convs=2)
    values = json.loads(json.dumps(config.to_dict()))
    assert values["bottleneck_filters"] == 128
    assert UNetConfig.from_dict(values) == config


@pytest.mark.parametrize(
    "values, field",
    [
        ({"base_filters": 0}, "base_filters"),
        ({"depth": 2.5}, "depth"),
        ({"batch_norm": "yes"}, "batch_norm"),
        ({"num_classes": 1}, "num_classes"),
        ({"input_size": 60}, "input_size"),
        ({"widths": [1, 2]}, "widths"),
    ],
)
def test_bad_config_raises_config_error(values, field):
    with pytest.raises(ConfigError, match=field):
        UNetConfig.from_dict(values)


def test_unknown_preset_raises_config_error():
    with pytest.raises(ConfigError, match="unknown UNet preset 'huge'"):
        build_unet("huge")


def test_build_unet_takes_the_design_keyword_preset():
    by_keyword = build_unet(preset=PRESETS["smoke"])
    assert by_keyword.count_params() == build_unet("smoke").count_params()


def test_get_config_passes_the_dtype_policy_through():
    model = UNet(PRESETS["smoke"], name="unet_dtype", dtype="mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    rebuilt = UNet.from_config(model.get_config())
    for built in (model, rebuilt):
        assert built.get_layer("enc1_conv1").compute_dtype == "bfloat16"
        assert built.output.dtype == "float32"
    assert rebuilt.name == "unet_dtype" and rebuilt.unet_config == model.unet_config
    assert UNet.from_config(build_unet("smoke").get_config()).unet_dtype is None
