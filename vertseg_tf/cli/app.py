"""`vertseg-tf app`: the local web page for clicking centres and reading the outlines."""

from __future__ import annotations

import argparse

from vertseg_tf.cli.common import Command
from vertseg_tf.errors import ConfigError

__all__ = ["COMMANDS", "load_locator", "locator_finder"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--model", default="pretrained",
        help="'pretrained' (default: the shipped model), a .keras file, a run folder, a "
             "SavedModel folder or a .tflite file",
    )
    source.add_argument(
        "--serving-url", metavar="URL",
        help="send the patches to TF Serving instead, e.g. "
             "http://127.0.0.1:8501/v1/models/vertseg",
    )
    parser.add_argument(
        "--locator", metavar="M",
        help="locator .keras file or run folder for the Find button (default: the shipped "
             "locator when this installation has one; without any, Find is hidden)",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-upload-mb", type=float, default=64.0, metavar="MB",
                        help="largest upload accepted (default 64)")


def load_locator(model: str | None = None):
    """The "find" function of the page, `find(image) -> {"centers", "labels", "confidences"}`
    for the levels found, from a `vertseg_tf.locate.Locator`.

    Args:
        model: a locator `.keras` file or run folder; None takes the locator shipped with
            vertseg-tf when this installation has one, else gives None (no "find" button).

    Raises:
        DataError: `model` is missing or not a locator.
    """
    from vertseg_tf.locate import Locator

    if model is None:
        try:
            from vertseg_tf.pretrained import load_pretrained_locator  # noqa: F401
        except ImportError:
            return None
    return locator_finder(Locator(model))


def locator_finder(locator):
    """`find(image)` for `create_app`: the centres, labels and confidences of the levels of
    C3-C7 a `vertseg_tf.locate.Locator` finds, top to bottom (missing levels, and C2 and T1,
    which the page does not segment, left out)."""
    from vertseg_tf.locate.heatmaps import SEGMENTED_LEVELS

    def find(image) -> dict:
        found = [level for level in locator.locate(image)
                 if level.found and level.label in SEGMENTED_LEVELS]
        return {"centers": [level.center for level in found],
                "labels": [level.label for level in found],
                "confidences": [level.confidence for level in found]}

    return find


def _run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from vertseg_tf.app.server import create_app
    except ImportError as error:
        raise ConfigError(f"the app needs the [app] extra: pip install 'vertseg-tf[app]' "
                          f"({error.name} is missing)") from None
    from vertseg_tf.deploy.inference import Segmenter
    from vertseg_tf.loading import load_model

    if args.serving_url:
        from vertseg_tf.deploy.serving import serving_predictor

        segmenter = Segmenter(serving_predictor(args.serving_url))
        segmenter.source = args.serving_url
    else:
        segmenter = load_model(args.model)
    app = create_app(segmenter, locator=load_locator(args.locator),
                     max_upload_mb=args.max_upload_mb)
    print(f"vertseg-tf app: model {segmenter.source}; open http://{args.host}:{args.port}/ "
          "(Ctrl+C stops)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


APP = Command(
    "app",
    "Start the local web page: open a film, click the centres, see outlines and read-outs.",
    "vertseg-tf app\n"
    "vertseg-tf app --model runs/demo/unet-s --port 8080\n"
    "vertseg-tf app --locator runs/locator\n"
    "vertseg-tf app --serving-url http://127.0.0.1:8501/v1/models/vertseg",
    _arguments,
    _run,
)

COMMANDS = (APP,)
