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
from collections.abc import Iterable

from protocol.errors import FrameTooLarge, InvalidFrame

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
        if size < 0:
            raise InvalidFrame(f"negative frame size size={size}")
        if size > self._max_frame_bytes:
            raise FrameTooLarge(
                f"frame larger than allowed size={size} max_frame_bytes={self._max_frame_bytes}"
            )
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
_SCRATCH_BYTES = 256 * 1024


class FrameReader:
    """Framing for a buffer-filling transport (asyncio.BufferedProtocol): no copies
    of large frames.

    The transport asks `get_buffer()` where to put the next bytes and reports
    `buffer_updated(n)`; `next_frame()` then returns complete payloads as
    `bytearray`s. Small frames are read into a shared scratch buffer and copied out
    (cheap); a frame of `_DIRECT_MIN_BYTES` or more gets a buffer of its exact size
    that the transport fills directly, so its bytes are never copied in user space.
    The returned bytearrays are writable and owned by the caller. Size checks are
    the same as FrameDecoder's.
    """

    __slots__ = ("_big", "_big_filled", "_end", "_max_frame_bytes", "_scratch", "_start")

    def __init__(self, max_frame_bytes: int) -> None:
        if max_frame_bytes < 0:
            raise ValueError(
                f"max frame bytes must not be negative max_frame_bytes={max_frame_bytes}"
            )
        self._max_frame_bytes = max_frame_bytes
        self._scratch = bytearray(_SCRATCH_BYTES)
        self._start = 0
        self._end = 0
        self._big: bytearray | None = None
        self._big_filled = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a frame (a partial frame at EOF)."""
        return self._end - self._start + self._big_filled

    def get_buffer(self) -> memoryview:
        """Where the transport should write the next received bytes (never empty)."""
        if self._big is not None:
            return memoryview(self._big)[self._big_filled :]
        if self._start == self._end:
            self._start = self._end = 0
        elif len(self._scratch) - self._end < 4096:
            pending = self._end - self._start
            self._scratch[:pending] = self._scratch[self._start : self._end]
            self._start, self._end = 0, pending
        return memoryview(self._scratch)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._big is not None:
            self._big_filled += nbytes
        else:
            self._end += nbytes

    def next_frame(self) -> bytearray | None:
        """The next complete payload, or None until more bytes arrive.

        Raises FrameTooLarge or InvalidFrame for a bad size prefix; the reader is
        then unusable and the connection should be closed.
        """
        big = self._big
        if big is not None:
            if self._big_filled < len(big):
                return None
            self._big, self._big_filled = None, 0
            return big
        available = self._end - self._start
        if available < _PREFIX_BYTES:
            return None
        (size,) = _SIZE.unpack_from(self._scratch, self._start)
        if size < 0:
            raise InvalidFrame(f"negative frame size size={size}")
        if size > self._max_frame_bytes:
            raise FrameTooLarge(
                f"frame larger than allowed size={size} max_frame_bytes={self._max_frame_bytes}"
            )
        begin = self._start + _PREFIX_BYTES
        have = self._end - begin
        if have >= size:
            self._start = begin + size
            return self._scratch[begin : begin + size]
        if size >= _DIRECT_MIN_BYTES:
            big = bytearray(size)
            big[:have] = self._scratch[begin : self._end]
            self._big, self._big_filled = big, have
            self._start = self._end = 0
        return None


def frame(parts: Iterable[bytes]) -> list[bytes]:
    """Prefix payload parts with their total size, ready for ``writelines``."""
    chunks = list(parts)
    return [_SIZE.pack(sum(map(len, chunks))), *chunks]
