"""One connection's limits: backpressure on requests, bytes and unread responses, work
dropped when the client leaves, admission and the idle sweep.

Handlers that park every request until the test releases it, and a
fake transport that records pause/resume: no sockets, so the limits are exercised
exactly (the integration tests cannot pile up 64 MiB of unanswered requests on demand).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tidelog.broker import connection
from tidelog.broker.connection import Connection
from tidelog.broker.connection_table import ConnectionLimits, ConnectionTable
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.headers import RequestHeader


class _Parked(Handler):
    api_key, min_version, max_version = 0, 0, 9

    def __init__(self, api_key: int = 0, read_only: bool = False) -> None:
        self.api_key = api_key
        self.read_only = read_only
        self.release = asyncio.Event()
        self.started = 0
        self.finished = 0

    def decode(self, frame: bytearray, body_offset: int, version: int) -> Any:
        return None

    async def handle(self, broker: Any, header: RequestHeader, request: Any) -> Any:
        self.started += 1
        await self.release.wait()
        self.finished += 1
        return [b"\x00\x00\x00\x04", header.correlation_id.to_bytes(4, "big")]


class _Transport:
    def __init__(self, ip: str = "127.0.0.1") -> None:
        self.ip = ip
        self.events: list[str] = []
        self.written: list[bytes] = []
        self.aborted = False

    def get_extra_info(self, name: str) -> Any:
        return (self.ip, 1) if name == "peername" else None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def pause_reading(self) -> None:
        self.events.append("pause")

    def resume_reading(self) -> None:
        self.events.append("resume")

    def writelines(self, data: list[bytes]) -> None:
        self.written.append(b"".join(data))

    def is_closing(self) -> bool:
        return self.aborted

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True


@dataclass
class _Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def _limits(**overrides: int) -> ConnectionLimits:
    values = {
        "max_connections": 100,
        "max_connections_per_ip": 100,
        "max_idle_ms": 600_000,
        "queued_max_requests": 500,
        "max_request_bytes": 1 << 30,
    }
    values.update(overrides)
    return ConnectionLimits(**values)


@dataclass
class _Setup:
    table: ConnectionTable
    handlers: list[_Parked]
    clock: _Clock = field(default_factory=_Clock)

    def connect(self, ip: str = "127.0.0.1") -> tuple[Connection, _Transport]:
        handlers: dict[int, Handler] = {h.api_key: h for h in self.handlers}
        conn = Connection(object(), handlers, self.table)  # type: ignore[arg-type]  # no node used
        transport = _Transport(ip)
        conn.connection_made(transport)  # type: ignore[arg-type]
        return conn, transport


def _setup(*handlers: _Parked, **limits: int) -> _Setup:
    clock = _Clock()
    return _Setup(ConnectionTable(_limits(**limits), clock), list(handlers or [_Parked()]), clock)


def _frame(correlation: int, body_size: int, api_key: int = 0) -> bytes:
    header = api_key.to_bytes(2, "big") + (0).to_bytes(2, "big") + correlation.to_bytes(4, "big")
    header += (-1).to_bytes(2, "big", signed=True)  # null client id (v0: no tags)
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


async def _turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def _correlations(transport: _Transport) -> list[int]:
    """Correlation ids of the answers written, in order (each is size + correlation)."""
    data = b"".join(transport.written)
    return [int.from_bytes(data[i + 4 : i + 8], "big") for i in range(0, len(data), 8)]


def test_reading_pauses_past_the_byte_limit_and_resumes_when_answered() -> None:
    async def main() -> None:
        setup = _setup()
        conn, transport = setup.connect()
        size = 1 << 20
        count = connection.MAX_IN_FLIGHT_BYTES // size + 2
        for i in range(count):
            _feed(conn, _frame(i, size))
        await _turns()
        assert transport.events == ["pause"]
        setup.handlers[0].release.set()  # one upload answers every parked request at once
        await _turns()
        assert transport.events == ["pause", "resume"]
        assert _correlations(transport) == list(range(count))

    asyncio.run(main())


def test_requests_past_the_queued_limit_wait_unstarted_and_are_answered_in_order() -> None:
    async def main() -> None:
        setup = _setup(queued_max_requests=4)
        conn, transport = setup.connect()
        _feed(conn, b"".join(_frame(i, 16) for i in range(10)))  # one read, ten requests
        await _turns()
        handler = setup.handlers[0]
        assert handler.started == 4
        assert transport.events == ["pause"]
        handler.release.set()
        await _turns(50)
        assert handler.started == 10
        assert _correlations(transport) == list(range(10))
        assert transport.events == ["pause", "resume"]

    asyncio.run(main())


def test_a_client_that_does_not_read_stops_being_read() -> None:
    async def main() -> None:
        setup = _setup()
        setup.handlers[0].release.set()
        conn, transport = setup.connect()
        conn.pause_writing()  # the transport's buffer is past its high-water mark
        assert transport.events == ["pause"]
        _feed(conn, _frame(1, 16))  # what was already read waits
        await _turns()
        assert setup.handlers[0].started == 0
        conn.resume_writing()
        await _turns()
        assert setup.handlers[0].started == 1
        assert transport.events == ["pause", "resume"]

    asyncio.run(main())


def test_a_closed_connection_cancels_its_reads_and_finishes_its_writes() -> None:
    async def main() -> None:
        write, read = _Parked(0), _Parked(1, read_only=True)
        setup = _setup(write, read, queued_max_requests=2)
        conn, transport = setup.connect()
        frames = [_frame(1, 8, 0), _frame(2, 8, 1), _frame(3, 8, 1), _frame(4, 8, 0)]
        _feed(conn, b"".join(frames))
        await _turns()
        assert (write.started, read.started) == (1, 1)
        conn.connection_lost(None)
        write.release.set()
        read.release.set()
        await _turns()
        assert write.finished == 1  # the write ran to its end
        assert read.finished == 0  # the read was cancelled
        assert (write.started, read.started) == (1, 1)  # the two not started were dropped
        assert transport.written == []  # and nobody answered a closed connection
        assert len(setup.table) == 0

    asyncio.run(main())


def test_connections_past_the_limits_are_refused() -> None:
    setup = _setup(max_connections=3, max_connections_per_ip=2)
    _, first = setup.connect("10.0.0.1")
    _, second = setup.connect("10.0.0.1")
    _, third = setup.connect("10.0.0.1")  # a third from one address
    _, other = setup.connect("10.0.0.2")
    _, fourth = setup.connect("10.0.0.3")  # a fourth in all
    assert [t.aborted for t in (first, second, third, other, fourth)] == [
        False,
        False,
        True,
        False,
        True,
    ]
    assert len(setup.table) == 3


def test_a_refused_connection_frees_nothing_it_did_not_take() -> None:
    setup = _setup(max_connections=1)
    conn, _ = setup.connect()
    refused, _ = setup.connect()
    refused.connection_lost(None)
    assert len(setup.table) == 1
    conn.connection_lost(None)
    assert len(setup.table) == 0
    _, again = setup.connect()
    assert not again.aborted


def test_an_idle_connection_and_a_stalled_partial_frame_are_closed() -> None:
    async def main() -> None:
        setup = _setup(max_idle_ms=1000)
        idle, idle_transport = setup.connect()
        stalled, stalled_transport = setup.connect()
        busy, busy_transport = setup.connect()
        _feed(stalled, _frame(1, 100)[:20])  # half a request, then silence
        _feed(busy, _frame(2, 8))  # a request in flight (parked) is not idle
        await _turns()
        setup.clock.now += 0.9
        assert setup.table.sweep() == 0
        setup.clock.now += 0.2
        assert setup.table.sweep() == 2
        assert idle_transport.aborted and stalled_transport.aborted
        assert not busy_transport.aborted
        idle.connection_lost(None)
        stalled.connection_lost(None)
        assert len(setup.table) == 1

    asyncio.run(main())


def test_answers_finished_while_the_client_is_not_reading_are_held_until_it_drains() -> None:
    async def main() -> None:
        setup = _setup()
        conn, transport = setup.connect()
        _feed(conn, _frame(1, 8) + _frame(2, 8))
        await _turns()
        conn.pause_writing()
        setup.handlers[0].release.set()
        await _turns()
        assert setup.handlers[0].finished == 2
        assert transport.written == []  # not copied into a transport that is full
        conn.resume_writing()
        assert _correlations(transport) == [1, 2]

    asyncio.run(main())


def test_an_api_at_its_own_cap_holds_back_the_requests_behind_it() -> None:
    async def main() -> None:
        fetch = _Parked(1, read_only=True)
        fetch.max_in_flight = 2
        other = _Parked(0)
        other.release.set()
        setup = _setup(fetch, other)
        conn, transport = setup.connect()
        frames = [_frame(1, 8, 1), _frame(2, 8, 1), _frame(3, 8, 1), _frame(4, 8, 0)]
        _feed(conn, b"".join(frames))
        await _turns()
        assert (fetch.started, other.started) == (2, 0)  # in arrival order, so 4 waits
        assert transport.events == ["pause"]
        fetch.release.set()
        await _turns(50)
        assert (fetch.started, other.started) == (3, 1)
        assert _correlations(transport) == [1, 2, 3, 4]

    asyncio.run(main())
