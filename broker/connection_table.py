"""The broker's open connections and the limits on them.

Owns: admission (`--max-connections`, `--max-connections-per-ip`), the idle sweep
(`--connections-max-idle-ms`: a connection with no request in flight that has sent
nothing for that long is closed, a stalled partial frame included), the receive
scratch buffer every connection of the event loop shares (protocol/framing.py), and
the rate-limited log that connection trouble is written to. The clock is passed in.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from tidelog.broker.log_limiter import LogLimiter
from tidelog.protocol.framing import SCRATCH_BYTES

log = logging.getLogger("tidelog.broker.connection")

# The sweep runs this often relative to the idle limit, within these bounds: an idle
# connection is closed at most a quarter of the limit late.
_SWEEP_FRACTION = 4
_SWEEP_MIN_S = 0.05
_SWEEP_MAX_S = 30.0
# File descriptors kept for everything but client connections: WAL files, the object
# store's connection pool, the data-dir lock, logs.
FD_RESERVE = 256


def default_max_connections() -> int:
    """Raise the soft open-file limit to the hard one and leave `FD_RESERVE` of it
    for the broker itself: past that, accept() would fail and the WAL could not open
    a file, so more client connections must be refused first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(1, soft - FD_RESERVE)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int
    max_connections_per_ip: int
    max_idle_ms: int
    queued_max_requests: int
    max_request_bytes: int


class TrackedConnection(Protocol):
    @property
    def ip(self) -> str: ...

    def idle_since(self) -> float | None:
        """When it last received bytes, if it has no request in flight; else None."""

    def abort(self, reason: str, cause: str = ..., level: int = ...) -> None: ...


class ConnectionTable:
    def __init__(self, limits: ConnectionLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self.scratch = bytearray(SCRATCH_BYTES)
        self.log = LogLimiter(log, clock)
        self._open: set[TrackedConnection] = set()
        self._per_ip: Counter[str] = Counter()

    def __iter__(self) -> Iterator[TrackedConnection]:
        return iter(list(self._open))

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, conn: TrackedConnection) -> str | None:
        """Register `conn`; or the reason it may not stay (it is then not registered)."""
        limits = self.limits
        if len(self._open) >= limits.max_connections:
            return f"too many connections open={len(self._open)} max={limits.max_connections}"
        if self._per_ip[conn.ip] >= limits.max_connections_per_ip:
            return (
                f"too many connections from one address ip={conn.ip} "
                f"open={self._per_ip[conn.ip]} max={limits.max_connections_per_ip}"
            )
        self._open.add(conn)
        self._per_ip[conn.ip] += 1
        return None

    def release(self, conn: TrackedConnection) -> None:
        if conn in self._open:
            self._open.discard(conn)
            self._per_ip[conn.ip] -= 1
            if self._per_ip[conn.ip] <= 0:
                del self._per_ip[conn.ip]

    def sweep(self) -> int:
        """Close connections idle past the limit; write due log summaries. Returns how
        many were closed."""
        now = self.clock()
        limit_s = self.limits.max_idle_ms / 1000
        closed = 0
        for conn in list(self._open):
            since = conn.idle_since()
            if since is not None and now - since >= limit_s:
                conn.abort(
                    f"idle for {now - since:.1f}s max_idle_ms={self.limits.max_idle_ms}",
                    cause="idle",
                    level=logging.INFO,
                )
                closed += 1
        self.log.flush()
        return closed

    async def sweep_forever(self) -> None:
        period = self.limits.max_idle_ms / 1000 / _SWEEP_FRACTION
        period = min(max(period, _SWEEP_MIN_S), _SWEEP_MAX_S)
        while True:
            await asyncio.sleep(period)
            try:
                self.sweep()
            except Exception:  # a bug in one sweep must not end the sweeping
                log.exception("connection sweep failed")
