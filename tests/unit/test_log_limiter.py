"""LogLimiter: a cause writes its burst, then is counted and summarised."""

from __future__ import annotations

import logging

import pytest

from tidelog.broker.log_limiter import LogLimiter


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_one_cause_writes_its_burst_then_one_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    limiter = LogLimiter(logging.getLogger("t"), clock, burst=3, interval_s=60)
    with caplog.at_level(logging.INFO, logger="t"):
        for i in range(1000):
            limiter.warning("bad_frame", "closing connection n=%d", i)
        limiter.warning("other", "a different cause is not held back")
        clock.now = 61
        limiter.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "closing connection n=0",
        "closing connection n=1",
        "closing connection n=2",
        "a different cause is not held back",
        "suppressed 997 similar log lines cause=bad_frame seconds=61",
    ]


def test_a_new_window_writes_again(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    limiter = LogLimiter(logging.getLogger("t"), clock, burst=1, interval_s=10)
    with caplog.at_level(logging.INFO, logger="t"):
        limiter.warning("c", "first")
        limiter.warning("c", "held")
        clock.now = 10
        limiter.warning("c", "second window")
    assert [r.getMessage() for r in caplog.records] == [
        "first",
        "suppressed 1 similar log lines cause=c seconds=10",
        "second window",
    ]
