"""Backpressure on one connection: reading pauses past the in-flight limits and resumes.

A fake broker whose only handler parks every request until the test releases it, and a
fake transport that records pause/resume: no sockets, so the limits are exercised
exactly (the integration tests cannot pile up 64 MiB of unanswered requests on demand).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from broker import connection
from broker.connection import Connection
from broker.handlers.base import Handler
from protocol.headers import RequestHeader


class _Parked(Handler):
    api_key, min_version, max_version = 0, 0, 9

    def __init__(self) -> None:
        self.release = asyncio.Event()

    def decode(self, frame: bytearray, body_offset: int, version: int) -> Any:
        return None

    async def handle(self, broker: Any, header: RequestHeader, request: Any) -> Any:
        await self.release.wait()
        return [b"\x00\x00\x00\x04", header.correlation_id.to_bytes(4, "big")]


@dataclass
class _Config:
    max_request_bytes: int = 1 << 30


@dataclass
class _Broker:
    handler: _Parked
    config: _Config = field(default_factory=_Config)
    connections: set[Any] = field(default_factory=set)

    @property
    def handlers(self) -> dict[int, Handler]:
        return {0: self.handler}

    def api_ranges(self) -> list[tuple[int, int, int]]:
        return [(0, 0, 9)]


class _Transport:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.written = 0

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def pause_reading(self) -> None:
        self.events.append("pause")

    def resume_reading(self) -> None:
        self.events.append("resume")

    def write(self, data: bytes) -> None:
        self.written += 1

    def writelines(self, data: list[bytes]) -> None:
        self.written += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _frame(correlation: int, body_size: int) -> bytes:
    header = (0).to_bytes(2, "big") + (9).to_bytes(2, "big") + correlation.to_bytes(4, "big")
    header += (-1).to_bytes(2, "big", signed=True) + b"\x00"  # null client id, no tags
    payload = header + bytes(body_size)
    return len(payload).to_bytes(4, "big") + payload


def _feed(conn: Connection, data: bytes) -> None:
    view = memoryview(data)
    while view:
        buf = conn.get_buffer(len(view))
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        conn.buffer_updated(n)
        view = view[n:]


def _run_case(frames: list[bytes]) -> tuple[list[str], int]:
    async def main() -> tuple[list[str], int]:
        handler = _Parked()
        conn = Connection(_Broker(handler))  # type: ignore[arg-type]
        transport = _Transport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        for frame in frames:
            _feed(conn, frame)
        await asyncio.sleep(0)
        paused = list(transport.events)
        handler.release.set()  # one upload answers every parked request at once
        for _ in range(20):
            await asyncio.sleep(0)
        assert paused == ["pause"], paused
        return transport.events, transport.written

    return asyncio.run(main())


def test_reading_pauses_past_the_byte_limit_and_resumes_when_answered() -> None:
    size = 1 << 20
    count = connection.MAX_IN_FLIGHT_BYTES // size + 2
    events, written = _run_case([_frame(i, size) for i in range(count)])
    assert events == ["pause", "resume"]
    assert written >= 1


def test_reading_pauses_past_the_request_limit_and_resumes_when_answered() -> None:
    events, _ = _run_case([_frame(i, 16) for i in range(connection.MAX_IN_FLIGHT + 3)])
    assert events == ["pause", "resume"]
