"""A clock that moves only when a test moves it: for driving leases, flush deadlines,
liveness and heartbeats in unit tests without waiting.

Owns: fake monotonic and wall time, and the sleeps and timeouts taken on them.

Guarantees: `sleep(s)` and `timeout(s)` end only once `advance` moved time to their
deadline or past it, in deadline order; a sleep of zero or less only yields once.
`advance` first lets ready tasks run, then lets each woken one run (a bounded number
of event-loop turns) before time moves on, so a test sees their effects. Nothing here
reads real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

_START_WALL_MS = 1_700_000_000_000
_TURNS = 50  # event-loop turns given to woken tasks (memory-store work needs a few each)


class FakeClock:
    def __init__(self, start_s: float = 1000.0, wall_ms: int = _START_WALL_MS) -> None:
        # Whole nanoseconds, so that advancing by 0.199 s then 0.001 s reaches a deadline
        # 0.2 s on exactly (float seconds would fall short by a rounding error).
        self._now = _ns(start_s)
        self._wall_at_start = wall_ms - self._now // 1_000_000
        self._order = itertools.count()
        # (deadline ns, tie-break, wake): a sleeper's future, or a timeout's expiry
        self._timers: list[tuple[int, int, asyncio.Future[None] | asyncio.Timeout]] = []
        self._open: set[asyncio.Timeout] = set()  # timeout blocks not yet exited

    def monotonic(self) -> float:
        return self._now / 1e9

    def wall_ms(self) -> int:
        return self._wall_at_start + self._now // 1_000_000

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + _ns(seconds), next(self._order), fut))
        await fut

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return self._timeout(seconds)

    @contextlib.asynccontextmanager
    async def _timeout(self, seconds: float) -> AsyncIterator[None]:
        async with asyncio.timeout(None) as real:
            if seconds <= 0:
                real.reschedule(asyncio.get_running_loop().time())
            else:
                heapq.heappush(self._timers, (self._now + _ns(seconds), next(self._order), real))
            self._open.add(real)
            try:
                yield
            finally:
                self._open.discard(real)

    @property
    def sleepers(self) -> int:
        """Sleeps and timeouts still waiting for their deadline."""
        return sum(1 for _, _, wake in self._timers if self._pending(wake))

    async def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, waking every sleep and timeout due on the way.
        Tasks ready to run go first, so the sleeps they are about to take count."""
        await settle()
        target = self._now + _ns(seconds)
        while self._timers and self._timers[0][0] <= target:
            deadline, _, wake = heapq.heappop(self._timers)
            self._now = max(self._now, deadline)
            if self._pending(wake):
                _fire(wake)
                await settle()
        self._now = target
        await settle()

    def _pending(self, wake: asyncio.Future[None] | asyncio.Timeout) -> bool:
        if isinstance(wake, asyncio.Future):
            return not wake.done()
        return wake in self._open and not wake.expired()


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _fire(wake: asyncio.Future[None] | asyncio.Timeout) -> None:
    if isinstance(wake, asyncio.Future):
        wake.set_result(None)
        return
    with contextlib.suppress(RuntimeError):  # its block ended in the meantime
        wake.reschedule(asyncio.get_running_loop().time())


async def settle(turns: int = _TURNS) -> None:
    """Let every ready task run for a while (no time passes)."""
    for _ in range(turns):
        await asyncio.sleep(0)
