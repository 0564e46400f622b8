"""Log lines a peer can cause, rate-limited per cause so no client can flood the log.

Owns: a per-cause budget of lines (`burst` per `interval_s`); past it, lines of that
cause are counted, not written, and `flush()` (called periodically, and on every line
after the interval) writes one summary per cause: how many were suppressed. The clock
is passed in so tests drive it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    started: float
    written: int = 0
    suppressed: int = 0


class LogLimiter:
    def __init__(
        self,
        logger: logging.Logger,
        clock: Callable[[], float],
        *,
        burst: int = 5,
        interval_s: float = 60.0,
    ) -> None:
        self._log = logger
        self._clock = clock
        self._burst = burst
        self._interval_s = interval_s
        self._windows: dict[str, _Window] = {}

    def warning(self, cause: str, message: str, *args: object) -> None:
        self.log(logging.WARNING, cause, message, *args)

    def log(self, level: int, cause: str, message: str, *args: object) -> None:
        now = self._clock()
        window = self._windows.get(cause)
        if window is None or now - window.started >= self._interval_s:
            if window is not None:
                self._summarise(cause, window, now)
            window = self._windows[cause] = _Window(now)
        if window.written < self._burst:
            window.written += 1
            self._log.log(level, message, *args)
        else:
            window.suppressed += 1

    def flush(self) -> None:
        """Write the summary of every window that is over; start them afresh."""
        now = self._clock()
        for cause, window in list(self._windows.items()):
            if now - window.started >= self._interval_s:
                self._summarise(cause, window, now)
                del self._windows[cause]

    def _summarise(self, cause: str, window: _Window, now: float) -> None:
        if window.suppressed:
            self._log.warning(
                "suppressed %d similar log lines cause=%s seconds=%.0f",
                window.suppressed,
                cause,
                now - window.started,
            )
