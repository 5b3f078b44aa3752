"""What the tests that run Python in a child process share: its environment and the script
prefix that keeps TensorFlow out of it."""

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

# Makes every `import tensorflow...` in the child fail, so a test proves a code path (the JAX or
# numpy backend, a GPU protocol for machines without TensorFlow) does not need it.
BLOCK_TENSORFLOW = """
import importlib.abc
import sys


class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"{name} is blocked in this test")
        return None


sys.meta_path.insert(0, BlockTensorFlow())
"""


def child_environment(*, cpu_only: bool = False, keep_tf_logs: bool = True, **variables: str):
    """This process's environment with the repository importable and `variables` set.

    `cpu_only` hides GPUs and drops an inherited `TF_CONFIG` (the child would otherwise try
    to join that multi-worker cluster); `keep_tf_logs=False` drops `TF_CPP_MIN_LOG_LEVEL`, for
    tests of what a user sees on stderr. `variables` are set last, so they win.
    """
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    if cpu_only:
        environment["CUDA_VISIBLE_DEVICES"] = ""
        environment.pop("TF_CONFIG", None)
    if not keep_tf_logs:
        environment.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return {**environment, **variables}
