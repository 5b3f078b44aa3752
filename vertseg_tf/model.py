"""The paper's UNet (Al Arif et al., section 3.1) as a backend-neutral Keras functional model.

The network keeps the 64x64 patch size ("same" padding). The contracting path has `depth`
levels of `convs_per_level` 3x3 convolutions (widths base, 2*base, 4*base, ...), each level
followed by 2x2 max pooling, then `bottleneck_convs` 3x3 convolutions at the lowest resolution.
The expanding path mirrors it: a 2x2 stride-2 transposed convolution to the width of the
matching contracting level, concatenation with that level's output, and `convs_per_level`
convolutions. Every 3x3 convolution is followed by batch normalisation and ReLU. A 1x1
convolution with softmax gives the two class probabilities (channel 1 = vertebra).

The paper gives this structure but not the widths; the `paper` preset (64/128/256, bottleneck
1024) has 25,936,770 parameters against the paper's stated 24,238,210 (+7.0 %).

Only `keras.layers` are used: the model builds and runs on any Keras backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from vertseg_tf.errors import ConfigError

__all__ = ["PRESETS", "UNet", "UNetConfig", "build_unet"]

# The paper's bottleneck (1024) is 16 times its first level's width (64); presets keep the ratio.
_BOTTLENECK_WIDTH_RATIO = 16


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Architecture of the UNet; the defaults are the paper's network.

    Args:
        base_filters: width of the first contracting level; level k has `base_filters * 2**k`.
        depth: number of contracting levels, each followed by 2x2 max pooling.
        convs_per_level: 3x3 convolutions per contracting and per expanding level.
        bottleneck_convs: 3x3 convolutions at the lowest resolution.
        bottleneck_filters: width of the bottleneck convolutions; None means
            `16 * base_filters` (the paper's 1024 for base 64).
        input_size: side of the square input patch; must be divisible by `2**depth`.
        input_channels: channels of the input patch (1 for radiographs).
        num_classes: softmax channels of the output (2: background, vertebra).
        batch_norm: batch normalisation after every 3x3 convolution.
        kernel_size: side of the convolution kernels of the levels and the bottleneck.

    Example:
        >>> config = UNetConfig(base_filters=8)
        >>> config.bottleneck_filters
        128
        >>> UNetConfig.from_dict(config.to_dict()) == config
        True
    """

    base_filters: int = 64
    depth: int = 3
    convs_per_level: int = 2
    bottleneck_convs: int = 3
    bottleneck_filters: int | None = None
    input_size: int = 64
    input_channels: int = 1
    num_classes: int = 2
    batch_norm: bool = True
    kernel_size: int = 3

    def __post_init__(self):
        if self.bottleneck_filters is None:
            object.__setattr__(
                self, "bottleneck_filters", _BOTTLENECK_WIDTH_RATIO * self.base_filters
            )
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "batch_norm":
                if not isinstance(value, bool):
                    raise ConfigError(
                        f"UNetConfig.batch_norm: expected true or false, got {value!r}"
                    )
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"UNetConfig.{field.name}: expected a positive integer, got {value!r}"
                )
        if self.num_classes < 2:
            raise ConfigError(
                f"UNetConfig.num_classes: expected at least 2, got {self.num_classes}"
            )
        if self.input_size % 2**self.depth:
            raise ConfigError(
                f"UNetConfig.input_size: {self.input_size} is not divisible by 2**depth = "
                f"{2**self.depth}"
            )

    @property
    def level_filters(self) -> tuple[int, ...]:
        """Widths of the contracting levels, first to last."""
        return tuple(self.base_filters * 2**level for level in range(self.depth))

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (every field, bottleneck width resolved)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> UNetConfig:
        """Build a config from `to_dict()` output; unknown keys raise `ConfigError`."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"UNetConfig: unknown field(s) {', '.join(unknown)}")
        return cls(**values)


PRESETS: dict[str, UNetConfig] = {
    "paper": UNetConfig(base_filters=64),
    "demo": UNetConfig(base_filters=8),
    "study": UNetConfig(base_filters=16),
    "smoke": UNetConfig(base_filters=4),
    # The shipped pretrained model's architecture (915,722 parameters): the widest that trains
    # both networks on a shared 2-core CPU in about an hour (training/pretrained.toml).
    "cpu": UNetConfig(base_filters=12),
}


def _conv_block(x, filters: int, kernel_size: int, batch_norm: bool, prefix: str, count: int):
    for index in range(1, count + 1):
        x = keras.layers.Conv2D(
            filters, kernel_size, padding="same", name=f"{prefix}_conv{index}"
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"{prefix}_bn{index}")(x)
        x = keras.layers.ReLU(name=f"{prefix}_relu{index}")(x)
    return x


def _unet_graph(config: UNetConfig):
    patch = keras.Input(
        shape=(config.input_size, config.input_size, config.input_channels), name="patch"
    )
    x = patch
    skips = []
    for level, filters in enumerate(config.level_filters, start=1):
        x = _conv_block(
            x, filters, config.kernel_size, config.batch_norm, f"enc{level}",
            config.convs_per_level,
        )
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _conv_block(
        x, config.bottleneck_filters, config.kernel_size, config.batch_norm, "bottleneck",
        config.bottleneck_convs,
    )
    for level in range(config.depth, 0, -1):
        filters = config.level_filters[level - 1]
        x = keras.layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"concat{level}")([x, skips[level - 1]])
        x = _conv_block(
            x, filters, config.kernel_size, config.batch_norm, f"dec{level}",
            config.convs_per_level,
        )
    # float32 output keeps the softmax and the loss exact under a mixed-precision policy.
    probabilities = keras.layers.Conv2D(
        config.num_classes, 1, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return patch, probabilities


@keras.saving.register_keras_serializable(package="vertseg_tf")
class UNet(keras.Model):
    """The paper's UNet as a functional model that carries its `UNetConfig`.

    Build it with `build_unet`. Saving (`model.save("unet.keras")`) stores the config;
    `keras.models.load_model` rebuilds the same graph from it and loads the weights, with no
    `custom_objects` once `vertseg_tf.model` has been imported.

    Args:
        config: the architecture (a `UNetConfig` or its `to_dict()` form).
        name: the model's name.
        dtype: the dtype policy of the layers (e.g. "mixed_bfloat16"; the output stays
            float32); default: the global policy when the model is built.
        **kwargs: passed to `keras.Model` (e.g. `trainable`).

    Example:
        >>> model = UNet(PRESETS["smoke"], name="unet_smoke")
        >>> model.output_shape
        (None, 64, 64, 2)

    Reference:
        Al Arif, Knapp, Slabaugh, "Shape-aware Deep Convolutional Neural Network for Vertebrae
        Segmentation", section 3.1 and Fig. 4.
    """

    def __init__(
        self, config: UNetConfig | dict, name: str | None = None, dtype=None, **kwargs
    ):
        if isinstance(config, dict):
            config = UNetConfig.from_dict(config)
        # A functional model's layers take the policy in force when they are created.
        previous = keras.config.dtype_policy()
        if dtype is not None:
            keras.config.set_dtype_policy(keras.dtype_policies.get(dtype))
        try:
            patch, probabilities = _unet_graph(config)
        finally:
            keras.config.set_dtype_policy(previous)
        super().__init__(inputs=patch, outputs=probabilities, name=name, **kwargs)
        self.unet_config = config
        self.unet_dtype = None if dtype is None else keras.dtype_policies.get(dtype).name

    def get_config(self) -> dict[str, Any]:
        return {
            "config": self.unet_config.to_dict(),
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.unet_dtype,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UNet:
        return cls(**config)

    @classmethod
    def from_preset(cls, preset: str, *, name: str | None = None) -> keras.Model:
        """A UNet by preset name, in the keras-hub way.

        Args:
            preset: `"paper"`, `"demo"` or `"smoke"` (untrained, freshly initialised; see
                `build_unet`), or `"pretrained"` (the model shipped with the package, trained).
            name: the model's name for the untrained presets; default `unet_<preset>`.

        Raises:
            ConfigError: an unknown preset, or `"pretrained"` without the shipped model.

        Example:
            >>> UNet.from_preset("smoke").count_params()
            102810
        """
        if preset == "pretrained":
            from vertseg_tf.models_io import load_pretrained_model

            return load_pretrained_model()
        if preset not in PRESETS:
            raise ConfigError(
                f"unknown UNet preset {preset!r}; expected one of "
                f"{', '.join((*PRESETS, 'pretrained'))}"
            )
        return build_unet(preset, name=name)


def build_unet(preset: str | UNetConfig = "paper", *, name: str | None = None) -> UNet:
    """Build the UNet from a preset name or a `UNetConfig`.

    Args:
        preset: `"paper"` (25,936,770 parameters), `"demo"` (base width 8,
            408,050 parameters), `"smoke"` (base width 4, 102,810 parameters) or a `UNetConfig`.
        name: the model's name; default `unet_<preset>` (or `unet` for a config).

    Returns:
        An uncompiled `UNet` (a `keras.Model`): input `patch` of shape
        (None, size, size, channels), output float32 softmax (None, size, size, classes).

    Raises:
        ConfigError: an unknown preset name.

    Example:
        >>> model = build_unet("smoke")
        >>> model.input.name, model.output_shape
        ('patch', (None, 64, 64, 2))
    """
    if isinstance(preset, UNetConfig):
        return UNet(preset, name=name or "unet")
    if preset not in PRESETS:
        raise ConfigError(
            f"unknown UNet preset {preset!r}; expected one of {', '.join(PRESETS)}"
        )
    return UNet(PRESETS[preset], name=name or f"unet_{preset}")
