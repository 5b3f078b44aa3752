"""Progress on stderr for long work: a tqdm bar on a terminal, periodic lines in a log.

On a terminal each long step is one bar that updates in place, with the rate, the ETA and
optional values (training's loss and E):

    train:  30%|███       | 120/400 [00:40<01:33, 3.00 steps/s, loss 0.4123, E 0.0871]

When stderr is not a terminal (a log file, a pipe, CI) the same information comes as one line
at most every `interval_s` seconds, always one for the last item:

    patches train: 40/296, ETA 1m05s, 3.9 images/s, 10 s elapsed
    train: 120/4000, ETA 21m33s, 3.0 steps/s, 40 s elapsed, loss 0.4123, E 0.0871

`set_enabled(False)` (the CLI's `--quiet`) silences both. Library functions take
`progress=True | False | callable(done, total)`; `progress_callback` turns that into a callable
(or None) so each function handles the three cases the same way.
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = [
    "Progress",
    "close_all",
    "format_duration",
    "is_enabled",
    "keras_verbose",
    "progress_callback",
    "set_enabled",
    "silenced",
    "write",
]

_BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
    "[{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
)
_state = {"enabled": True}
_open_bars: weakref.WeakSet[Progress] = weakref.WeakSet()


def set_enabled(enabled: bool) -> None:
    """Turn every progress bar and line on or off (off is the CLI's `--quiet`)."""
    _state["enabled"] = bool(enabled)


def is_enabled() -> bool:
    """Whether progress is shown (True unless `set_enabled(False)`)."""
    return _state["enabled"]


@contextmanager
def silenced() -> Iterator[None]:
    """No progress inside the block; the previous setting comes back after it.

    Example:
        >>> with silenced():
        ...     Progress("synth")(1, 1)
    """
    previous = is_enabled()
    set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


def close_all() -> None:
    """End every open bar on its current state, so a following message starts on a new line."""
    for progress in list(_open_bars):
        progress.close()


def write(line: str, stream: TextIO | None = None) -> None:
    """Print a status line (a step starting, an epoch's summary) on stderr, above any open bar.

    Nothing is printed when progress is off (`--quiet`).

    Example:
        >>> write("reproduce: training UNet-S")
    """
    if not is_enabled():
        return
    stream = stream if stream is not None else sys.stderr
    if any(progress.stream is stream for progress in _open_bars):
        from tqdm import tqdm

        tqdm.write(line, file=stream)
    else:
        print(line, file=stream, flush=True)


def keras_verbose() -> int:
    """The `verbose=` for Keras `fit`: its own bar on a terminal, a line per epoch in a log.

    Keras prints to stdout, so stdout decides; 0 when progress is off.
    """
    if not is_enabled():
        return 0
    return 1 if _is_terminal(sys.stdout) else 2


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


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _reports_no_width(stream: TextIO) -> bool:
    """Whether `stream` is a terminal whose size is 0 x 0 (a pty nobody sized: `script`
    without a terminal, some CI runners), on which tqdm's own width would draw nothing."""
    try:
        return os.get_terminal_size(stream.fileno()).columns == 0
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """A `progress(done, total, values)` callable: a tqdm bar on a terminal, lines otherwise.

    The rate counts the items done since the first call (a resumed job starting at item 500
    is not credited with the first 499), and the ETA is the items left over that rate. The bar
    closes itself at the last item; `write` prints a line above an open bar.

    Args:
        label: what is progressing, printed first ("synth", "patches train", "train").
        unit: plural name of the items for the rate ("images" gives "3.9 images/s").
        interval_s: without a terminal, at most one line per this many seconds, except the
            last item's line.
        quiet_under_s: show nothing at all for work finished within this many seconds.
        stream: where progress goes (default `sys.stderr` at the time of the first call).
        bar: True for a bar, False for lines; None (default) picks a bar on a terminal.

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
        bar: bool | None = None,
    ):
        self.label, self.unit = label, unit
        self.interval_s, self.quiet_under_s = interval_s, quiet_under_s
        self._stream = stream
        self._want_bar = bar
        self.started = self.last = time.monotonic()
        self._first_done: int | None = None
        self._bar: tqdm | None = None

    @property
    def stream(self) -> TextIO:
        """The stream progress is written to."""
        return self._stream if self._stream is not None else sys.stderr

    @property
    def uses_bar(self) -> bool:
        """Whether this progress draws a bar (else it prints lines)."""
        return self._want_bar if self._want_bar is not None else _is_terminal(self.stream)

    def __call__(
        self,
        done: int,
        total: int,
        values: Mapping[str, float] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Report `done` of `total` items, with optional `values` appended (4 decimals)."""
        if not is_enabled():
            return
        if self._first_done is None:
            self._first_done = done - 1
        if self.uses_bar:
            self._update_bar(done, total, values, force)
        else:
            self._print_line(done, total, values, force)

    def write(self, line: str) -> None:
        """Print `line` (an epoch summary) above the open bar; nothing when progress is off."""
        write(line, self.stream)

    def close(self) -> None:
        """End the bar on its current state (a no-op for lines or a closed bar)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            _open_bars.discard(self)

    def _update_bar(self, done, total, values, force) -> None:
        if self._bar is None:
            from tqdm import tqdm  # here, not at the top: `vertseg-tf --help` stays quick

            no_width = _reports_no_width(self.stream)
            self._bar = tqdm(
                total=total,
                initial=self._first_done,
                desc=self.label,
                unit=f" {self.unit}",
                file=self.stream,
                delay=self.quiet_under_s,
                bar_format=_BAR_FORMAT,
                dynamic_ncols=not no_width,
                ncols=80 if no_width else None,
                mininterval=0.2,
                leave=True,
            )
            _open_bars.add(self)
        bar = self._bar
        bar.total = total
        if values:
            bar.set_postfix_str(_format_values(values), refresh=False)
        bar.update(done - bar.n)
        if done >= total:
            self.close()
        elif force:
            bar.refresh()

    def _print_line(self, done, total, values, force) -> None:
        now = time.monotonic()
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
            line += ", " + _format_values(values)
        print(line, file=self.stream, flush=True)


def _format_values(values: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.4f}" for name, value in values.items())


def progress_callback(
    progress: bool | Callable[[int, int], None] | None, label: str, unit: str = "items"
) -> Callable[[int, int], None] | None:
    """The callable behind a `progress=` argument: True shows progress, False/None nothing.

    Example:
        >>> report = progress_callback(True, "patches train", "images")
    """
    if callable(progress):
        return progress
    return Progress(label, unit=unit) if progress else None
