"""Record batch v2 headers: parse, validate and re-offset without decoding records.

Owns the fixed 61-byte header of Kafka's record batch format (magic 2)::

    base_offset int64 | batch_length int32 | partition_leader_epoch int32 |
    magic int8 | crc uint32 | attributes int16 | last_offset_delta int32 |
    base_timestamp int64 | max_timestamp int64 | producer_id int64 |
    producer_epoch int16 | base_sequence int32 | records_count int32 | records...

``batch_length`` counts the bytes after itself; the CRC-32C covers the bytes
from ``attributes`` to the end of the batch, so ``base_offset`` and
``partition_leader_epoch`` can be rewritten without recomputing it.

Guarantees: this is the broker's hot path, so nothing here decompresses or
decodes a record; each batch costs one struct unpack (plus one C CRC pass in
``validate_produce_records``). Every rejection is a ``RecordBatchError``
subclass carrying the Kafka error code for the partition's response.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from enum import IntEnum
from typing import NamedTuple

from crc32c import crc32c

from tidelog.protocol._types import BytesLike
from tidelog.protocol.errors import (
    CorruptRecordBatch,
    InvalidRecordBatch,
    UnsupportedCompression,
    UnsupportedMagic,
)

__all__ = [
    "HEADER_BYTES",
    "BatchHeader",
    "Compression",
    "TimestampType",
    "check_crc",
    "iter_batches",
    "patch_base_offset",
    "patch_partition_leader_epoch",
    "rewrite_crc",
    "set_base_offsets",
    "validate_produce_records",
    "write_header",
]

_HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_BYTES = _HEADER.size  # 61
# base_offset, batch_length, partition_leader_epoch, magic: enough to tell
# a v2 batch from a legacy message set, whose magic byte sits at the same place.
_PREAMBLE = struct.Struct(">qiib")
_BASE_OFFSET = struct.Struct(">q")
_CRC = struct.Struct(">I")
_BATCH_LENGTH = struct.Struct(">i")
_CRC_AT = 17
_LEADER_EPOCH = struct.Struct(">i")
_LEADER_EPOCH_AT = 12
_LOG_OVERHEAD = 12  # base_offset + batch_length precede the counted bytes
_CRC_FROM = 21  # offset of attributes within a batch
_MIN_BATCH_LENGTH = HEADER_BYTES - _LOG_OVERHEAD

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20


class Compression(IntEnum):
    """Codec id in the low three bits of a batch's attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class TimestampType(IntEnum):
    """Meaning of a batch's timestamps (attributes bit 3)."""

    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class BatchHeader(NamedTuple):
    """The fixed fields of a v2 record batch, in wire order."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies, header included."""
        return self.batch_length + _LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        """The offset the batch after this one starts at."""
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> Compression:
        """Raises ValueError for codec ids 5-7 (``validate_produce_records`` rejects them)."""
        return Compression(self.attributes & _COMPRESSION_MASK)

    @property
    def timestamp_type(self) -> TimestampType:
        if self.attributes & _TIMESTAMP_TYPE_BIT:
            return TimestampType.LOG_APPEND_TIME
        return TimestampType.CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_BIT)


def iter_batches(
    records: BytesLike, *, allow_partial: bool = False
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) for each batch in a record set.

    A trailing partial batch (legal at the end of a fetch response) ends the
    walk silently when ``allow_partial``; otherwise it raises
    CorruptRecordBatch. Legacy magic 0/1 raises UnsupportedMagic.
    """
    end = len(records)
    position = 0
    while position < end:
        remaining = end - position
        if remaining < _PREAMBLE.size:
            if allow_partial:
                return
            raise CorruptRecordBatch(
                f"record set truncated in batch header position={position} remaining={remaining}"
            )
        _base, batch_length, _epoch, magic = _PREAMBLE.unpack_from(records, position)
        if magic != 2:
            if magic in (0, 1):
                raise UnsupportedMagic(
                    f"legacy message format not supported magic={magic} position={position}"
                )
            raise CorruptRecordBatch(
                f"unknown record batch magic magic={magic} position={position}"
            )
        if batch_length < _MIN_BATCH_LENGTH:
            raise CorruptRecordBatch(
                f"record batch length too small batch_length={batch_length} position={position}"
            )
        size = batch_length + _LOG_OVERHEAD
        if size > remaining:
            if allow_partial:
                return
            raise CorruptRecordBatch(
                f"record batch truncated batch_length={batch_length} position={position}"
                f" remaining={remaining}"
            )
        yield position, BatchHeader._make(_HEADER.unpack_from(records, position))
        position += size


def check_crc(records: BytesLike, position: int, header: BatchHeader) -> None:
    """Raise CorruptRecordBatch unless the batch at ``position`` matches its CRC-32C."""
    actual = _crc_of(records, position, header.size)
    if actual != header.crc:
        raise CorruptRecordBatch(
            f"record batch crc mismatch expected={header.crc} actual={actual} position={position}"
        )


def validate_produce_records(records: BytesLike, *, max_batches: int = 1) -> list[BatchHeader]:
    """Check a Produce request's record set as Kafka's broker does; return its headers.

    Kafka accepts exactly one batch per partition from a v3+ producer, hence
    the default ``max_batches``.
    """
    if not records:
        raise InvalidRecordBatch("produce record set is empty length=0")
    headers: list[BatchHeader] = []
    for position, header in iter_batches(records):
        if len(headers) == max_batches:
            raise InvalidRecordBatch(
                f"too many record batches in produce max_batches={max_batches} position={position}"
            )
        if header.attributes & _COMPRESSION_MASK > Compression.ZSTD:
            raise UnsupportedCompression(
                f"unknown compression codec codec={header.attributes & _COMPRESSION_MASK}"
                f" position={position}"
            )
        check_crc(records, position, header)
        _check_client_batch(header, position)
        headers.append(header)
    return headers


def _check_client_batch(header: BatchHeader, position: int) -> None:
    if header.records_count <= 0:
        raise InvalidRecordBatch(
            f"record batch count must be positive records_count={header.records_count}"
            f" position={position}"
        )
    if header.last_offset_delta != header.records_count - 1:
        raise InvalidRecordBatch(
            f"record batch offsets disagree with count last_offset_delta={header.last_offset_delta}"
            f" records_count={header.records_count} position={position}"
        )
    if header.base_offset != 0:
        raise InvalidRecordBatch(
            f"produced batch base offset must be 0 base_offset={header.base_offset}"
            f" position={position}"
        )
    if header.is_control:
        raise InvalidRecordBatch(f"clients may not produce control batches position={position}")


def patch_base_offset(buffer: bytearray | memoryview, position: int, base_offset: int) -> None:
    """Rewrite the base offset of the batch at ``position``; its CRC stays valid."""
    _BASE_OFFSET.pack_into(buffer, position, base_offset)


def patch_partition_leader_epoch(buffer: bytearray | memoryview, position: int, epoch: int) -> None:
    """Rewrite the partition leader epoch of the batch at ``position``; CRC stays valid."""
    _LEADER_EPOCH.pack_into(buffer, position + _LEADER_EPOCH_AT, epoch)


def write_header(buffer: bytearray | memoryview, position: int, header: BatchHeader) -> None:
    """Write all header fields at ``position`` as given (``rewrite_crc`` seals it)."""
    _HEADER.pack_into(buffer, position, *header)


def rewrite_crc(buffer: bytearray | memoryview, position: int) -> int:
    """Recompute and store the CRC-32C of the batch at ``position``; return it.

    For a batch whose covered bytes changed (attributes, timestamps, records).
    """
    (batch_length,) = _BATCH_LENGTH.unpack_from(buffer, position + 8)
    crc = _crc_of(buffer, position, batch_length + _LOG_OVERHEAD)
    _CRC.pack_into(buffer, position + _CRC_AT, crc)
    return crc


def set_base_offsets(
    records: BytesLike, first_offset: int, *, partition_leader_epoch: int | None = None
) -> tuple[bytearray, int]:
    """Copy a record set, giving its batches consecutive offsets from ``first_offset``.

    Returns the patched copy and the offset after its last record.
    """
    buffer = bytearray(records)
    next_offset = first_offset
    for position, header in iter_batches(buffer):
        _BASE_OFFSET.pack_into(buffer, position, next_offset)
        if partition_leader_epoch is not None:
            _LEADER_EPOCH.pack_into(buffer, position + _LEADER_EPOCH_AT, partition_leader_epoch)
        next_offset += header.last_offset_delta + 1
    return buffer, next_offset


def _crc_of(buffer: BytesLike, position: int, size: int) -> int:
    # The slice is released at once so a bytearray stays resizable.
    covered = memoryview(buffer)[position + _CRC_FROM : position + size]
    try:
        return crc32c(covered)
    finally:
        covered.release()
