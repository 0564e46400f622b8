"""What a learner sees while a drill runs: timestamped steps and a progress display.

Owns: stdout while the drill runs. Each step is one line stamped with the seconds since
the drill began; `Progress` shows the load's acks once a second (rewritten in place on a
terminal, one line per second otherwise). With --json both are silent, so stdout holds
only the report.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO


class Narrator:
    def __init__(
        self,
        quiet: bool,
        clock: Callable[[], float] = time.monotonic,
        out: TextIO | None = None,
    ) -> None:
        self.quiet = quiet
        self.clock = clock
        self.started = clock()
        self.out = out or sys.stdout
        self._lock = threading.Lock()
        self._partial = False  # a progress line is on screen without its newline

    def stamp(self) -> str:
        return f"[{self.clock() - self.started:5.1f}s]"

    def say(self, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            if self._partial:
                self.out.write("\n")
                self._partial = False
            self.out.write(f"{self.stamp()} {message}\n")
            self.out.flush()

    def progress(self, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            if self.out.isatty():
                self.out.write(f"\r{self.stamp()} {message}\033[K")
                self._partial = True
            else:
                self.out.write(f"{self.stamp()} {message}\n")
            self.out.flush()


class Progress:
    """A thread that narrates `describe()` every `interval` seconds until stopped."""

    def __init__(self, say: Narrator, describe: Callable[[], str], interval: float = 1.0) -> None:
        self._say = say
        self._describe = describe
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._say.progress(self._describe())
