"""Running an exported SavedModel as a serving system would, for the parity checks of export.

A serving system loads the SavedModel with TensorFlow alone: no vertseg-tf code, no registered
Keras objects. `signature_outputs_in_fresh_process` does the same in a new Python process
whose import path does not reach vertseg_tf (and fails if it was imported anyway).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vertseg_tf.errors import VertsegError

__all__ = [
    "ParityError",
    "saved_model_outputs_in_fresh_process",
    "saved_model_server",
    "signature_outputs_in_fresh_process",
]


class ParityError(VertsegError):
    """An exported model disagrees with the Keras model beyond its tolerance."""


_FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    folder, inputs, outputs, signature, argument = sys.argv[1:6]
    function = tf.saved_model.load(folder).signatures[signature]
    results = {}
    with np.load(inputs) as given:
        for key in given.files:
            result = function(**{argument: tf.constant(given[key])})
            for name, value in result.items():
                value = value.numpy()
                results[f"{key}.{name}"] = value.astype(str) if value.dtype == object else value
    np.savez(outputs, **results)
    if any(name.split(".")[0] == "vertseg_tf" for name in sys.modules):
        raise SystemExit("vertseg_tf was imported")
    """
)


def saved_model_outputs_in_fresh_process(
    folder, patches: np.ndarray, signature: str = "serving_default"
) -> dict[str, np.ndarray]:
    """Run a SavedModel signature in a new Python process that imports only TensorFlow.

    This is what a serving system sees: no vertseg-tf code, no registered Keras objects.

    Args:
        folder: the SavedModel (version) folder.
        patches: (N, 64, 64, 1) float32 input of the signature's `patch`.
        signature: the signature to call.

    Returns:
        The signature's outputs by name.

    Raises:
        ParityError: the process failed (its stderr tail is in the message).
    """
    return signature_outputs_in_fresh_process(folder, [patches], signature, "patch")[0]


def signature_outputs_in_fresh_process(
    folder, inputs: Sequence[np.ndarray], signature: str, argument: str
) -> list[dict[str, np.ndarray]]:
    """`saved_model_outputs_in_fresh_process` for any signature of one float32 input: one
    call per array of `inputs` (which may differ in shape), all in one new process.

    Returns:
        The outputs of each call by name (text outputs as numpy str arrays).
    """
    with tempfile.TemporaryDirectory(prefix="vertseg-parity-") as work:
        given, outputs = Path(work) / "inputs.npz", Path(work) / "outputs.npz"
        np.savez(given, *[np.asarray(array, dtype=np.float32) for array in inputs])
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # The child runs in `work`, so a relative folder would name another place there.
        completed = subprocess.run(
            [sys.executable, "-c", _FRESH_PROCESS_SCRIPT, str(Path(folder).resolve()), str(given),
             str(outputs), signature, argument],
            cwd=work, env=env, capture_output=True, text=True, check=False,
        )
        if completed.returncode != 0:
            tail = completed.stderr.strip().splitlines()[-3:]
            raise ParityError(f"{folder}: loading the SavedModel in a fresh process failed: "
                              + " | ".join(tail))
        with np.load(outputs) as result:
            calls: list[dict[str, np.ndarray]] = [{} for _ in inputs]
            for key in result.files:
                number, name = key.split(".", 1)
                calls[int(number.removeprefix("arr_"))][name] = result[key]
            return calls


def saved_model_server(folder: Path, fresh_process: bool):
    """`serve(inputs, signature, argument) -> outputs per input` of the SavedModel in `folder`:
    each serve in a fresh process (as a serving system loads it), or loaded once here."""
    if fresh_process:
        def serve(inputs, signature: str, argument: str) -> list[dict[str, np.ndarray]]:
            return signature_outputs_in_fresh_process(folder, inputs, signature, argument)

        return serve
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))

    def serve_here(inputs, signature: str, argument: str) -> list[dict[str, np.ndarray]]:
        calls = []
        for array in inputs:
            outputs = loaded.signatures[signature](**{argument: tf.constant(array, tf.float32)})
            calls.append({name: value.numpy().astype(str) if value.dtype == tf.string
                          else value.numpy() for name, value in outputs.items()})
        return calls

    return serve_here
