"""Line-based progress on stderr for long work: counts, rate, ETA and optional values.

One line at most every `interval_s` seconds, always one for the last item, e.g.

    patches train: 40/296, ETA 1m05s, 3.9 images/s, 10 s elapsed
    train: 120/4000, ETA 21m33s, 3.0 steps/s, 40 s elapsed, loss 0.4123, E 0.0871

Library functions take `progress=True | False | callable(done, total)`; `progress_callback`
turns that into a callable (or None) so each function handles the three cases the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

__all__ = ["Progress", "format_duration", "progress_callback"]


def format_duration(seconds: float) -> str:
    """`"42 s"` under a minute, else `"3m05s"` or `"1h02m03s"`.

    Example:
        >>> format_duration(185)
        '3m05s'
    """
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    """A `progress(done, total)` callable printing `label: done/total, ETA ...` lines.

    The rate counts the items done since the first call (a resumed job starting at item 500
    is not credited with the first 499), and the ETA is the items left over that rate.

    Args:
        label: what is progressing, printed first ("synth", "patches train", "train").
        unit: plural name of the items for the rate ("images" gives "3.9 images/s").
        interval_s: at most one line per this many seconds, except the last item's line.
        quiet_under_s: print nothing at all for work finished within this many seconds.
        stream: where lines go (default `sys.stderr` at the time of each call).

    Example:
        >>> report = Progress("synth", unit="images")
        >>> for done in range(1, 11):
        ...     report(done, 10)
    """

    def __init__(
        self,
        label: str,
        *,
        unit: str = "items",
        interval_s: float = 1.0,
        quiet_under_s: float = 0.0,
        stream: TextIO | None = None,
    ):
        self.label, self.unit = label, unit
        self.interval_s, self.quiet_under_s = interval_s, quiet_under_s
        self._stream = stream
        self.started = self.last = time.monotonic()
        self._first_done: int | None = None

    @property
    def stream(self) -> TextIO:
        """The stream lines are printed to."""
        return self._stream if self._stream is not None else sys.stderr

    def __call__(
        self,
        done: int,
        total: int,
        values: Mapping[str, float] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Report `done` of `total` items, with optional `values` appended (4 decimals)."""
        now = time.monotonic()
        if self._first_done is None:
            self._first_done = done - 1
        elapsed = now - self.started
        finished = force or done >= total
        if elapsed < self.quiet_under_s or (not finished and now - self.last < self.interval_s):
            return
        self.last = now
        rate = (done - self._first_done) / max(elapsed, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0.0
        line = (
            f"{self.label}: {done}/{total}, ETA {format_duration(eta)}, "
            f"{rate:.1f} {self.unit}/s, {format_duration(elapsed)} elapsed"
        )
        if values:
            line += "".join(f", {name} {value:.4f}" for name, value in values.items())
        print(line, file=self.stream, flush=True)


def progress_callback(
    progress: bool | Callable[[int, int], None] | None, label: str, unit: str = "items"
) -> Callable[[int, int], None] | None:
    """The callable behind a `progress=` argument: True prints lines, False/None reports nothing.

    Example:
        >>> report = progress_callback(True, "patches train", "images")
    """
    if callable(progress):
        return progress
    return Progress(label, unit=unit) if progress else None
