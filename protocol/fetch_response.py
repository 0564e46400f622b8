"""Fetch responses (v4-v12), encoded without copying record bytes.

Owns the broker's hot-path writer for Fetch (api key 1). kio's generic
writer copies every record set into one ``BytesIO`` and then into ``bytes``;
this one returns the wire form as a list of buffers for
``transport.writelines``: small header pieces (coalesced into ``bytearray``s)
interleaved with the caller's record buffers, passed through by identity.

Guarantees:

* ``b"".join(encode_fetch_response(...))`` is a whole frame -- size prefix,
  response header (v1 with an empty tagged-field section for flexible v12,
  v0 otherwise), body -- that ``protocol.codec.decode_response`` reads back
  field for field, for every version 4-12 (property tests against kio).
* The first element holds the size prefix and the response header; the
  record buffers of every non-empty record set appear in the list as the
  very objects the caller passed (the caller must not mutate them until they
  are written). A memoryview counts ``nbytes``, whatever its format.
* Fields per version follow Kafka's FetchResponse.json: throttle_time_ms
  (all), error_code and session_id (v7+), last_stable_offset (v4+),
  log_start_offset (v5+), aborted_transactions (null unless given: read_committed),
  preferred_read_replica (v11+, always -1), empty tagged fields after each
  partition, topic and the body in v12.
* A partition whose ``records`` is None is sent as a null record set; an
  empty sequence as an empty, non-null one.
* A value with no wire form (out of range, name too long, version outside
  4-12, ``records`` given as one buffer instead of a list of buffers) raises
  ``EncodeError``: a broker bug, never the peer's fault.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from tidelog.protocol._types import BytesLike
from tidelog.protocol._varint import write_uvarint
from tidelog.protocol.errors import EncodeError

__all__ = [
    "FIRST_VERSION",
    "LAST_VERSION",
    "FetchPartitionResult",
    "encode_fetch_response",
]

FIRST_VERSION = 4
LAST_VERSION = 12
_FIRST_FLEXIBLE_VERSION = 12
_FIRST_TOP_LEVEL_ERROR_VERSION = 7
_FIRST_LOG_START_OFFSET_VERSION = 5
_FIRST_PREFERRED_REPLICA_VERSION = 11

_NULL = -1
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_SIZE_AND_CORRELATION_ID = struct.Struct(">ii")
_THROTTLE = struct.Struct(">i")
_THROTTLE_ERROR_SESSION = struct.Struct(">ihi")
_ABORTED = struct.Struct(">qq")
_MAX_STRING_BYTES = 0x7FFF
_MAX_RECORDS_BYTES = 0x7FFFFFFF - 1  # compact length is stored as length + 1


class FetchPartitionResult(NamedTuple):
    """One partition of a Fetch response; ``records`` are concatenated on the wire."""

    partition_index: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    records: Sequence[BytesLike] | None
    # read_committed: (producer_id, first_offset) of aborted transactions in `records`;
    # None is sent as null (read_uncommitted)
    aborted: Sequence[tuple[int, int]] | None = None


class _Layout(NamedTuple):
    """How one Fetch response version lays out its fixed-width fields."""

    flexible: bool
    top_level_error: bool
    log_start_offset: bool
    # partition_index, error_code, high_watermark, last_stable_offset,
    # [log_start_offset]; then aborted_transactions, then the constant
    # [preferred_read_replica = -1].
    partition_head: struct.Struct
    partition_tail: struct.Struct | None


def _layout(version: int) -> _Layout:
    flexible = version >= _FIRST_FLEXIBLE_VERSION
    log_start_offset = version >= _FIRST_LOG_START_OFFSET_VERSION
    fmt = ">ihqq" + ("q" if log_start_offset else "")
    tail = struct.Struct(">i") if version >= _FIRST_PREFERRED_REPLICA_VERSION else None
    return _Layout(
        flexible=flexible,
        top_level_error=version >= _FIRST_TOP_LEVEL_ERROR_VERSION,
        log_start_offset=log_start_offset,
        partition_head=struct.Struct(fmt),
        partition_tail=tail,
    )


_LAYOUTS = {version: _layout(version) for version in range(FIRST_VERSION, LAST_VERSION + 1)}


def encode_fetch_response(
    correlation_id: int,
    api_version: int,
    *,
    throttle_ms: int,
    error_code: int,
    session_id: int,
    topics: Sequence[tuple[str, Sequence[FetchPartitionResult]]],
) -> list[bytes | memoryview | bytearray]:
    """Size prefix + response header + body, as buffers ready for ``writelines``."""
    layout = _LAYOUTS.get(api_version)
    if layout is None:
        raise EncodeError(
            f"no fetch fast path for this version api_key=1 api_version={api_version}"
        )
    try:
        return _encode(correlation_id, layout, throttle_ms, error_code, session_id, topics)
    except (struct.error, OverflowError, ValueError, TypeError) as error:
        raise EncodeError(
            f"cannot encode fetch response: {error} correlation_id={correlation_id}"
            f" api_version={api_version}"
        ) from None


def _encode(
    correlation_id: int,
    layout: _Layout,
    throttle_ms: int,
    error_code: int,
    session_id: int,
    topics: Sequence[tuple[str, Sequence[FetchPartitionResult]]],
) -> list[bytes | memoryview | bytearray]:
    head = bytearray(_SIZE_AND_CORRELATION_ID.pack(0, correlation_id))  # size patched below
    if layout.flexible:
        head.append(0)  # response header v1: no tagged fields
    if layout.top_level_error:
        head += _THROTTLE_ERROR_SESSION.pack(throttle_ms, error_code, session_id)
    else:
        head += _THROTTLE.pack(throttle_ms)
    _write_length(head, len(topics), layout.flexible)
    first = head
    pieces: list[bytes | memoryview | bytearray] = [head]
    size = 0  # bytes in the pieces before ``head``, which is always the last one
    for name, partitions in topics:
        _write_name(head, name, layout.flexible)
        _write_length(head, len(partitions), layout.flexible)
        for partition in partitions:
            records = partition.records
            records_size = _write_partition_head(head, partition, layout)
            if records is not None and records_size:
                size += len(head) + records_size
                pieces += records
                head = bytearray()
                pieces.append(head)
            if layout.flexible:
                head.append(0)  # partition tagged fields
        if layout.flexible:
            head.append(0)  # topic tagged fields
    if layout.flexible:
        head.append(0)  # body tagged fields
    size += len(head)
    if not head:
        pieces.pop()
    _INT32.pack_into(first, 0, size - _INT32.size)
    return pieces


def _write_partition_head(out: bytearray, partition: FetchPartitionResult, layout: _Layout) -> int:
    """Append the fixed fields and the record-set length; return that length (null: 0)."""
    if layout.log_start_offset:
        out += layout.partition_head.pack(
            partition.partition_index,
            partition.error_code,
            partition.high_watermark,
            partition.last_stable_offset,
            partition.log_start_offset,
        )
    else:
        out += layout.partition_head.pack(
            partition.partition_index,
            partition.error_code,
            partition.high_watermark,
            partition.last_stable_offset,
        )
    aborted = partition.aborted
    if aborted is None:
        _write_length(out, _NULL, layout.flexible)
    else:
        _write_length(out, len(aborted), layout.flexible)
        for producer_id, first_offset in aborted:
            out += _ABORTED.pack(producer_id, first_offset)
            if layout.flexible:
                out.append(0)  # aborted transaction tagged fields
    if layout.partition_tail is not None:
        out += layout.partition_tail.pack(_NULL)  # preferred_read_replica
    if partition.records is None:
        _write_length(out, _NULL, layout.flexible)
        return 0
    records_size = _records_size(partition.records)
    _write_length(out, records_size, layout.flexible)
    return records_size


def _records_size(records: Sequence[BytesLike]) -> int:
    if isinstance(records, bytes | bytearray | memoryview):
        # A lone buffer is a sequence of ints: it would be spliced in byte by byte.
        raise TypeError(f"records must be a list of buffers type={type(records).__name__}")
    size = sum(
        buffer.nbytes if isinstance(buffer, memoryview) else len(buffer) for buffer in records
    )
    if size > _MAX_RECORDS_BYTES:
        raise ValueError(f"record set too large size={size} max={_MAX_RECORDS_BYTES}")
    return size


def _write_name(out: bytearray, name: str, flexible: bool) -> None:
    encoded = name.encode("utf-8")
    if len(encoded) > _MAX_STRING_BYTES:
        raise ValueError(f"topic name too long bytes={len(encoded)} max={_MAX_STRING_BYTES}")
    if flexible:
        write_uvarint(out, len(encoded) + 1)
    else:
        out += _INT16.pack(len(encoded))
    out += encoded


def _write_length(out: bytearray, length: int, flexible: bool) -> None:
    """Array count or bytes length; -1 is null (compact: length + 1, so null is 0)."""
    if flexible:
        write_uvarint(out, length + 1)
    else:
        out += _INT32.pack(length)
