"""This broker's lease on acknowledging, and whether it was fenced.

Owns: the lease (a wal-mode broker acks only while a commit of its own landed within
the session timeout: docs/durability.md, "Leases") and the fenced flag.

Guarantees:
- `holds()` is False from the instant the clock reaches `until`; only a landed commit
  (`renewed`) moves `until` on, and never back;
- once `fence()` ran, `fenced` stays True and every `wait_held` returns False.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tidelog.storage.clock import Clock


class Lease:
    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.until = 0.0  # acks only before this (clock.monotonic)
        self.fenced = False
        self._renewed = asyncio.Event()

    def start(self) -> None:
        """Joined: the lease runs from now."""
        self.until = self.clock.monotonic() + self.seconds

    def holds(self) -> bool:
        return self.clock.monotonic() < self.until

    def idle_s(self) -> float:
        """How long ago the commit that last renewed the lease was sent."""
        return self.clock.monotonic() - (self.until - self.seconds)

    def renewed(self, sent_at: float) -> None:
        """A commit sent at `sent_at` (clock.monotonic) landed and took effect."""
        self.until = max(self.until, sent_at + self.seconds)
        self._renewed.set()

    async def wait_held(self, renew: Callable[[], None]) -> bool:
        """Until the lease holds (True), calling `renew` to get a commit out, or until
        we are fenced (False)."""
        while not self.holds():
            if self.fenced:
                return False
            self._renewed.clear()
            renew()
            await self._renewed.wait()
        return True

    def fence(self) -> None:
        self.fenced = True
        self._renewed.set()
