"""One client connection: frames in, handler calls, responses out in request order.

Owns: the only socket-facing code of the broker. Requests are handled concurrently
(so pipelined produce requests share one WAL fsync) but answered strictly in the
order they arrived, as Kafka clients require. A frame that violates the protocol
closes this connection, logs one (rate-limited) line, and affects nobody else.

Bounded by what the client does, not by what it announces:
- receive memory grows with the bytes that arrived (protocol/framing.py);
- at most `--queued-max-requests` requests are started and not yet answered, and
  at most `MAX_IN_FLIGHT_BYTES` of request bytes are in flight; past either, reading
  stops (backpressure) until half are answered;
- an API may cap its own requests in flight (`Handler.max_in_flight`: Fetch, whose
  answers are the large ones); the next request of that API waits, unstarted, and
  the requests behind it wait too (requests are started in the order they came);
- answers waiting for their turn or for the client to read them: once
  `WRITE_BUFFER_HIGH` bytes of them are held, nothing new starts and reading stops;
  while the transport is past that mark, finished answers are held, not handed to
  it (they are mostly views of stored bytes; the transport would copy them);
- when the connection closes, requests that only read are cancelled and requests
  not yet started are dropped; writes already under way finish (their effects must
  not be cut in half).
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import struct
import termios
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any, Protocol, cast

from tidelog.broker.connection_table import ConnectionTable
from tidelog.broker.handlers.base import (
    Handler,
    HandlerTable,
    answer_error,
    api_ranges,
    client_host,
    client_listener,
    client_principal,
    client_session,
)
from tidelog.broker.security.audit import AuditLog
from tidelog.broker.security.principal import ANONYMOUS
from tidelog.broker.security.sasl import MAX_UNAUTHENTICATED_BYTES, SaslSession, SaslState
from tidelog.broker.security.tls import certificate_principal
from tidelog.protocol.api_versions_fallback import encode_api_versions_fallback
from tidelog.protocol.codec import encode_response
from tidelog.protocol.error_scan import first_error
from tidelog.protocol.errors import ErrorCode, FrameTooLarge, InvalidFrame, ProtocolError
from tidelog.protocol.framing import FrameReader
from tidelog.protocol.headers import RequestHeader, parse_request_header

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class RequestMeter(Protocol):
    """Where answered requests are counted (broker/observability/metrics.py)."""

    def request(self, api_key: int, error_code: int, seconds: float) -> None: ...


log = logging.getLogger(__name__)

API_VERSIONS = 18
SASL_AUTHENTICATE = 36
# Request bytes in flight past which reading stops; resumes below half.
MAX_IN_FLIGHT_BYTES = 64 << 20
# Answer bytes held (in the transport, or waiting for their turn) past which nothing
# new starts; the transport's own flow control resumes below WRITE_BUFFER_LOW.
WRITE_BUFFER_HIGH = 8 << 20
WRITE_BUFFER_LOW = 2 << 20
_FIONREAD_ARG = b"\0\0\0\0"


class _Slot:
    __slots__ = ("done", "parts", "size")

    def __init__(self) -> None:
        self.parts: list[Any] | None = None
        self.done = False
        self.size = 0


class Connection(asyncio.BufferedProtocol):
    def __init__(
        self,
        node: Node,
        handlers: HandlerTable,
        table: ConnectionTable,
        meter: RequestMeter | None = None,
        sasl: SaslSession | None = None,
        listener: str = "PLAINTEXT",
        audit: AuditLog | None = None,
    ) -> None:
        self.node = node  # what the handlers are given
        self.meter = meter
        self.handlers = handlers
        self.table = table
        self.queued_max_requests = table.limits.queued_max_requests
        # On a SASL listener nothing but the exchange is served until it succeeds, and
        # its frames are small (Kafka's sasl.server.max.receive.size).
        self.sasl = sasl
        self.listener = listener
        self.audit = audit  # --audit-log: authentications and changes, one line each
        self.client_id: str | None = None
        self.principal = str(ANONYMOUS)
        max_frame = table.limits.max_request_bytes
        if sasl is not None:
            max_frame = min(max_frame, MAX_UNAUTHENTICATED_BYTES)
        self.reader = FrameReader(max_frame, table.scratch, self._kernel_queued_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.ip = ""
        self.host = ""
        self._fd = -1
        self._slots: deque[_Slot] = deque()  # one per started request owed an answer
        self._held_bytes = 0  # answers finished but not handed to the transport
        self._tasks: dict[asyncio.Task[None], Handler] = {}
        self._per_api: Counter[int] = Counter()  # in flight, for APIs with their own cap
        self._waiting: bytearray | None = None  # the next frame, held back by its API's cap
        self._in_flight_bytes = 0
        self._read_paused = False
        self._write_paused = False
        self._closed = False
        self._admitted = False
        self._authenticated = False  # the SASL login succeeded (logged and audited once)
        self._last_received = table.clock()

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]) if peer else "?"
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.host = f"/{peer[0]}" if peer else ""
        sock = transport.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None else -1
        refused = self.table.admit(self)
        if refused is not None:
            self.abort(f"refused: {refused}", cause="connection_limit")
            return
        self._admitted = True
        # On SSL a client certificate names the principal; on SASL_SSL the SASL login
        # does (as Kafka decides), whatever certificate came with it.
        principal = (
            None if self.sasl else certificate_principal(transport.get_extra_info("peercert"))
        )
        if principal is not None:
            self.principal = principal  # mTLS: who the certificate says
            log.info(
                "authenticated peer=%s listener=%s mechanism=TLS principal=%s",
                self.peer,
                self.listener,
                principal,
            )
            if self.audit is not None:
                self.audit.authentication(principal, self.ip, None, "TLS", self.listener, True, "")
        self.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH, low=WRITE_BUFFER_LOW)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._admitted:
            self.table.release(self)
        for task, handler in list(self._tasks.items()):
            if handler.read_only:  # nobody will read the answer; writes run to the end
                task.cancel()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        self._last_received = self.table.clock()
        self.reader.buffer_updated(nbytes)
        self._pump()

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._write_ready()
        self._pump()

    # -- what the table asks -----------------------------------------------------------

    def idle_since(self) -> float | None:
        return None if self._tasks else self._last_received

    # -- requests ----------------------------------------------------------------------

    def _may_dispatch(self) -> bool:
        return (
            not self._closed
            and not self._write_paused
            and len(self._tasks) < self.queued_max_requests
            and len(self._slots) < self.queued_max_requests
            and self._in_flight_bytes < MAX_IN_FLIGHT_BYTES
            and self._held_bytes < WRITE_BUFFER_HIGH
        )

    def _next_frame(self) -> bytearray | None:
        """The next frame to start, or None while there is none or its API is at cap."""
        frame = self._waiting if self._waiting is not None else self.reader.next_frame()
        self._waiting = None
        if frame is None or len(frame) < 2:
            return frame
        handler = self.handlers.get(int.from_bytes(frame[:2], "big"))
        if (
            handler is not None
            and handler.max_in_flight
            and self._per_api[handler.api_key] >= handler.max_in_flight
        ):
            self._waiting = frame
            return None
        return frame

    def _pump(self) -> None:
        """Start the requests that have arrived as far as the limits allow."""
        try:
            while self._may_dispatch() and (frame := self._next_frame()) is not None:
                try:
                    self._dispatch(frame)
                except ProtocolError as exc:
                    self.abort(f"protocol error: {exc} frame_head={bytes(frame[:48]).hex()}")
                    return
                except Exception:  # a decoder bug must not take more than this connection
                    log.exception("request could not be decoded peer=%s", self.peer)
                    self.abort(f"undecodable request frame_head={bytes(frame[:48]).hex()}")
                    return
        except (FrameTooLarge, InvalidFrame) as exc:
            self.abort(f"protocol error: {exc}", cause="bad_frame_size")
            return
        self._update_reading()

    def _has_unstarted(self) -> bool:
        return self._waiting is not None or self.reader.ready_frames > 0

    def _update_reading(self) -> None:
        if self.transport is None or self._closed:
            return
        if not self._read_paused:
            if not self._may_dispatch() or self._has_unstarted():
                self._read_paused = True
                self.transport.pause_reading()
        elif (
            not self._write_paused
            and not self._has_unstarted()
            and len(self._tasks) <= self.queued_max_requests // 2
            and len(self._slots) <= self.queued_max_requests // 2
            and self._in_flight_bytes < MAX_IN_FLIGHT_BYTES // 2
            and self._held_bytes < WRITE_BUFFER_HIGH // 2
        ):
            self._read_paused = False
            self.transport.resume_reading()

    def _dispatch(self, frame: bytearray) -> None:
        sasl = self.sasl
        if sasl is not None and sasl.raw_tokens and sasl.state is SaslState.AUTHENTICATE:
            self._raw_token(sasl, frame)
            return
        header, body_offset = parse_request_header(frame)
        if sasl is not None and not sasl.allows(header.api_key):
            raise ProtocolError(
                f"request before SASL authentication api_key={header.api_key} "
                f"sasl_state={sasl.state.value}"
            )
        handler = self.handlers.get(header.api_key)
        if handler is None:
            raise ProtocolError(f"unknown api key api_key={header.api_key}")
        if not handler.min_version <= header.api_version <= handler.max_version:
            if header.api_key == API_VERSIONS:
                self._finish(
                    self._new_slot(),
                    encode_api_versions_fallback(
                        header.correlation_id,
                        api_ranges(self.handlers),
                        ErrorCode.unsupported_version,
                    ),
                )
                return
            raise ProtocolError(
                f"unsupported version api_key={header.api_key} api_version={header.api_version}"
            )
        request = handler.decode(frame, body_offset, header.api_version)
        slot = self._new_slot() if handler.expects_response(request) else None
        client_host.set(self.host)
        client_principal.set(self.principal)
        client_listener.set(self.listener)
        client_session.set(sasl)
        task = asyncio.get_running_loop().create_task(self._run(handler, header, request, slot))
        self._tasks[task] = handler
        if handler.max_in_flight:
            self._per_api[handler.api_key] += 1
        size = len(frame)
        self._in_flight_bytes += size
        task.add_done_callback(functools.partial(self._task_done, size))

    async def _run(
        self, handler: Handler, header: RequestHeader, request: object, slot: _Slot | None
    ) -> None:
        if self._closed:  # the client left before this request started: drop it
            return
        started = time.perf_counter()
        try:
            response = await handler.handle(self.node, header, request)
            if self.meter is not None:
                code = answer_error.get() if isinstance(response, list) else first_error(response)
                self.meter.request(header.api_key, code, time.perf_counter() - started)
            if self.audit is not None:
                self.audit.request(
                    self.principal,
                    self.ip,
                    header.client_id,
                    header.api_key,
                    header.api_version,
                    request,
                    response,
                )
            parts: list[Any] | None = None
            if slot is not None and response is not None and not self._closed:
                parts = (
                    response
                    if isinstance(response, list)
                    else encode_response(header.correlation_id, response)
                )
        except Exception:
            if self.meter is not None:
                self.meter.request(
                    header.api_key, ErrorCode.unknown_server_error, time.perf_counter() - started
                )
            log.exception(
                "handler failed; closing connection api_key=%d api_version=%d peer=%s",
                header.api_key,
                header.api_version,
                self.peer,
            )
            self.abort("internal error", cause="handler_error")
            return
        if slot is not None and parts is not None:
            self._finish(slot, parts)
        if self.sasl is not None and header.api_key == SASL_AUTHENTICATE:
            self.client_id = header.client_id
            self._after_sasl_step(self.sasl)

    def _raw_token(self, sasl: SaslSession, frame: bytearray) -> None:
        """A token after a v0 SaslHandshake: length-prefixed, no header, no error code."""
        answer, _failed = sasl.authenticate(bytes(frame))
        if sasl.state is SaslState.FAILED:
            self._after_sasl_step(sasl)
            return
        self._finish(self._new_slot(), [struct.pack(">i", len(answer)), answer])
        self._after_sasl_step(sasl)

    def _after_sasl_step(self, sasl: SaslSession) -> None:
        if sasl.state is SaslState.DONE and not self._authenticated:
            self._authenticated = True
            self.principal = f"User:{sasl.user}"
            self.reader.max_frame_bytes = self.table.limits.max_request_bytes
            self._audit_authentication(sasl, True)
            log.info(
                "authenticated peer=%s listener=%s mechanism=%s principal=%s",
                self.peer,
                self.listener,
                sasl.mechanism,
                self.principal,
            )
        elif sasl.state is SaslState.FAILED and not self._closed:
            self.table.log.log(
                logging.WARNING,
                "sasl_failed",
                "authentication failed; closing connection peer=%s listener=%s "
                "mechanism=%s user=%r why=%s",
                self.peer,
                self.listener,
                sasl.mechanism,
                sasl.user,
                sasl.failure,
            )
            self._audit_authentication(sasl, False)
            self._closed = True
            if self.transport is not None:
                self.transport.close()  # after the answer already handed to it

    def _audit_authentication(self, sasl: SaslSession, ok: bool) -> None:
        if self.audit is not None:
            who = f"User:{sasl.user}" if sasl.user else str(ANONYMOUS)
            reason = "" if ok else sasl.failure
            self.audit.authentication(
                who, self.ip, self.client_id, sasl.mechanism, self.listener, ok, reason
            )

    def _task_done(self, size: int, task: asyncio.Task[None]) -> None:
        # Resume here, after the task left the table: checking inside the task itself
        # misses the case where every in-flight request completes in one loop turn
        # (one WAL sync acks them all) and reading would stay paused forever.
        handler = self._tasks.pop(task, None)
        if handler is not None and handler.max_in_flight:
            self._per_api[handler.api_key] -= 1
        self._in_flight_bytes -= size
        self._pump()

    def _new_slot(self) -> _Slot:
        slot = _Slot()
        self._slots.append(slot)
        return slot

    def _finish(self, slot: _Slot, parts: list[Any]) -> None:
        slot.parts, slot.done = parts, True
        slot.size = sum(map(len, parts))
        self._held_bytes += slot.size
        if not self._write_paused:
            self._write_ready()

    def _write_ready(self) -> None:
        """Hand the transport every answer whose turn has come."""
        out: list[Any] = []
        while self._slots and self._slots[0].done:
            done = self._slots.popleft()
            assert done.parts is not None
            out += done.parts
            self._held_bytes -= done.size
        if out and self.transport is not None and not self._closed:
            self.transport.writelines(out)

    def _kernel_queued_bytes(self) -> int:
        """Bytes the kernel holds for us already: they have arrived, so the frame they
        belong to may be sized for them at once."""
        if self._fd < 0:
            return 0
        try:
            (queued,) = struct.unpack("i", fcntl.ioctl(self._fd, termios.FIONREAD, _FIONREAD_ARG))
        except OSError:
            return 0
        return max(int(queued), 0)

    def abort(
        self, reason: str, cause: str = "protocol_error", level: int = logging.WARNING
    ) -> None:
        if self._closed:
            return
        self.table.log.log(level, cause, "closing connection peer=%s reason=%s", self.peer, reason)
        self._closed = True
        if self.transport is not None:
            self.transport.abort()

    async def drain(self) -> None:
        """Wait for in-flight requests (used at shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))
