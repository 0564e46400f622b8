"""Produce request bodies (v3-v11), decoded without copying record bytes.

Owns the broker's hot-path reader for Produce (api key 0). kio's generic
reader copies every partition's ``records`` into a new ``bytes``; this one
returns each record set as a ``memoryview`` slice of the caller's frame. When
the frame is a ``bytearray`` the slices are writable, so the broker can patch
base offsets in place (``protocol.batch.set_base_offsets``) and store the
batch without a single user-space copy.

Guarantees:

* Field for field the same result as ``protocol.codec.decode_request`` for
  every version 3-11, checked by property tests against kio and by every
  captured real-client Produce frame.
* v9-11 (flexible; v10 and v11 change only the response): compact strings,
  arrays and nullable bytes with uvarint lengths, and a tagged-field section
  after each partition, each topic and the body; tagged fields are skipped (v3-v11 define none).
* Anything truncated or malformed raises ``DecodeError`` with a lowercase
  message ending in ``key=value`` context; ``IndexError``, ``struct.error``,
  ``ValueError`` and ``UnicodeDecodeError`` never leak. Every strict prefix
  of a valid body is rejected, tagged-field sections included: Kafka always
  writes the tagged-field count, so a missing one means a truncated frame.
* Bytes after the body are ignored, as in ``protocol.codec``.
* Hostile counts cost nothing: a topic or partition count whose elements
  could not fit in the bytes left (at their minimum encoded size) is refused
  before the first element is read, and a varint above 32 bits is refused.
  Lists grow only with elements actually read, never by an announced count.
* An ``api_version`` outside 3-11 raises ``UnsupportedRequest``; a negative
  ``body_offset`` is the caller's bug and raises ``ValueError``.

Each view keeps the whole frame alive, and a ``bytearray`` with live views
cannot be resized: hand this function a frame the caller owns outright (as
``FrameReader.next_frame`` returns), not a shared receive buffer.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from tidelog.protocol._types import BytesLike
from tidelog.protocol.errors import DecodeError, UnsupportedRequest

__all__ = [
    "FIRST_VERSION",
    "LAST_VERSION",
    "PartitionRecords",
    "ProduceRequestView",
    "TopicRecords",
    "decode_produce_request",
]

FIRST_VERSION = 3
LAST_VERSION = 11
_FIRST_FLEXIBLE_VERSION = 9

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_ACKS_AND_TIMEOUT = struct.Struct(">hi")
_INDEX_AND_LENGTH = struct.Struct(">ii")
_MAX_UVARINT_BYTES = 5
_MAX_UVARINT = 0xFFFFFFFF
# Smallest encoding of a topic (name, partition count) and of a partition (index,
# records length), legacy / flexible (compact lengths, one tagged-field count each).
_MIN_TOPIC_SIZE = (6, 3)
_MIN_PARTITION_SIZE = (8, 6)

PartitionRecords = tuple[int, memoryview | None]
"""(partition index, record set or None); the view is a slice of the frame."""
TopicRecords = tuple[str, list[PartitionRecords]]
"""(topic name, partitions in request order)."""


class ProduceRequestView(NamedTuple):
    """A decoded Produce body whose record sets still live in the request frame."""

    transactional_id: str | None
    acks: int
    timeout_ms: int
    topics: list[TopicRecords]


class _Cursor:
    """Read position over one frame; every read checks bounds before touching bytes."""

    __slots__ = ("api_version", "flexible", "position", "size", "view")

    def __init__(self, view: memoryview, position: int, api_version: int) -> None:
        self.view = view
        self.size = len(view)
        self.position = position
        self.api_version = api_version
        self.flexible = api_version >= _FIRST_FLEXIBLE_VERSION

    def fail(self, what: str, field: str, **context: int) -> DecodeError:
        """The error for ``what`` went wrong reading ``field`` at the current position."""
        details = "".join(f" {key}={value}" for key, value in context.items())
        return DecodeError(
            f"produce request {what} field={field}{details} position={self.position}"
            f" length={self.size} api_version={self.api_version}"
        )

    def take(self, size: int, field: str) -> int:
        """Advance past ``size`` bytes; return where they start."""
        start = self.position
        if start + size > self.size:
            raise self.fail("truncated", field, needed=size)
        self.position = start + size
        return start

    def uvarint(self, field: str) -> int:
        """An unsigned varint of at most 5 bytes (a 32-bit length or count)."""
        view, position = self.view, self.position
        end = min(position + _MAX_UVARINT_BYTES, self.size)
        value = shift = 0
        while position < end:
            byte = view[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if value > _MAX_UVARINT:
                    raise self.fail("has a varint above 32 bits", field, value=value)
                self.position = position
                return value
            shift += 7
        raise self.fail("has a truncated or overlong varint", field)


def decode_produce_request(
    frame: BytesLike, body_offset: int, api_version: int
) -> ProduceRequestView:
    """Decode the Produce body at ``body_offset``; record sets are views of ``frame``."""
    if not FIRST_VERSION <= api_version <= LAST_VERSION:
        raise UnsupportedRequest(
            f"no produce fast path for this version api_key=0 api_version={api_version}"
        )
    if body_offset < 0:
        raise ValueError(f"body offset must not be negative body_offset={body_offset}")
    cursor = _Cursor(memoryview(frame).cast("B"), body_offset, api_version)
    transactional_id = _read_nullable_string(cursor, "transactional_id")
    start = cursor.take(_ACKS_AND_TIMEOUT.size, "acks_and_timeout_ms")
    acks, timeout_ms = _ACKS_AND_TIMEOUT.unpack_from(cursor.view, start)
    count = _read_count(cursor, "topic_data", _MIN_TOPIC_SIZE[cursor.flexible])
    topics = [_read_topic(cursor) for _ in range(count)]
    _skip_tagged_fields(cursor, "request")
    return ProduceRequestView(transactional_id, acks, timeout_ms, topics)


def _read_topic(cursor: _Cursor) -> TopicRecords:
    name = _read_string(cursor, "topic_name")
    count = _read_count(cursor, "partition_data", _MIN_PARTITION_SIZE[cursor.flexible])
    partitions = [_read_partition(cursor) for _ in range(count)]
    _skip_tagged_fields(cursor, "topic_data")
    return name, partitions


def _read_partition(cursor: _Cursor) -> PartitionRecords:
    if cursor.flexible:
        start = cursor.take(_INT32.size, "partition_index")
        (index,) = _INT32.unpack_from(cursor.view, start)
        length = cursor.uvarint("records") - 1
    else:  # one unpack for both fixed-width fields: this loop is the hot one
        start = cursor.take(_INDEX_AND_LENGTH.size, "partition_index_and_records_length")
        index, length = _INDEX_AND_LENGTH.unpack_from(cursor.view, start)
    records = _read_records(cursor, length)
    _skip_tagged_fields(cursor, "partition_data")
    return index, records


def _read_length(cursor: _Cursor, fixed: struct.Struct, field: str) -> int:
    """A length or count: compact (uvarint n+1, 0 for null) or fixed-width; -1 is null."""
    if cursor.flexible:
        return cursor.uvarint(field) - 1
    start = cursor.take(fixed.size, field)
    length: int = fixed.unpack_from(cursor.view, start)[0]
    return length


def _read_count(cursor: _Cursor, field: str, min_element_size: int) -> int:
    """Element count of a non-nullable array, refused if the bytes left cannot hold it."""
    count = _read_length(cursor, _INT32, field)
    if count < 0:
        raise cursor.fail("has a null or negative array count", field, count=count)
    if count * min_element_size > cursor.size - cursor.position:
        raise cursor.fail(
            "has an array count the bytes left cannot hold",
            field,
            count=count,
            min_element_size=min_element_size,
        )
    return count


def _read_nullable_string(cursor: _Cursor, field: str) -> str | None:
    length = _read_length(cursor, _INT16, field)
    if length == -1:
        return None
    return _read_utf8(cursor, length, field)


def _read_string(cursor: _Cursor, field: str) -> str:
    return _read_utf8(cursor, _read_length(cursor, _INT16, field), field)


def _read_utf8(cursor: _Cursor, length: int, field: str) -> str:
    if length < 0:
        raise cursor.fail("has a null or negative string length", field, string_length=length)
    start = cursor.take(length, field)
    try:
        return str(cursor.view[start : start + length], "utf-8")
    except UnicodeDecodeError:
        cursor.position = start
        raise cursor.fail("has a string that is not utf-8", field) from None


def _read_records(cursor: _Cursor, length: int) -> memoryview | None:
    """The record set of ``length`` bytes at the cursor, as a view of the frame."""
    if length < 0:
        if length == -1:
            return None
        raise cursor.fail("has an invalid records length", "records", records_length=length)
    start = cursor.take(length, "records")
    return cursor.view[start : start + length]


def _skip_tagged_fields(cursor: _Cursor, where: str) -> None:
    if not cursor.flexible:
        return
    position = cursor.position
    if position < cursor.size and cursor.view[position] == 0:  # the usual: no fields
        cursor.position = position + 1
        return
    field = f"{where}_tagged_fields"
    for _ in range(cursor.uvarint(field)):
        cursor.uvarint(field)  # tag: Produce v9-11 define none, so every tag is skipped
        cursor.take(cursor.uvarint(field), field)
