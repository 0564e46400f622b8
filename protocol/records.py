"""Records inside v2 batches: decompress, decode and build (off the hot path).

Owns the per-record wire format (varint length, attributes, timestamp and
offset deltas, key, value, headers) and the four compression codecs as
Kafka clients write them:

* gzip: a gzip stream (zlib with a gzip header);
* snappy: xerial's block framing (Java client, kafka-python, aiokafka) *or*
  one raw snappy block (librdkafka) -- told apart by the xerial magic;
* lz4: the LZ4 frame format with independent blocks (Kafka rejects linked
  blocks, so ``build_batch`` never writes them);
* zstd: a zstd frame.

Guarantees: decoding checks that every record ends where its length says
and that the batch holds exactly ``records_count`` records; any mismatch or
codec failure raises ``CorruptRecordBatch``. The broker's produce and fetch
paths never call this module: batches are stored and served opaque.
``build_batch`` writes a batch whose CRC-32C and lengths are correct, for
tests, tools and broker-written control batches.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import cramjam

from tidelog.protocol._types import BytesLike
from tidelog.protocol._varint import read_varint, read_varlong, write_varint, write_varlong
from tidelog.protocol.batch import (
    HEADER_BYTES,
    BatchHeader,
    Compression,
    TimestampType,
    iter_batches,
    rewrite_crc,
    write_header,
)
from tidelog.protocol.errors import CorruptRecordBatch

__all__ = [
    "Record",
    "RecordHeader",
    "build_batch",
    "compress",
    "decode_batch",
    "decode_records",
    "decompress",
]

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK_BYTES = 32 * 1024
_INT32 = struct.Struct(">i")

RecordHeader = tuple[str, bytes | None]
"""A record header: (key, value); Kafka header keys are UTF-8 strings."""


class Record(NamedTuple):
    """One record with its absolute offset and timestamp (ms since the epoch)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[RecordHeader, ...] = ()


def decode_records(records: BytesLike, *, allow_partial: bool = False) -> list[Record]:
    """Decode every record of every batch in a record set."""
    out: list[Record] = []
    for position, header in iter_batches(records, allow_partial=allow_partial):
        out.extend(_decode_batch_at(records, position, header))
    return out


def decode_batch(records: BytesLike, position: int = 0) -> list[Record]:
    """Decode the records of the one batch starting at ``position``."""
    for found, header in iter_batches(memoryview(records)[position:]):
        return _decode_batch_at(records, position + found, header)
    raise CorruptRecordBatch(f"no record batch at position position={position}")


def decompress(compression: Compression, data: BytesLike) -> bytes:
    """Decompress a batch's records section; raises CorruptRecordBatch on bad input."""
    try:
        if compression is Compression.NONE:
            return bytes(data)
        if compression is Compression.GZIP:
            return gzip.decompress(data)
        if compression is Compression.SNAPPY:
            return _snappy_decompress(data)
        if compression is Compression.LZ4:
            return bytes(cramjam.lz4.decompress(data))
        return bytes(cramjam.zstd.decompress(data))
    except (OSError, EOFError, zlib.error, ValueError, cramjam.DecompressionError) as error:
        raise CorruptRecordBatch(
            f"cannot decompress records compression={compression.name.lower()}"
            f" error={type(error).__name__}:{error}"
        ) from None


def compress(compression: Compression, data: bytes) -> bytes:
    """Compress a records section the way Kafka's Java client frames it."""
    if compression is Compression.NONE:
        return data
    if compression is Compression.GZIP:
        return gzip.compress(data, mtime=0)
    if compression is Compression.SNAPPY:
        blocks = [_XERIAL_HEADER]
        for start in range(0, len(data), _XERIAL_BLOCK_BYTES):
            block = bytes(cramjam.snappy.compress_raw(data[start : start + _XERIAL_BLOCK_BYTES]))
            blocks += (_INT32.pack(len(block)), block)
        return b"".join(blocks)
    if compression is Compression.LZ4:
        compressor = cramjam.lz4.Compressor(content_checksum=False, block_linked=False)
        compressor.compress(data)
        return bytes(compressor.finish())
    return bytes(cramjam.zstd.compress(data))


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    compression: Compression = Compression.NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
) -> bytes:
    """Encode records (offsets >= base_offset, ascending) as one v2 batch."""
    if not records:
        raise ValueError("a record batch needs at least one record count=0")
    base_timestamp = records[0].timestamp
    body = bytearray()
    for record in records:
        _write_record(body, record, base_offset, base_timestamp)
    payload = compress(compression, bytes(body))
    attributes = (
        compression
        | (timestamp_type << 3)
        | (0x10 if is_transactional else 0)
        | (0x20 if is_control else 0)
    )
    batch = bytearray(HEADER_BYTES) + payload
    header = BatchHeader(
        base_offset=base_offset,
        batch_length=len(batch) - 12,
        partition_leader_epoch=partition_leader_epoch,
        magic=2,
        crc=0,
        attributes=attributes,
        last_offset_delta=records[-1].offset - base_offset,
        base_timestamp=base_timestamp,
        max_timestamp=max(record.timestamp for record in records),
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        records_count=len(records),
    )
    write_header(batch, 0, header)
    rewrite_crc(batch, 0)
    return bytes(batch)


def _decode_batch_at(records: BytesLike, position: int, header: BatchHeader) -> list[Record]:
    try:
        compression = header.compression
    except ValueError:
        raise CorruptRecordBatch(
            f"unknown compression codec attributes={header.attributes} position={position}"
        ) from None
    section = memoryview(records)[position + HEADER_BYTES : position + header.size]
    data = decompress(compression, section)
    try:
        out, end = _read_records(data, header)
    except ValueError as error:
        raise CorruptRecordBatch(
            f"malformed record in batch base_offset={header.base_offset}"
            f" position={position} reason={error}"
        ) from None
    if end != len(data):
        raise CorruptRecordBatch(
            f"bytes left after last record base_offset={header.base_offset}"
            f" position={position} trailing={len(data) - end}"
        )
    return out


def _read_records(data: bytes, header: BatchHeader) -> tuple[list[Record], int]:
    log_append_time = header.timestamp_type is TimestampType.LOG_APPEND_TIME
    position = 0
    out: list[Record] = []
    for _ in range(header.records_count):
        length, position = read_varint(data, position)
        end = position + length
        if length < 0 or end > len(data):
            raise ValueError(f"record length out of range length={length}")
        position += 1  # attributes: unused in v2
        timestamp_delta, position = read_varlong(data, position)
        offset_delta, position = read_varint(data, position)
        key, position = _read_bytes(data, position)
        value, position = _read_bytes(data, position)
        count, position = read_varint(data, position)
        if count < 0:
            raise ValueError(f"negative header count count={count}")
        headers: list[RecordHeader] = []
        for _ in range(count):
            header_key, position = _read_bytes(data, position)
            if header_key is None:
                raise ValueError("null record header key")
            header_value, position = _read_bytes(data, position)
            headers.append((str(header_key, "utf-8"), header_value))
        if position != end:
            raise ValueError(f"record fields disagree with length length={length}")
        timestamp = (
            header.max_timestamp if log_append_time else header.base_timestamp + timestamp_delta
        )
        out.append(Record(header.base_offset + offset_delta, timestamp, key, value, tuple(headers)))
    return out, position


def _read_bytes(data: bytes, position: int) -> tuple[bytes | None, int]:
    length, position = read_varint(data, position)
    if length == -1:
        return None, position
    end = position + length
    if length < 0 or end > len(data):
        raise ValueError(f"field length out of range length={length}")
    return data[position:end], end


def _write_record(out: bytearray, record: Record, base_offset: int, base_timestamp: int) -> None:
    body = bytearray(b"\x00")  # attributes
    write_varlong(body, record.timestamp - base_timestamp)
    write_varint(body, record.offset - base_offset)
    _write_bytes(body, record.key)
    _write_bytes(body, record.value)
    write_varint(body, len(record.headers))
    for key, value in record.headers:
        _write_bytes(body, key.encode("utf-8"))
        _write_bytes(body, value)
    write_varint(out, len(body))
    out += body


def _write_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        write_varint(out, -1)
        return
    write_varint(out, len(value))
    out += value


def _snappy_decompress(data: BytesLike) -> bytes:
    view = memoryview(data)
    if view[: len(_XERIAL_MAGIC)] != _XERIAL_MAGIC:
        return bytes(cramjam.snappy.decompress_raw(view))
    return b"".join(_xerial_blocks(view))


def _xerial_blocks(view: memoryview) -> Iterable[bytes]:
    position = len(_XERIAL_HEADER)
    while position < len(view):
        if position + 4 > len(view):
            raise ValueError(f"xerial block length truncated position={position}")
        (length,) = _INT32.unpack_from(view, position)
        position += 4
        if length < 0 or position + length > len(view):
            raise ValueError(f"xerial block out of range position={position} length={length}")
        yield bytes(cramjam.snappy.decompress_raw(view[position : position + length]))
        position += length
