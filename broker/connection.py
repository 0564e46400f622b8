"""One client connection: frames in, handler calls, responses out in request order.

Owns: the only socket-facing code of the broker. Requests are handled concurrently
(so pipelined produce requests share one WAL fsync) but answered strictly in the
order they arrived, as Kafka clients require. A frame that violates the protocol
closes this connection, logs one line, and affects nobody else.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from broker.handlers.base import client_host
from protocol.api_versions_fallback import encode_api_versions_fallback
from protocol.codec import encode_response
from protocol.errors import ErrorCode, ProtocolError
from protocol.framing import FrameReader
from protocol.headers import RequestHeader, parse_request_header

if TYPE_CHECKING:
    from broker.server import Broker

log = logging.getLogger(__name__)

API_VERSIONS = 18
# Stop reading from a client with this many requests, or request bytes, in flight
# (backpressure); resume below half of both. The count is high because in object mode
# every produce waits for the next upload: with linger 0 a client has hundreds of small
# requests waiting at once, and a low cap would throttle it to cap/flush-interval.
MAX_IN_FLIGHT = 4096
MAX_IN_FLIGHT_BYTES = 64 << 20


class _Slot:
    __slots__ = ("done", "parts")

    def __init__(self) -> None:
        self.parts: list[Any] | None = None
        self.done = False


class Connection(asyncio.BufferedProtocol):
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.reader = FrameReader(broker.config.max_request_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.host = ""
        self._slots: deque[_Slot] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight_bytes = 0
        self._paused = False
        self._closed = False

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.host = f"/{peer[0]}" if peer else ""
        self.broker.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.broker.connections.discard(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        self.reader.buffer_updated(nbytes)
        try:
            while (frame := self.reader.next_frame()) is not None:
                try:
                    self._dispatch(frame)
                except ProtocolError as exc:
                    self.abort(f"protocol error: {exc} frame_head={bytes(frame[:48]).hex()}")
                    return
                except Exception:  # a decoder bug must not take more than this connection
                    log.exception("request could not be decoded peer=%s", self.peer)
                    self.abort(f"undecodable request frame_head={bytes(frame[:48]).hex()}")
                    return
        except ProtocolError as exc:
            self.abort(f"protocol error: {exc}")

    def eof_received(self) -> bool | None:
        return None

    # -- requests ----------------------------------------------------------------------

    def _dispatch(self, frame: bytearray) -> None:
        header, body_offset = parse_request_header(frame)
        handler = self.broker.handlers.get(header.api_key)
        if handler is None:
            raise ProtocolError(f"unknown api key api_key={header.api_key}")
        if not handler.min_version <= header.api_version <= handler.max_version:
            if header.api_key == API_VERSIONS:
                self._finish(
                    self._new_slot(),
                    encode_api_versions_fallback(
                        header.correlation_id,
                        self.broker.api_ranges(),
                        ErrorCode.unsupported_version,
                    ),
                )
                return
            raise ProtocolError(
                f"unsupported version api_key={header.api_key} api_version={header.api_version}"
            )
        request = handler.decode(frame, body_offset, header.api_version)
        expects_response = handler.expects_response(request)
        slot = self._new_slot() if expects_response else None
        client_host.set(self.host)
        task = asyncio.get_running_loop().create_task(self._run(handler, header, request, slot))
        self._tasks.add(task)
        size = len(frame)
        self._in_flight_bytes += size
        task.add_done_callback(functools.partial(self._task_done, size))
        if (
            not self._paused
            and self.transport
            and (len(self._tasks) >= MAX_IN_FLIGHT or self._in_flight_bytes >= MAX_IN_FLIGHT_BYTES)
        ):
            self._paused = True
            self.transport.pause_reading()

    async def _run(
        self, handler: object, header: RequestHeader, request: object, slot: _Slot | None
    ) -> None:
        from broker.handlers.base import Handler

        assert isinstance(handler, Handler)
        try:
            response = await handler.handle(self.broker, header, request)
            parts: list[Any] | None = None
            if slot is not None and response is not None:
                parts = (
                    response
                    if isinstance(response, list)
                    else encode_response(header.correlation_id, response)
                )
        except Exception:
            log.exception(
                "handler failed; closing connection api_key=%d api_version=%d peer=%s",
                header.api_key,
                header.api_version,
                self.peer,
            )
            self.abort("internal error")
            return
        if slot is not None and parts is not None:
            self._finish(slot, parts)

    def _task_done(self, size: int, task: asyncio.Task[None]) -> None:
        # Resume here, after the task left the set: checking inside the task itself
        # misses the case where every in-flight request completes in one loop turn
        # (one WAL sync acks them all) and reading would stay paused forever.
        self._tasks.discard(task)
        self._in_flight_bytes -= size
        if (
            self._paused
            and len(self._tasks) < MAX_IN_FLIGHT // 2
            and self._in_flight_bytes < MAX_IN_FLIGHT_BYTES // 2
            and self.transport
        ):
            self._paused = False
            self.transport.resume_reading()

    def _new_slot(self) -> _Slot:
        slot = _Slot()
        self._slots.append(slot)
        return slot

    def _finish(self, slot: _Slot, parts: list[Any]) -> None:
        slot.parts, slot.done = parts, True
        out: list[Any] = []
        while self._slots and self._slots[0].done:
            done = self._slots.popleft()
            assert done.parts is not None
            out += done.parts
        if out and self.transport is not None and not self._closed:
            self.transport.writelines(out)

    def abort(self, reason: str) -> None:
        if self._closed:
            return
        log.warning("closing connection peer=%s reason=%s", self.peer, reason)
        self._closed = True
        if self.transport is not None:
            self.transport.abort()

    async def drain(self) -> None:
        """Wait for in-flight requests (used at shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))
