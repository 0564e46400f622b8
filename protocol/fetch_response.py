"""Fetch responses (v4-v16), encoded without copying record bytes.

Owns the broker's hot-path writer for Fetch (api key 1). kio's generic
writer copies every record set into one ``BytesIO`` and then into ``bytes``;
this one returns the wire form as a list of buffers for
``transport.writelines``: small header pieces (coalesced into ``bytearray``s)
interleaved with the caller's record buffers, passed through by identity.

Guarantees:

* ``b"".join(encode_fetch_response(...))`` is a whole frame -- size prefix,
  response header (v1 with an empty tagged-field section for flexible v12,
  v0 otherwise), body -- that ``protocol.codec.decode_response`` reads back
  field for field, for every version 4-16 (property tests against kio).
* The first element holds the size prefix and the response header; the
  record buffers of every non-empty record set appear in the list as the
  very objects the caller passed (the caller must not mutate them until they
  are written). A memoryview counts ``nbytes``, whatever its format.
* Fields per version follow Kafka's FetchResponse.json: throttle_time_ms
  (all), error_code and session_id (v7+), last_stable_offset (v4+),
  log_start_offset (v5+), aborted_transactions (null unless given: read_committed),
  preferred_read_replica (v11+, always -1), tagged fields after each
  partition, topic and the body from v12. Topics are named by name up to v12
  and by topic id (a ``uuid.UUID``) from v13 (KIP-516).
* KIP-951 hints: a partition's ``current_leader`` (leader id, epoch) is its
  tagged field 1 (v12+), ``node_endpoints`` the body's tagged field 0
  (v16+). Each is written only when it differs from its default ((-1, -1),
  empty), as Kafka and kio write tagged fields.
* A partition whose ``records`` is None is sent as a null record set; an
  empty sequence as an empty, non-null one.
* A value with no wire form (out of range, name too long, version outside
  4-16, a topic name where the version wants an id or the other way round, a
  hint the version has no field for, ``records`` given as one buffer instead
  of a list of buffers) raises ``EncodeError``: a broker bug, never the
  peer's fault.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from typing import NamedTuple

from tidelog.protocol._types import BytesLike
from tidelog.protocol._varint import write_uvarint
from tidelog.protocol.errors import EncodeError

__all__ = [
    "FIRST_VERSION",
    "LAST_VERSION",
    "FetchPartitionResult",
    "NodeEndpoint",
    "encode_fetch_response",
]

FIRST_VERSION = 4
LAST_VERSION = 16
_FIRST_FLEXIBLE_VERSION = 12
_FIRST_TOPIC_ID_VERSION = 13
_FIRST_NODE_ENDPOINTS_VERSION = 16
_CURRENT_LEADER_TAG = 1  # in each partition's tagged fields
_NODE_ENDPOINTS_TAG = 0  # in the body's tagged fields
_NO_LEADER = (-1, -1)
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
_LEADER_AND_EPOCH = struct.Struct(">ii")
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
    # KIP-951 (leader id, leader epoch) for a partition this broker does not lead;
    # None or (-1, -1): not sent
    current_leader: tuple[int, int] | None = None


class NodeEndpoint(NamedTuple):
    """A broker named by a ``current_leader`` hint, and where the client reaches it."""

    node_id: int
    host: str
    port: int
    rack: str | None = None


class _Layout(NamedTuple):
    """How one Fetch response version lays out its fixed-width fields."""

    flexible: bool
    topic_ids: bool
    node_endpoints: bool
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
        topic_ids=version >= _FIRST_TOPIC_ID_VERSION,
        node_endpoints=version >= _FIRST_NODE_ENDPOINTS_VERSION,
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
    topics: Sequence[tuple[str | uuid.UUID, Sequence[FetchPartitionResult]]],
    node_endpoints: Sequence[NodeEndpoint] = (),
) -> list[bytes | memoryview | bytearray]:
    """Size prefix + response header + body, as buffers ready for ``writelines``.

    Each topic is named by its name (v4-12) or its id (v13+)."""
    layout = _LAYOUTS.get(api_version)
    if layout is None:
        raise EncodeError(
            f"no fetch fast path for this version api_key=1 api_version={api_version}"
        )
    try:
        return _encode(
            correlation_id, layout, throttle_ms, error_code, session_id, topics, node_endpoints
        )
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
    topics: Sequence[tuple[str | uuid.UUID, Sequence[FetchPartitionResult]]],
    node_endpoints: Sequence[NodeEndpoint],
) -> list[bytes | memoryview | bytearray]:
    if node_endpoints and not layout.node_endpoints:
        raise ValueError("node_endpoints need fetch v16+")
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
    for topic, partitions in topics:
        _write_topic(head, topic, layout)
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
                _write_partition_tags(head, partition.current_leader)
            elif partition.current_leader not in (None, _NO_LEADER):
                raise ValueError("current_leader needs fetch v12+")
        if layout.flexible:
            head.append(0)  # topic tagged fields
    if layout.flexible:
        _write_body_tags(head, node_endpoints)
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


def _write_partition_tags(out: bytearray, current_leader: tuple[int, int] | None) -> None:
    if current_leader is None or current_leader == _NO_LEADER:
        out.append(0)
        return
    out += b"\x01"  # one tagged field
    write_uvarint(out, _CURRENT_LEADER_TAG)
    write_uvarint(out, _LEADER_AND_EPOCH.size + 1)
    out += _LEADER_AND_EPOCH.pack(*current_leader)
    out.append(0)  # LeaderIdAndEpoch's own tagged fields


def _write_body_tags(out: bytearray, node_endpoints: Sequence[NodeEndpoint]) -> None:
    if not node_endpoints:
        out.append(0)
        return
    field = bytearray()
    write_uvarint(field, len(node_endpoints) + 1)
    for endpoint in node_endpoints:
        field += _INT32.pack(endpoint.node_id)
        _write_name(field, endpoint.host, flexible=True)
        field += _INT32.pack(endpoint.port)
        if endpoint.rack is None:
            field.append(0)
        else:
            _write_name(field, endpoint.rack, flexible=True)
        field.append(0)  # NodeEndpoint's tagged fields
    out += b"\x01"  # one tagged field
    write_uvarint(out, _NODE_ENDPOINTS_TAG)
    write_uvarint(out, len(field))
    out += field


def _write_topic(out: bytearray, topic: str | uuid.UUID, layout: _Layout) -> None:
    if layout.topic_ids:
        if not isinstance(topic, uuid.UUID):
            raise TypeError(f"fetch v13+ names topics by id type={type(topic).__name__}")
        out += topic.bytes
    elif isinstance(topic, str):
        _write_name(out, topic, layout.flexible)
    else:
        raise TypeError(f"fetch v4-12 names topics by name type={type(topic).__name__}")


def _write_name(out: bytearray, name: str, flexible: bool) -> None:
    encoded = name.encode("utf-8")
    if len(encoded) > _MAX_STRING_BYTES:
        raise ValueError(f"string too long bytes={len(encoded)} max={_MAX_STRING_BYTES}")
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
