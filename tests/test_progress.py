import io

import pytest

from vertseg_tf import progress as progress_module
from vertseg_tf.progress import Progress, format_duration, progress_callback


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    return now


def test_lines_are_throttled_and_rate_counts_from_the_first_call(clock):
    stream = io.StringIO()
    report = Progress("train", unit="steps", interval_s=2.0, stream=stream)
    for step, seconds in ((11, 1.0), (12, 2.0), (13, 3.0), (20, 10.0)):
        clock[0] = 100.0 + seconds
        report(step, 20, {"loss": 0.5})
    # step 11 (1 s) is within the interval; step 12 (2 s): 2 steps since step 10 -> 1 step/s
    assert stream.getvalue().splitlines() == [
        "train: 12/20, ETA 8 s, 1.0 steps/s, 2 s elapsed, loss 0.5000",
        "train: 20/20, ETA 0 s, 1.0 steps/s, 10 s elapsed, loss 0.5000",
    ]


def test_quiet_under_silences_quick_jobs_even_at_the_end(clock):
    stream = io.StringIO()
    report = Progress("validate", quiet_under_s=1.0, stream=stream)
    clock[0] = 100.5
    report(3, 3)
    assert stream.getvalue() == ""


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.4, 60, 185, 3723)] == [
        "0 s", "59 s", "1m00s", "3m05s", "1h02m03s"
    ]


def test_progress_callback_resolves_the_three_argument_forms():
    def given(done, total):
        return None

    assert progress_callback(given, "x") is given
    assert progress_callback(False, "x") is None and progress_callback(None, "x") is None
    created = progress_callback(True, "synth", "images")
    assert isinstance(created, Progress) and created.label == "synth" and created.unit == "images"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _frames(text: str) -> list[str]:
    """What a terminal shows after each carriage return, blank frames dropped."""
    return [frame for frame in text.replace("\n", "\r").split("\r") if frame.strip()]


def test_a_terminal_gets_one_bar_updated_in_place_with_rate_and_values():
    stream = _Terminal()
    report = Progress("train", unit="steps", stream=stream)
    assert report.uses_bar
    for step in range(1, 21):
        report(step, 20, {"loss": 1.0 / step, "E": 0.25})
    text = stream.getvalue()
    # one bar: every redraw starts with a carriage return, and only the closed bar ends a line
    assert text.count("\n") == 1 and text.endswith("\n") and text.count("\r") >= 2
    last = _frames(text)[-1]
    assert last.startswith("train: 100%|") and " 20/20 [" in last
    assert last.endswith(" steps/s, loss 0.0500, E 0.2500]")


def test_write_puts_a_line_above_the_open_bar_and_the_bar_continues():
    stream = _Terminal()
    report = Progress("train", unit="steps", stream=stream)
    report(1, 4)
    report.write("epoch 1/2: loss 0.5000")
    report(4, 4)
    lines = stream.getvalue().split("\n")
    assert lines[0].endswith("epoch 1/2: loss 0.5000")
    assert _frames(lines[1])[-1].startswith("train: 100%|") and lines[2] == ""


def test_a_bar_for_work_done_within_quiet_under_shows_nothing():
    stream = _Terminal()
    report = Progress("validate", quiet_under_s=30.0, stream=stream)
    for done in (1, 2, 3):
        report(done, 3)
    assert stream.getvalue() == ""


def test_a_resumed_bar_starts_at_the_first_reported_item():
    stream = _Terminal()
    report = Progress("train", unit="steps", stream=stream)
    report(501, 1000)
    report.close()
    assert " 501/1000 [" in _frames(stream.getvalue())[-1]


@pytest.mark.parametrize("stream_class", [io.StringIO, _Terminal])
def test_silenced_turns_off_bars_lines_and_written_lines(stream_class):
    stream = stream_class()
    report = Progress("train", stream=stream)
    with progress_module.silenced():
        assert not progress_module.is_enabled()
        report(1, 2)
        report.write("epoch 1/1")
        report(2, 2)
    assert progress_module.is_enabled() and stream.getvalue() == ""


def test_close_all_ends_open_bars_on_a_new_line():
    stream = _Terminal()
    report = Progress("synth", stream=stream)
    report(3, 10)
    progress_module.close_all()
    assert stream.getvalue().endswith("\n") and " 3/10 [" in _frames(stream.getvalue())[-1]


def test_keras_verbose_follows_stdout_and_quiet(monkeypatch):
    monkeypatch.setattr(progress_module.sys, "stdout", _Terminal())
    assert progress_module.keras_verbose() == 1
    monkeypatch.setattr(progress_module.sys, "stdout", io.StringIO())
    assert progress_module.keras_verbose() == 2
    with progress_module.silenced():
        assert progress_module.keras_verbose() == 0


def test_a_status_line_goes_above_another_progress_bar():
    stream = _Terminal()
    report = Progress("train", unit="steps", stream=stream)
    report(1, 2)
    progress_module.write("[unet] running", stream)
    report(2, 2)
    lines = stream.getvalue().split("\n")
    assert lines[0].endswith("[unet] running") and "\r" in lines[0]
    assert _frames(lines[1])[-1].startswith("train: 100%|")


def test_a_terminal_that_reports_no_width_still_gets_a_readable_bar():
    """`script` without a terminal, some CI runners: a pty whose size is 0 x 0."""
    import os
    import select

    leader, follower = os.openpty()  # a new pty has no window size set: 0 columns
    assert os.get_terminal_size(follower).columns == 0
    with open(follower, "w", encoding="utf-8", closefd=True) as terminal:
        report = Progress("synth", unit="images", stream=terminal)
        for done in range(1, 5):
            report(done, 10)
        report.close()
    chunks = []  # the pty hands the output over in pieces: read until it has no more
    while select.select([leader], [], [], 0.5)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # Linux: EIO once the follower side is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    shown = b"".join(chunks).decode("utf-8")
    assert "synth" in shown and "4/10" in shown
