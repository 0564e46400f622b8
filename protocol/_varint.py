"""Kafka's variable-length integers (protobuf-style base-128, zigzag for signed).

Owns the varint encodings used by tagged fields (unsigned) and by records
inside a batch (signed, zigzag). Readers take ``(buffer, position)`` and
return ``(value, next_position)``; they raise ``ValueError`` for a varint
that runs past the buffer or past its maximum width, and never read beyond
the buffer. Writers append to a ``bytearray``.
"""

from __future__ import annotations

from tidelog.protocol._types import BytesLike

__all__ = [
    "read_uvarint",
    "read_varint",
    "read_varlong",
    "skip_tagged_fields",
    "write_uvarint",
    "write_varint",
    "write_varlong",
]

_INT_MAX_BYTES = 5
_LONG_MAX_BYTES = 10


def read_uvarint(
    buffer: BytesLike, position: int, max_bytes: int = _INT_MAX_BYTES
) -> tuple[int, int]:
    """Read an unsigned varint of at most ``max_bytes`` bytes."""
    end = len(buffer)
    value = 0
    shift = 0
    for index in range(position, min(end, position + max_bytes)):
        byte = buffer[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    if position + max_bytes > end:
        raise ValueError(f"varint runs past the end position={position} length={end}")
    raise ValueError(f"varint longer than allowed position={position} max_bytes={max_bytes}")


def read_varint(buffer: BytesLike, position: int) -> tuple[int, int]:
    """Read a zigzag-encoded signed 32-bit varint."""
    raw, position = read_uvarint(buffer, position, _INT_MAX_BYTES)
    return (raw >> 1) ^ -(raw & 1), position


def read_varlong(buffer: BytesLike, position: int) -> tuple[int, int]:
    """Read a zigzag-encoded signed 64-bit varint."""
    raw, position = read_uvarint(buffer, position, _LONG_MAX_BYTES)
    return (raw >> 1) ^ -(raw & 1), position


def skip_tagged_fields(buffer: BytesLike, position: int) -> int:
    """Skip a tagged-field section (count, then tag/size/bytes triples)."""
    count, position = read_uvarint(buffer, position)
    for _ in range(count):
        _tag, position = read_uvarint(buffer, position)
        size, position = read_uvarint(buffer, position)
        position += size
        if position > len(buffer):
            raise ValueError(f"tagged field runs past the end length={len(buffer)}")
    return position


def write_uvarint(out: bytearray, value: int) -> None:
    """Append an unsigned varint; ``value`` must not be negative."""
    if value < 0:
        raise ValueError(f"unsigned varint cannot be negative value={value}")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def write_varint(out: bytearray, value: int) -> None:
    """Append a zigzag-encoded signed 32-bit varint."""
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"varint out of int32 range value={value}")
    write_uvarint(out, ((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def write_varlong(out: bytearray, value: int) -> None:
    """Append a zigzag-encoded signed 64-bit varint."""
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"varlong out of int64 range value={value}")
    write_uvarint(out, ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)
