"""A quiet TensorFlow start-up, so that a command's first line on stderr is ours.

Importing TensorFlow prints a dozen lines from C++ before it can be told anything (absl's
"All log messages before absl::InitializeLog() ...", oneDNN, "Could not find cuda drivers",
CPU feature notes), and its first device query logs `failed call to cuInit` on a machine
without a GPU. `quiet_tensorflow_startup()`:

- sets `TF_CPP_MIN_LOG_LEVEL=3` (unless the user set it), which silences TensorFlow's C++ log
  from then on, `failed call to cuInit` included; Python exceptions are not affected;
- holds the process's stderr file descriptor (fd 2, where the C++ lines go) in a temporary
  file while `tensorflow` is being imported, whenever that happens, and replays what was held
  if the import fails, so a broken installation still shows why.

The CLI calls it unless `--verbose` is given; nothing else in the package does. After it,
`quiet_native_logs()` also holds stderr around the TFLite calls that print on their own.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["QUIET_ENVIRONMENT", "held_stderr", "quiet_native_logs", "quiet_tensorflow_startup"]

QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3"}
"""Environment set (where the user has not set it) before TensorFlow is first imported."""

_QUIET_MODULES = ("tensorflow",)
_state = {"quiet": False}


@contextmanager
def held_stderr() -> Iterator[None]:
    """Send fd 2 (C-level and Python stderr) to a temporary file inside the block.

    What the block wrote is dropped when it succeeds and written to stderr when it raises.
    Where fd 2 cannot be duplicated (a closed stderr) the block runs unchanged.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore(saved)
            held.seek(0)
            os.write(2, held.read())
            raise
        _restore(saved)


def _restore(saved: int) -> None:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


class _HeldStderrLoader(importlib.abc.Loader):
    """Runs the real loader's `exec_module` with stderr held; delegates everything else."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            with held_stderr():
                self._loader.exec_module(module)
        finally:
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds the top-level modules `names` with the other finders and wraps their loader."""

    def __init__(self, names: tuple[str, ...] = _QUIET_MODULES):
        self.names = names

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None:
            return spec
        spec.loader = _HeldStderrLoader(spec.loader)
        return spec


def quiet_tensorflow_startup() -> None:
    """Silence TensorFlow's start-up lines in this process (see the module docstring).

    Call it before TensorFlow is imported; once it is, only the log level still applies.
    Calling it again changes nothing.

    Example:
        >>> quiet_tensorflow_startup()  # doctest: +SKIP (changes this process's imports)
    """
    _state["quiet"] = True
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if not any(isinstance(finder, _QuietImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImportFinder())


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    """`held_stderr` once `quiet_tensorflow_startup` ran (the CLI without `--verbose`).

    For the few native calls that print on their own and ignore TensorFlow's log level: the
    TFLite converter's quantiser ("fully_quantize: 0, ...") and the interpreter's first tensor
    allocation ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU."). Elsewhere (a
    library user, `--verbose`) the block runs unchanged.
    """
    if not _state["quiet"]:
        yield
        return
    with held_stderr():
        yield
