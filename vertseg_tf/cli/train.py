"""`vertseg-tf train` (also `vertseg-tf-train`): UNet / UNet-S training or an ASM fit."""

from __future__ import annotations

import argparse

from vertseg_tf.cli.common import Command, add_workers_argument
from vertseg_tf.errors import ConfigError

__all__ = ["COMMANDS"]


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from vertseg_tf.channels import E_MODES
    from vertseg_tf.training.config import (
        LOOPS,
        METHODS,
        MIXED_PRECISION,
        STRATEGIES,
        TRAIN_PRESETS,
    )

    parser.add_argument(
        "--dataset", metavar="DIR",
        help="native dataset folder (default: the embedded synthetic dataset, generated and "
        "cached on first use)",
    )
    parser.add_argument("--method", choices=METHODS, help="what to train (default: unet-s)")
    parser.add_argument(
        "--preset", choices=tuple(TRAIN_PRESETS),
        help="built-in config, the same as training/<preset>.toml (default: demo)",
    )
    parser.add_argument("--config", metavar="FILE.toml", help="config file (see training/)")
    parser.add_argument("--epochs", type=int, help="passes over the training patches")
    parser.add_argument("--batch-size", type=int, help="patches per step (paper: 25)")
    parser.add_argument("--lr", type=float, help="RMSprop learning rate")
    parser.add_argument("--scale-lr", action="store_true",
                        help="scale the learning rate by batch size / reference batch size (25)")
    parser.add_argument("--shape-weight", type=float, help="weight of the shape term (unet-s)")
    parser.add_argument("--e-mode", choices=E_MODES, help="how E is computed")
    parser.add_argument("--shape-weighting", choices=("fixed", "balanced"),
                        help="fixed w, or w that makes the shape term as large as the log loss")
    parser.add_argument("--e-per", choices=("image", "pixel"),
                        help="E per image (Eq. 4) or each pixel's own ground-truth distance")
    parser.add_argument("--shape-warmup", type=int, metavar="K",
                        help="train K epochs on the log loss alone before the shape term")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine", "step"),
                        help="learning-rate schedule (step: --lr-step-factor every "
                        "--lr-step-epochs epochs)")
    parser.add_argument("--lr-step-epochs", type=int, help="epochs between steps (10)")
    parser.add_argument("--lr-step-factor", type=float, help="factor of each step (0.5)")
    parser.add_argument("--model-selection", choices=("last", "best"),
                        help="model.keras holds the last epoch or the lowest validation loss")
    parser.add_argument("--seed", type=int, help="seed of the weights and the data order")
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="run folder (default: runs/<preset>-<method>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing RUN_DIR")
    parser.add_argument("--loop", choices=LOOPS,
                        help="custom TensorFlow loop or model.fit (any Keras backend)")
    parser.add_argument("--strategy", choices=STRATEGIES, help="tf.distribute strategy")
    parser.add_argument("--deterministic", action="store_true",
                        help="TensorFlow op determinism: equal seeds give equal weights")
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION,
                        help="mixed bfloat16 compute (float32 weights and loss)")
    parser.add_argument("--augment-mirror", action=argparse.BooleanOptionalAction, default=None,
                        help="reflect half the training patches left to right (facing both ways)")
    parser.add_argument("--cache-dir", metavar="DIR", help="patch cache folder")
    add_workers_argument(parser)


_TRAIN_OVERRIDES = {
    "method": "method",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "shape_weight": "shape_weight",
    "e_mode": "e_mode",
    "shape_weighting": "shape_weighting",
    "e_per": "e_per",
    "shape_warmup": "shape_warmup_epochs",
    "lr_schedule": "lr_schedule",
    "lr_step_epochs": "lr_step_epochs",
    "lr_step_factor": "lr_step_factor",
    "model_selection": "model_selection",
    "seed": "seed",
    "loop": "loop",
    "strategy": "strategy",
    "mixed_precision": "mixed_precision",
    "augment_mirror": "augment_mirror",
}


def _locator_preset(name: str):
    from vertseg_tf.training.config import LOCATOR_PRESETS

    if name not in LOCATOR_PRESETS:
        raise ConfigError(f"--preset {name}: the locator's presets are "
                          f"{', '.join(LOCATOR_PRESETS)}")
    return LOCATOR_PRESETS[name]


def _train_config(args: argparse.Namespace):
    from vertseg_tf.training import TRAIN_PRESETS, load_config, read_run_config

    if args.config and args.preset:
        raise ConfigError("--config and --preset exclude each other")
    if args.config:
        config = load_config(args.config)
    elif args.preset and args.method == "locator":
        config = _locator_preset(args.preset)
    elif args.preset:
        config = TRAIN_PRESETS[args.preset]
    elif args.resume and args.out:
        config = read_run_config(args.out)
    else:
        config = _locator_preset("demo") if args.method == "locator" else TRAIN_PRESETS["demo"]
    changes = {
        field: getattr(args, option)
        for option, field in _TRAIN_OVERRIDES.items()
        if getattr(args, option) is not None
    }
    for flag in ("deterministic", "scale_lr"):
        if getattr(args, flag):
            changes[flag] = True
    return config.replace(**changes)


def _train(args: argparse.Namespace) -> int:
    from vertseg_tf.training import train

    config = _train_config(args)
    out = args.out or f"runs/{args.preset or 'demo'}-{config.method}"
    result = train(
        config, args.dataset, out, resume=args.resume, overwrite=args.overwrite,
        cache_dir=args.cache_dir, workers=args.workers,
    )
    final = result.get("final", {})
    shown = ", ".join(
        f"{name} {final[name]:.4f}" for name in ("loss", "val_loss", "val_dice") if name in final
    )
    trained = config.is_unet or config.method == "locator"
    done = f"trained {config.method} for {result['epochs']} epoch(s)" if trained else (
        f"fitted {config.method} on {result['n_training_patches']} patches"
    )
    print(
        f"{done} in {result['wall_time_s']:.0f} s{': ' + shown if shown else ''}; "
        f"run folder: {out}"
    )
    return 0


TRAIN = Command(
    "train",
    "Train UNet / UNet-S (or fit an ASM baseline) on a dataset's patches; also vertseg-tf-train.",
    "vertseg-tf-train --preset demo --method unet-s\n"
    "vertseg-tf-train --preset paper --method unet-s --dataset DIR --out runs/paper-unet-s\n"
    "vertseg-tf-train --method locator --preset demo --dataset DIR --out runs/locator\n"
    "KERAS_BACKEND=jax vertseg-tf-train --preset paper --loop fit --dataset DIR \\\n"
    "    --mixed-precision bfloat16 --batch-size 250 --scale-lr --out runs/paper-jax",
    _train_arguments,
    _train,
)

COMMANDS = (TRAIN,)
