"""Record batch header view: walking, validation errors and their Kafka codes, offset patching."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c

from tidelog.protocol.batch import (
    HEADER_BYTES,
    BatchHeader,
    Compression,
    TimestampType,
    check_crc,
    iter_batches,
    patch_base_offset,
    patch_partition_leader_epoch,
    rewrite_crc,
    set_base_offsets,
    validate_produce_records,
)
from tidelog.protocol.errors import (
    CorruptRecordBatch,
    ErrorCode,
    InvalidRecordBatch,
    RecordBatchError,
    UnsupportedCompression,
    UnsupportedMagic,
)
from tidelog.protocol.records import Record, build_batch, decode_records

RECORDS = [
    Record(0, 1_000, b"k0", b"v0", (("h", b"x"),)),
    Record(1, 1_005, None, b"v1"),
    Record(2, 1_003, b"k2", None),
]


def batch(**kwargs: object) -> bytes:
    return build_batch(RECORDS, **kwargs)  # type: ignore[arg-type]


def with_field(data: bytes, fmt: str, offset: int, value: int, *, reseal: bool = True) -> bytes:
    buffer = bytearray(data)
    struct.pack_into(fmt, buffer, offset, value)
    if reseal:
        rewrite_crc(buffer, 0)
    return bytes(buffer)


def legacy_message(magic: int) -> bytes:
    # offset int64, size int32, crc int32, magic int8, attributes int8, [timestamp], key, value
    body = struct.pack(">bb", magic, 0) + (b"\x00" * 8 if magic == 1 else b"")
    body += struct.pack(">ii", -1, 1) + b"v"
    message = struct.pack(">I", 0) + body
    return struct.pack(">qi", 0, len(message)) + message


def test_header_fields_are_read_in_wire_order() -> None:
    data = batch(producer_id=7, producer_epoch=2, base_sequence=5, partition_leader_epoch=9)
    [(position, header)] = list(iter_batches(data))
    assert position == 0
    assert header.magic == 2
    assert header.size == len(data)
    assert header.crc == crc32c(data[21:])
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 2, 5)
    assert header.partition_leader_epoch == 9
    assert (header.base_timestamp, header.max_timestamp) == (1_000, 1_005)
    assert (header.records_count, header.last_offset_delta, header.next_offset) == (3, 2, 3)


@pytest.mark.parametrize("compression", list(Compression))
def test_attribute_properties(compression: Compression) -> None:
    header = validate_produce_records(
        batch(compression=compression, is_transactional=True, producer_id=1, base_sequence=0)
    )[0]
    assert header.compression is compression
    assert header.is_transactional
    assert not header.is_control
    assert header.timestamp_type is TimestampType.CREATE_TIME


def test_log_append_time_and_control_bits() -> None:
    header = next(
        iter_batches(batch(timestamp_type=TimestampType.LOG_APPEND_TIME, is_control=True))
    )[1]
    assert header.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert header.is_control
    assert not header.is_transactional


def test_iter_batches_walks_several_batches() -> None:
    first = batch()
    second = build_batch([Record(0, 5, b"a", b"b")])
    positions = [position for position, _ in iter_batches(first + second + first)]
    assert positions == [0, len(first), len(first) + len(second)]


def test_trailing_partial_batch_is_detected_or_tolerated() -> None:
    data = batch() + batch()[:30]
    with pytest.raises(CorruptRecordBatch, match="truncated"):
        list(iter_batches(data))
    assert [p for p, _ in iter_batches(data, allow_partial=True)] == [0]
    assert [p for p, _ in iter_batches(batch() + b"\x00" * 5, allow_partial=True)] == [0]


def test_every_truncation_of_a_produce_batch_is_rejected() -> None:
    data = batch()
    for end in range(1, len(data)):
        with pytest.raises(RecordBatchError) as caught:
            validate_produce_records(data[:end])
        assert caught.value.error_code is ErrorCode.corrupt_message


def test_flipped_bit_anywhere_under_the_crc_is_corrupt_message() -> None:
    data = batch(compression=Compression.GZIP)
    for index in range(21, len(data)):
        flipped = bytearray(data)
        flipped[index] ^= 0x01
        with pytest.raises(RecordBatchError) as caught:
            validate_produce_records(bytes(flipped))
        assert caught.value.error_code in (
            ErrorCode.corrupt_message,  # the CRC check, or the header checks that run first
            ErrorCode.invalid_record,
            ErrorCode.unsupported_compression_type,
        )
        if index >= HEADER_BYTES:
            assert isinstance(caught.value, CorruptRecordBatch)
            assert "crc mismatch" in str(caught.value)


def test_crc_of_unmodified_batch_checks_out() -> None:
    data = batch()
    check_crc(data, 0, next(iter_batches(data))[1])
    with pytest.raises(CorruptRecordBatch, match="crc mismatch"):
        check_crc(data, 0, next(iter_batches(data))[1]._replace(crc=1))


@pytest.mark.parametrize("magic", [0, 1])
def test_legacy_magic_is_unsupported_for_message_format(magic: int) -> None:
    with pytest.raises(UnsupportedMagic, match=f"magic={magic}") as caught:
        validate_produce_records(legacy_message(magic))
    assert caught.value.error_code is ErrorCode.unsupported_for_message_format
    assert int(caught.value.error_code) == 43


def test_unknown_magic_is_corrupt() -> None:
    data = with_field(batch(), ">b", 16, 3, reseal=False)
    with pytest.raises(CorruptRecordBatch, match="magic=3"):
        validate_produce_records(data)


def test_batch_length_below_header_size_is_corrupt() -> None:
    data = with_field(batch(), ">i", 8, 48, reseal=False)
    with pytest.raises(CorruptRecordBatch, match="batch_length=48"):
        list(iter_batches(data))


@pytest.mark.parametrize(
    ("fmt", "offset", "value", "message"),
    [
        (">i", 57, 0, "records_count=0"),
        (">i", 57, -1, "records_count=-1"),
        (">i", 23, 5, "last_offset_delta=5 records_count=3"),
        (">q", 0, 100, "base_offset=100"),
        (">h", 21, 0x20, "control batches"),
    ],
)
def test_batches_a_client_may_not_produce_are_invalid_record(
    fmt: str, offset: int, value: int, message: str
) -> None:
    data = with_field(batch(), fmt, offset, value)
    with pytest.raises(InvalidRecordBatch, match=message) as caught:
        validate_produce_records(data)
    assert int(caught.value.error_code) == 87


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unknown_compression_codec(codec: int) -> None:
    data = with_field(batch(), ">h", 21, codec)
    with pytest.raises(UnsupportedCompression, match=f"codec={codec}") as caught:
        validate_produce_records(data)
    assert caught.value.error_code is ErrorCode.unsupported_compression_type


def test_empty_record_set_is_invalid_record() -> None:
    with pytest.raises(InvalidRecordBatch, match="empty"):
        validate_produce_records(b"")


def test_more_batches_than_allowed_is_invalid_record() -> None:
    data = batch() + batch()
    with pytest.raises(InvalidRecordBatch, match="max_batches=1"):
        validate_produce_records(data)
    assert len(validate_produce_records(data, max_batches=2)) == 2


def test_validation_accepts_memoryviews_and_leaves_no_buffer_exports() -> None:
    data = bytearray(batch())
    with memoryview(data) as view:
        assert validate_produce_records(view)[0].records_count == 3
    assert validate_produce_records(data)[0].records_count == 3
    data.append(0)  # would raise BufferError if a view of data were still alive


def test_patched_base_offset_keeps_crc_valid() -> None:
    data = bytearray(batch())
    patch_base_offset(data, 0, 1_234_567)
    patch_partition_leader_epoch(data, 0, 42)
    [(_, header)] = list(iter_batches(data))
    check_crc(data, 0, header)
    assert header.base_offset == 1_234_567
    assert header.partition_leader_epoch == 42
    assert [record.offset for record in decode_records(data)] == [1_234_567, 1_234_568, 1_234_569]


def test_set_base_offsets_assigns_consecutive_offsets_and_leaves_input_alone() -> None:
    small = build_batch([Record(0, 5, b"a", b"b")])
    original = batch() + small + batch()
    patched, next_offset = set_base_offsets(original, 100, partition_leader_epoch=3)
    assert next_offset == 100 + 3 + 1 + 3
    headers = [header for _, header in iter_batches(patched)]
    assert [h.base_offset for h in headers] == [100, 103, 104]
    assert {h.partition_leader_epoch for h in headers} == {3}
    for position, header in iter_batches(patched):
        check_crc(patched, position, header)
    assert [h.base_offset for _, h in iter_batches(original)] == [0, 0, 0]
    assert len(patched) == len(original)


def test_rewrite_crc_seals_a_changed_batch() -> None:
    data = bytearray(batch())
    struct.pack_into(">q", data, 35, 99_999)  # max_timestamp, covered by the crc
    with pytest.raises(CorruptRecordBatch):
        validate_produce_records(data)
    crc = rewrite_crc(data, 0)
    assert validate_produce_records(data)[0].crc == crc


def test_batch_header_is_a_plain_tuple_of_thirteen_fields() -> None:
    header = next(iter_batches(batch()))[1]
    assert isinstance(header, BatchHeader)
    assert len(header) == 13
