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
