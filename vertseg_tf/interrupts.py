"""Ctrl-C that no library can swallow: remember the interrupt, and refuse to commit results.

Python turns SIGINT into `KeyboardInterrupt` wherever the main thread happens to be. When that
is inside a callback Python calls on its own (a garbage-collection callback such as
TensorFlow's `_xla_gc_callback`, a `__del__`), the exception is printed as "Exception ignored
in ..." and dropped, and the interrupted command would finish and exit 0.

`noticing_interrupts()` installs a SIGINT handler that also records the interrupt. Every
atomic write (`vertseg_tf.atomic`) calls `raise_if_interrupted()` before it renames its result
into place, so an interrupted command leaves nothing half written and still stops with
`KeyboardInterrupt`, however the first one was lost. The command line runs every command
inside `noticing_interrupts()`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["interrupted", "noticing_interrupts", "raise_if_interrupted"]

_received = False


def _on_interrupt(signum, frame) -> None:
    global _received
    _received = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def noticing_interrupts() -> Iterator[None]:
    """Record every SIGINT received inside the block (see the module docstring).

    Outside the main thread (where signal handlers cannot be installed) the block runs
    unchanged. The previous handler is restored afterwards and the record cleared.

    Example:
        >>> with noticing_interrupts():
        ...     export_run("runs/demo", "models/vertseg", 1)  # doctest: +SKIP
    """
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received = False
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _received = False


def interrupted() -> bool:
    """Whether a SIGINT arrived inside the current `noticing_interrupts()` block."""
    return _received


def raise_if_interrupted() -> None:
    """Raise `KeyboardInterrupt` when an interrupt was received, even one swallowed since."""
    if _received:
        raise KeyboardInterrupt
