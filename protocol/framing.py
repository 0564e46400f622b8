"""Kafka's size-prefixed framing: bytes in, frames out; payloads in, bytes out.

Owns the 4-byte big-endian size prefix that delimits every request and
response. ``FrameDecoder`` guarantees:

* frames come out whole and in order, however the bytes were chunked;
* a size above ``max_frame_bytes`` raises ``FrameTooLarge`` and a negative
  size raises ``InvalidFrame`` as soon as the 4 prefix bytes are buffered,
  before any of the body is awaited;
* amortised linear cost: bytes are appended to one ``bytearray`` and read
  from a moving position; consumed bytes are dropped only when they make up
  most of the buffer, so neither many small frames in one chunk nor one big
  frame in many chunks copies the buffer over and over.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable

from tidelog.protocol.errors import FrameTooLarge, InvalidFrame, ProtocolError

__all__ = ["FrameDecoder", "FrameReader", "frame"]

_SIZE = struct.Struct(">i")
_PREFIX_BYTES = _SIZE.size
# Below this many consumed bytes, compaction is not worth a memmove.
_COMPACT_MIN_BYTES = 64 * 1024


class FrameDecoder:
    """Split a byte stream into Kafka frames (payloads without the size prefix)."""

    __slots__ = ("_buffer", "_max_frame_bytes", "_position")

    def __init__(self, max_frame_bytes: int) -> None:
        if max_frame_bytes < 0:
            raise ValueError(
                f"max frame bytes must not be negative max_frame_bytes={max_frame_bytes}"
            )
        self._max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._position = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a frame (a partial frame at EOF)."""
        return len(self._buffer) - self._position

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer."""
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """Return the next complete frame's payload, or None until more bytes arrive.

        Raises FrameTooLarge or InvalidFrame when the next size prefix is bad;
        the decoder is then unusable and the connection should be closed.
        """
        buffer = self._buffer
        start = self._position
        available = len(buffer) - start
        if available < _PREFIX_BYTES:
            return None
        (size,) = _SIZE.unpack_from(buffer, start)
        if size < 0 or size > self._max_frame_bytes:
            prefix = bytes(buffer[start : start + _PREFIX_BYTES])
            raise FrameReader.size_error(size, self._max_frame_bytes, prefix)
        if available - _PREFIX_BYTES < size:
            return None
        begin = start + _PREFIX_BYTES
        end = begin + size
        # A bytes() of a memoryview slice copies once; the view is released at
        # once so the bytearray may be resized again.
        view = memoryview(buffer)[begin:end]
        payload = bytes(view)
        view.release()
        if end == len(buffer):
            buffer.clear()
            self._position = 0
        elif end >= _COMPACT_MIN_BYTES and end * 2 >= len(buffer):
            del buffer[:end]
            self._position = 0
        else:
            self._position = end
        return payload


# FrameReader: frames at least this large are received straight into their own buffer.
_DIRECT_MIN_BYTES = 32 * 1024
SCRATCH_BYTES = 256 * 1024
# A partial frame's buffer grows by at least this much (and at least doubles), so a peer
# that trickles bytes costs amortised linear time, never a copy per byte.
_GROW_MIN_BYTES = 4096


class FrameReader:
    """Framing for a buffer-filling transport (asyncio.BufferedProtocol): memory grows
    with the bytes that arrived, never with what a size prefix announces.

    The transport asks `get_buffer()` where to put the next bytes and reports
    `buffer_updated(n)`; `next_frame()` then returns complete payloads as writable
    `bytearray`s owned by the caller.

    * Reads land in a *scratch* buffer that many readers may share (one per event
      loop): `buffer_updated` copies every complete frame out and keeps the start of
      an incomplete one, so the scratch is free again when it returns. An idle
      connection holds no receive buffer at all.
    * An incomplete frame gets its own buffer, sized to what has arrived, at least
      doubled as more comes, never past the announced size: a 4-byte prefix announcing
      100 MiB costs 4 bytes. `queued_bytes` (optional) says how many bytes are already
      waiting in the kernel, so a frame that has in fact arrived is sized at once and
      not grown step by step.
    * A frame of `_DIRECT_MIN_BYTES` or more is then received straight into its own
      buffer (no copy through the scratch).
    * A bad size prefix (negative, or above `max_frame_bytes`) is raised by
      `next_frame` after the frames before it, as `InvalidFrame` / `FrameTooLarge`;
      the reader is then unusable and the connection should be closed.
    """

    __slots__ = (
        "_direct",
        "_error",
        "_head",
        "_max_frame_bytes",
        "_partial",
        "_partial_filled",
        "_partial_size",
        "_queued_bytes",
        "_ready",
        "_scratch",
    )

    def __init__(
        self,
        max_frame_bytes: int,
        scratch: bytearray | None = None,
        queued_bytes: Callable[[], int] | None = None,
    ) -> None:
        if max_frame_bytes < 0:
            raise ValueError(
                f"max frame bytes must not be negative max_frame_bytes={max_frame_bytes}"
            )
        self._max_frame_bytes = max_frame_bytes
        self._scratch = scratch if scratch is not None else bytearray(SCRATCH_BYTES)
        self._queued_bytes = queued_bytes
        self._head = bytearray()  # the first bytes of a size prefix that is not whole yet
        self._partial: bytearray | None = None  # an incomplete frame's payload so far
        self._partial_size = 0
        self._partial_filled = 0
        self._direct = False  # the last get_buffer() handed out the partial frame's buffer
        self._ready: deque[bytearray] = deque()
        self._error: ProtocolError | None = None

    @property
    def max_frame_bytes(self) -> int:
        """The largest frame accepted; a size prefix read from now on is held to it
        (a SASL connection raises it once authenticated)."""
        return self._max_frame_bytes

    @max_frame_bytes.setter
    def max_frame_bytes(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"max frame bytes must not be negative max_frame_bytes={value}")
        self._max_frame_bytes = value

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a frame (a partial frame at EOF)."""
        partial = self._partial_filled + _PREFIX_BYTES if self._partial is not None else 0
        return len(self._head) + partial + sum(len(f) + _PREFIX_BYTES for f in self._ready)

    @property
    def allocated_bytes(self) -> int:
        """Bytes this reader holds for incomplete and unreturned frames (not the scratch)."""
        partial = len(self._partial) if self._partial is not None else 0
        return len(self._head) + partial + sum(len(f) for f in self._ready)

    @property
    def ready_frames(self) -> int:
        """Complete frames waiting for `next_frame()`."""
        return len(self._ready)

    def get_buffer(self) -> memoryview:
        """Where the transport should write the next received bytes (never empty)."""
        partial = self._partial
        if partial is not None and self._partial_size >= _DIRECT_MIN_BYTES:
            if self._partial_filled == len(partial):
                partial = self._partial = self._grown(partial, self._partial_filled)
            self._direct = True
            return memoryview(partial)[self._partial_filled :]
        self._direct = False
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int) -> None:
        if self._direct:
            self._partial_filled += nbytes
            self._finish_partial()
            return
        if self._error is None:
            with memoryview(self._scratch) as view:
                self._split(view[:nbytes])

    def next_frame(self) -> bytearray | None:
        """The next complete payload, or None until more bytes arrive.

        Raises FrameTooLarge or InvalidFrame for a bad size prefix once the frames
        before it have been returned.
        """
        if self._ready:
            return self._ready.popleft()
        if self._error is not None:
            raise self._error
        return None

    # -- internals ---------------------------------------------------------------------

    def _split(self, data: memoryview) -> None:
        """Take every byte of `data` (a slice of the scratch) into frames or state."""
        position, end = 0, len(data)
        while position < end:
            partial = self._partial
            if partial is not None:
                take = min(self._partial_size - self._partial_filled, end - position)
                filled = self._partial_filled
                if filled + take > len(partial):
                    partial = self._partial = self._grown(partial, filled + take)
                partial[filled : filled + take] = data[position : position + take]
                self._partial_filled = filled + take
                position += take
                self._finish_partial()
                continue
            head = self._head
            if head or end - position < _PREFIX_BYTES:
                take = min(_PREFIX_BYTES - len(head), end - position)
                head += data[position : position + take]
                position += take
                if len(head) < _PREFIX_BYTES:
                    return
                prefix = bytes(head)
                head.clear()
            else:
                prefix = bytes(data[position : position + _PREFIX_BYTES])
                position += _PREFIX_BYTES
            (size,) = _SIZE.unpack(prefix)
            if size < 0 or size > self._max_frame_bytes:
                self._error = self.size_error(size, self._max_frame_bytes, prefix)
                return
            if end - position >= size:
                self._ready.append(bytearray(data[position : position + size]))
                position += size
            else:
                self._partial_size, self._partial_filled = size, 0
                self._partial = bytearray()

    def _finish_partial(self) -> None:
        partial = self._partial
        if partial is not None and self._partial_filled == self._partial_size:
            if len(partial) != self._partial_size:  # pragma: no cover - sizes never exceed
                del partial[self._partial_size :]
            self._ready.append(partial)
            self._partial, self._partial_size, self._partial_filled = None, 0, 0

    def _grown(self, partial: bytearray, at_least: int) -> bytearray:
        """A bigger buffer for the partial frame with its bytes so far: room for what
        has arrived or is already waiting, at least double, never past its size."""
        filled = self._partial_filled
        waiting = self._queued_bytes() if self._queued_bytes is not None else 0
        target = max(at_least + waiting, 2 * filled, filled + _GROW_MIN_BYTES)
        grown = bytearray(min(self._partial_size, target))
        grown[:filled] = memoryview(partial)[:filled]
        return grown

    @staticmethod
    def size_error(size: int, max_frame_bytes: int, prefix: bytes) -> ProtocolError:
        """The error for a size prefix that is negative or above `max_frame_bytes`."""
        if size < 0:
            return InvalidFrame(f"negative frame size size={size}{_looks_like(prefix)}")
        return FrameTooLarge(
            f"frame larger than allowed size={size} max_frame_bytes={max_frame_bytes}"
            f"{_looks_like(prefix)}"
        )


def _looks_like(prefix: bytes) -> str:
    """What bytes that are not a Kafka size prefix probably are, for the log line."""
    head = prefix[:_PREFIX_BYTES]
    if len(head) >= 3 and head[0] == 0x16 and head[1] == 0x03 and head[2] <= 0x04:
        return (
            " looks_like=tls_client_hello (a TLS client on a plaintext listener: check the"
            " client's security.protocol)"
        )
    if head in _HTTP_METHODS:
        return " looks_like=http_request (an HTTP client on the Kafka port)"
    return ""


_HTTP_METHODS = frozenset(
    (b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC", b"CONN", b"PRI ")
)


def frame(parts: Iterable[bytes]) -> list[bytes]:
    """Prefix payload parts with their total size, ready for ``writelines``."""
    chunks = list(parts)
    return [_SIZE.pack(sum(map(len, chunks))), *chunks]
