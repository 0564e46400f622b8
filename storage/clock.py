"""The one source of time for storage code: a monotonic clock, the wall clock, sleeps
and timeouts.

Owns: how storage reads time. Every lease, flush deadline, fencing wait, liveness
watch, heartbeat and retry pause in storage/ goes through a `Clock` handed to it, so a
test can drive all of them with `FakeClock` (storage/fake_clock.py) and no real waiting
(docs/storage.md, "The Clock rule").

Guarantees: `SystemClock` is the real thing (time.monotonic, time.time, asyncio.sleep,
asyncio.timeout); `monotonic()` never goes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (leases, deadlines, silences)."""
        ...

    def wall_ms(self) -> int:
        """Milliseconds since the epoch (timestamps written into the bucket)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """An `async with` block cancelled after `seconds`, raising TimeoutError."""
        ...


def _system_wall_ms() -> int:
    return time.time_ns() // 1_000_000


class SystemClock:
    """Real time. `wall_ms` may be replaced (the broker passes its own wall clock)."""

    def __init__(self, wall_ms: Callable[[], int] = _system_wall_ms) -> None:
        self._wall_ms = wall_ms

    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ms(self) -> int:
        return self._wall_ms()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for returns normally when
        # the awaited thing finishes in the same turn as the task is cancelled.
        return asyncio.timeout(seconds)


SYSTEM_CLOCK = SystemClock()
