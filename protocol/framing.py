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

__all__ = ["FrameDecoder", "frame"]

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


def frame(parts: Iterable[bytes]) -> list[bytes]:
    """Prefix payload parts with their total size, ready for ``writelines``."""
    chunks = list(parts)
    return [_SIZE.pack(sum(map(len, chunks))), *chunks]
