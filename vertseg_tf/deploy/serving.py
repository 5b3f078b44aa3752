"""A TF Serving REST endpoint as a patch predictor, so `Segmenter` can use a deployed model.

The request is TF Serving's row format on the `serving_default` signature that
`vertseg-tf export` writes (input `patch`, output `probabilities`), as in
`export/example_request.json`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import numpy as np

from vertseg_tf.data.patches import PATCH_SIZE
from vertseg_tf.errors import DataError

__all__ = ["predict_url", "serving_predictor"]

_SIGNATURE = "serving_default"
_OUTPUT = "probabilities"


def predict_url(url: str) -> str:
    """The `:predict` address of a model URL.

    Example:
        >>> predict_url("http://127.0.0.1:8501/v1/models/vertseg")
        'http://127.0.0.1:8501/v1/models/vertseg:predict'
    """
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise DataError(url, "expected an http:// or https:// TF Serving model URL")
    return url if url.endswith(":predict") else url + ":predict"


def _probabilities(reply, url: str, count: int) -> np.ndarray:
    predictions = reply.get("predictions") if isinstance(reply, dict) else None
    if predictions is None:
        raise DataError(url, f"TF Serving reply has no 'predictions': {str(reply)[:200]}")
    if predictions and isinstance(predictions[0], dict):
        predictions = [row.get(_OUTPUT) for row in predictions]
    try:
        array = np.asarray(predictions, dtype=np.float32)
    except (TypeError, ValueError):
        array = np.zeros(0)
    expected = (count, PATCH_SIZE, PATCH_SIZE, 2)
    if array.shape != expected:
        raise DataError(url, f"TF Serving returned shape {array.shape}, expected {expected}")
    return array


def serving_predictor(url: str, timeout_s: float = 30.0) -> Callable[[np.ndarray], np.ndarray]:
    """A function (N, 64, 64, 1) float32 -> (N, 64, 64, 2) that asks TF Serving over REST.

    Args:
        url: the model's REST address, `http://HOST:8501/v1/models/NAME` (or with
            `/versions/V`, or ending in `:predict`).
        timeout_s: seconds to wait for one reply.

    Raises:
        DataError: (when called) the server cannot be reached, answers with an error, or
            returns something other than (N, 64, 64, 2) probabilities.

    Example:
        >>> predict = serving_predictor("http://127.0.0.1:8501/v1/models/vertseg")
        >>> Segmenter(predict).segment(image, centers)  # doctest: +SKIP
    """
    address = predict_url(url)

    def predict(patches: np.ndarray) -> np.ndarray:
        body = json.dumps({"signature_name": _SIGNATURE,
                           "instances": np.asarray(patches, dtype=np.float32).tolist()})
        request = urllib.request.Request(address, data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read()[:200].decode(errors="replace")
            raise DataError(address, f"TF Serving answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DataError(address, f"cannot reach TF Serving ({reason})") from None
        except json.JSONDecodeError:
            raise DataError(address, "TF Serving reply is not JSON") from None
        return _probabilities(reply, address, len(patches))

    return predict
