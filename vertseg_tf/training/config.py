"""`TrainConfig`: every choice of a training run, its presets and its TOML/JSON forms.

A config is a frozen dataclass. The built-in presets (`TRAIN_PRESETS`) are also stored as
files in the repository's `training/` folder (`paper.toml`, `demo.toml`, `smoke.toml`,
`pretrained.toml`);
`load_config` reads such a file with `tomllib`. The resolved config is written as JSON into
every run folder and next to every checkpoint (`to_dict` / `from_dict`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vertseg_tf.channels import E_MODES, E_PER, WEIGHTINGS
from vertseg_tf.errors import ConfigError

__all__ = [
    "LOCATOR_PRESETS",
    "LOOPS",
    "LR_SCHEDULES",
    "METHODS",
    "MIXED_PRECISION",
    "MODEL_PRESET_NAMES",
    "MODEL_SELECTIONS",
    "STRATEGIES",
    "TRAIN_PRESETS",
    "StepCallback",
    "TrainConfig",
    "load_config",
]

METHODS = ("unet", "unet-s", "asm-g", "asm-m", "asm-rf", "locator")
LOOPS = ("custom", "fit")
STRATEGIES = ("default", "mirrored", "multiworker")
MIXED_PRECISION = ("none", "bfloat16")
# The names of `vertseg_tf.model.PRESETS`, spelled out so that importing the config (and
# `vertseg-tf --help`) does not load Keras; a test keeps the two equal.
MODEL_PRESET_NAMES = ("paper", "demo", "study", "smoke", "cpu")
StepCallback = Callable[[int], None]
"""Called with the global step number after every optimisation step; raising stops training."""

LR_SCHEDULES = ("constant", "cosine", "step")
MODEL_SELECTIONS = ("last", "best")
_OPTIMIZERS = ("rmsprop",)
_SYNTHETIC_SIZES = ("small", "full")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; the defaults are the paper's protocol.

    Args:
        method: "unet" (pixel log loss), "unet-s" (log loss + shape-aware term), an active
            shape model baseline "asm-g", "asm-m", "asm-rf", or "locator" (the network that
            finds the vertebra centres on the whole film, `vertseg_tf.locate`; it uses
            `model`, `epochs`, `batch_size`, `learning_rate`, `seed`, `validation_fraction`,
            `jit_compile` and the synthetic fields).
        model: UNet preset name of `vertseg_tf.model.PRESETS` ("paper", "demo", "study",
            "smoke", "cpu").
        epochs: passes over the training patches.
        batch_size: patches per optimisation step (global, over all replicas).
        learning_rate: RMSprop learning rate at `reference_batch_size`.
        optimizer: "rmsprop" (the paper's; Keras `RMSprop`).
        shape_weight: weight of the shape-aware term for "unet-s" (1 = the paper); "unet"
            ignores it.
        e_mode: how E is computed, "graph" (keras.ops, XLA, any backend, multi-replica) or
            "py_function" (the TensorFlow host reference; one replica, no XLA).
        shape_weighting: "fixed" (w = `shape_weight`) or "balanced" (w = `shape_weight` times
            the batch's log loss / shape term, so both terms are equally large); see
            `vertseg_tf.losses.ShapeAwareLoss`.
        e_per: "image" (E of Eq. 4, one value per patch) or "pixel" (each mismatched pixel
            weighted by its own ground-truth distance).
        shape_warmup_epochs: train this many epochs on the log loss alone before the shape
            term starts ("unet-s"); the best checkpoint is chosen among the later epochs.
        lr_schedule: "constant", "cosine" (cosine decay to 0 over the whole run) or "step"
            (the rate times `lr_step_factor` every `lr_step_epochs` epochs).
        lr_step_epochs: epochs between two steps of the "step" schedule.
        lr_step_factor: the "step" schedule's factor, in (0, 1].
        model_selection: the weights `model.keras` holds at the end: "last" (the last epoch)
            or "best" (the epoch with the lowest validation loss; the training loss without
            validation data).
        seed: seed of the weights' initialisation and of the data order.
        loop: "custom" (TensorFlow loop with GradientTape) or "fit" (`model.fit`; also under
            `KERAS_BACKEND=jax`).
        strategy: "default" (one device), "mirrored" (all local GPUs, else all logical CPUs)
            or "multiworker" (`MultiWorkerMirroredStrategy` from `TF_CONFIG`).
        deterministic: enable TensorFlow's op determinism, so equal seeds give equal weights
            and a resumed run equals an uninterrupted one (fit loop: when it resumes from an
            epoch-end backup).
        checkpoint_every_steps: checkpoint after this many steps (custom loop: a
            `tf.train.CheckpointManager` checkpoint; fit loop: the `BackupAndRestore` state,
            from which Keras repeats the whole interrupted epoch), and at every epoch end;
            0 checkpoints at epoch ends only.
        keep_checkpoints: custom loop: number of recent checkpoints kept (the best is kept
            besides); the fit loop keeps the last and the best weights.
        validation_fraction: share of the training images held out for validation when the
            dataset has no "val" split (chosen by image id, independent of the seed).
        augment: cut the training patches with the 45-patch scale x rotation grid.
        augment_mirror: reflect a seeded half of the training patches left to right (with
            their masks, distance maps, contours and affines), so the network learns patients
            facing left and right alike; off in the paper's protocol, whose films all face
            one way.
        max_train_patches: use at most this many training patches (a seeded choice); 0 = all.
        mixed_precision: "none" or "bfloat16" (Keras "mixed_bfloat16" policy).
        scale_lr: scale the learning rate linearly with `batch_size / reference_batch_size`.
        reference_batch_size: the batch size `learning_rate` is meant for.
        jit_compile: compile the training step with XLA (not with e_mode "py_function", nor
            under `deterministic` on TensorFlow, which has no deterministic XLA max-pool
            gradient).
        synthetic_images: images of the embedded synthetic dataset used when no dataset is
            given.
        synthetic_size: "small" (about 512 px) or "full" (1500-2500 px) synthetic images.

    Example:
        >>> config = TRAIN_PRESETS["paper"]
        >>> (config.optimizer, config.batch_size, config.epochs)
        ('rmsprop', 25, 30)
        >>> TrainConfig.from_dict(config.to_dict()) == config
        True
    """

    method: str = "unet-s"
    model: str = "paper"
    epochs: int = 30
    batch_size: int = 25
    learning_rate: float = 0.001
    optimizer: str = "rmsprop"
    shape_weight: float = 1.0
    e_mode: str = "graph"
    shape_weighting: str = "fixed"
    e_per: str = "image"
    shape_warmup_epochs: int = 0
    lr_schedule: str = "constant"
    lr_step_epochs: int = 10
    lr_step_factor: float = 0.5
    model_selection: str = "last"
    seed: int = 0
    loop: str = "custom"
    strategy: str = "default"
    deterministic: bool = False
    checkpoint_every_steps: int = 500
    keep_checkpoints: int = 3
    validation_fraction: float = 0.1
    augment: bool = True
    augment_mirror: bool = False
    max_train_patches: int = 0
    mixed_precision: str = "none"
    scale_lr: bool = False
    reference_batch_size: int = 25
    jit_compile: bool = True
    synthetic_images: int = 296
    synthetic_size: str = "small"

    def __post_init__(self):
        choices = {
            "method": METHODS,
            "model": MODEL_PRESET_NAMES,
            "optimizer": _OPTIMIZERS,
            "e_mode": E_MODES,
            "shape_weighting": WEIGHTINGS,
            "e_per": E_PER,
            "lr_schedule": LR_SCHEDULES,
            "model_selection": MODEL_SELECTIONS,
            "loop": LOOPS,
            "strategy": STRATEGIES,
            "mixed_precision": MIXED_PRECISION,
            "synthetic_size": _SYNTHETIC_SIZES,
        }
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "bool" and not isinstance(value, bool):
                raise ConfigError(
                    f"TrainConfig.{field.name}: expected true or false, got {value!r}"
                )
            if field.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"TrainConfig.{field.name}: expected an integer, got {value!r}")
            if field.type == "float":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigError(f"TrainConfig.{field.name}: expected a number, got {value!r}")
                object.__setattr__(self, field.name, float(value))
            if field.name in choices and value not in choices[field.name]:
                raise ConfigError(
                    f"TrainConfig.{field.name}: expected one of "
                    f"{', '.join(choices[field.name])}, got {value!r}"
                )
        for name in ("epochs", "batch_size", "keep_checkpoints", "reference_batch_size",
                     "synthetic_images", "lr_step_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainConfig.{name}: expected >= 1, got {getattr(self, name)}")
        for name in ("checkpoint_every_steps", "max_train_patches", "shape_warmup_epochs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"TrainConfig.{name}: expected >= 0, got {getattr(self, name)}")
        if self.method == "unet-s" and self.e_mode == "py_function" and self.strategy != "default":
            raise ConfigError(
                f"TrainConfig.e_mode: 'py_function' computes E on the host and cannot run under "
                f"the {self.strategy!r} strategy's replicas; use e_mode 'graph' (the in-graph E "
                "that scales)"
            )
        if not 0.0 < self.learning_rate < float("inf"):
            raise ConfigError(f"TrainConfig.learning_rate: expected > 0, got {self.learning_rate}")
        if not 0.0 < self.lr_step_factor <= 1.0:
            raise ConfigError(
                f"TrainConfig.lr_step_factor: expected 0 < value <= 1, got {self.lr_step_factor}"
            )
        if not 0.0 <= self.shape_weight < float("inf"):
            raise ConfigError(f"TrainConfig.shape_weight: expected >= 0, got {self.shape_weight}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"TrainConfig.validation_fraction: expected 0 <= value < 1, got "
                f"{self.validation_fraction}"
            )

    @property
    def is_unet(self) -> bool:
        """True for the deep methods ("unet", "unet-s"), False for the ASM baselines."""
        return self.method in ("unet", "unet-s")

    @property
    def loss_weight(self) -> float:
        """Weight of the shape-aware term in the loss: `shape_weight` for "unet-s", else 0."""
        return self.shape_weight if self.method == "unet-s" else 0.0

    @property
    def first_selectable_epoch(self) -> int:
        """The first 1-based epoch that may be the "best" checkpoint: after the shape term's
        warm-up, since validation losses without the term are not comparable to those with it."""
        return self.shape_warmup_epochs + 1 if self.method == "unet-s" else 1

    @property
    def loss_options(self) -> dict[str, Any]:
        """The keyword arguments of `ShapeAwareLoss` / `shape_aware_loss` for "unet-s"."""
        return {
            "weight": self.shape_weight,
            "e_mode": self.e_mode,
            "e_per": self.e_per,
            "weighting": self.shape_weighting,
            "warmup_epochs": self.shape_warmup_epochs,
        }

    @property
    def use_xla(self) -> bool:
        """XLA for the TensorFlow training step: `jit_compile`, unless E runs on the host
        (e_mode "py_function") or op determinism is on (TensorFlow has no deterministic XLA
        max-pooling gradient)."""
        host_e = self.method == "unet-s" and self.e_mode == "py_function"
        return self.jit_compile and not host_e and not self.deterministic

    @property
    def effective_learning_rate(self) -> float:
        """`learning_rate`, times `batch_size / reference_batch_size` when `scale_lr`."""
        if self.scale_lr:
            return self.learning_rate * self.batch_size / self.reference_batch_size
        return self.learning_rate

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (validated again); unknown names raise `ConfigError`."""
        _check_names(changes, "TrainConfig")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON/TOML-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "TrainConfig") -> TrainConfig:
        """Build a config from a dict; missing fields take the defaults.

        Raises:
            ConfigError: an unknown field or a bad value (naming `source`).
        """
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a table of settings")
        _check_names(values, source)
        try:
            return cls(**values)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None


def _check_names(values: dict[str, Any], source: str) -> None:
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}")


def load_config(path) -> TrainConfig:
    """Read a training config from a TOML file (the format of `training/*.toml`).

    Args:
        path: the `.toml` file; its top-level keys are `TrainConfig` fields.

    Returns:
        The config; fields the file leaves out take the `TrainConfig` defaults.

    Raises:
        ConfigError: an unreadable file, invalid TOML, an unknown key or a bad value.

    Example:
        >>> config = load_config("training/demo.toml")  # doctest: +SKIP
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: not a regular file; expected a .toml config")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config ({error.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not usable TOML: arrays or tables nested too deeply") from None
    return TrainConfig.from_dict(values, source=str(path))


def _cpu_preset(**fields) -> TrainConfig:
    """A preset sized for a CPU: without XLA, which on the CPU makes this model's training step
    2-3x slower (benchmarks/train_step.py); the presets meant for a GPU keep it."""
    return TrainConfig(jit_compile=False, **fields)


# The CPU presets keep the paper's batch of 25 and learning rate 0.001 unless they say otherwise.
TRAIN_PRESETS: dict[str, TrainConfig] = {
    # The paper: UNet of section 3.1, RMSprop, batch 25, 30 epochs, 45 patches per vertebra.
    "paper": TrainConfig(),
    # Minutes on a 2-core CPU: base width 8 on 40 synthetic images (about 3,000 patches).
    "demo": _cpu_preset(
        model="demo",
        epochs=6,
        checkpoint_every_steps=100,
        validation_fraction=0.2,
        synthetic_images=40,
    ),
    # Between demo and paper, for the shape-term study on a CPU: base width 16 (four times the
    # demo's compute per patch), twice the demo's images, 12 epochs, the best validation epoch.
    "study": _cpu_preset(
        model="study",
        epochs=12,
        model_selection="best",
        checkpoint_every_steps=200,
        validation_fraction=0.2,
        synthetic_images=80,
    ),
    # The shipped pretrained model (vertseg_tf.pretrained): base width 12 on synthetic data,
    # half the patches mirrored (both facings), a seeded 13,500-patch subset of the 45-patch
    # grid per epoch budget; sized so UNet and UNet-S each train in about 20-25 minutes on a
    # shared 2-core CPU. Trained with --dataset on a generated set (training/README.md).
    "pretrained": _cpu_preset(
        model="cpu",
        epochs=2,
        checkpoint_every_steps=100,
        validation_fraction=0.1,
        augment_mirror=True,
        max_train_patches=13500,
        synthetic_images=150,
    ),
    # Seconds: the smallest network on 100 patches, for tests and CI.
    "smoke": _cpu_preset(
        model="smoke",
        epochs=2,
        batch_size=10,
        learning_rate=0.003,
        checkpoint_every_steps=5,
        keep_checkpoints=2,
        validation_fraction=0.25,
        max_train_patches=100,
        synthetic_images=8,
    ),
}


LOCATOR_PRESETS: dict[str, TrainConfig] = {
    # Seconds: a 64-px canvas and width 4 on 8 synthetic films, for tests and CI.
    "smoke": _cpu_preset(
        method="locator", model="smoke", epochs=2, batch_size=4, learning_rate=0.003,
        validation_fraction=0.25, synthetic_images=8,
    ),
    # About 10 minutes on an idle 2-core CPU (an hour when it is shared): a 256-px canvas,
    # width 8, on 960 films (720 for training), the rate halved every 12 epochs
    # (training/locator_demo.toml).
    "demo": _cpu_preset(
        method="locator", model="demo", epochs=36, batch_size=8, learning_rate=0.001,
        lr_schedule="step", lr_step_epochs=12, lr_step_factor=0.5,
        validation_fraction=0.1, synthetic_images=960,
    ),
    # A GPU: a 512-px canvas, width 16, on the full-size synthetic films.
    "paper": TrainConfig(
        method="locator", model="paper", epochs=100, batch_size=16, learning_rate=0.001,
        validation_fraction=0.1, synthetic_images=296, synthetic_size="full",
    ),
}
"""The locator's presets (`vertseg-tf-train --method locator --preset NAME`)."""
