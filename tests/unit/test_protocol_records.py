"""Records inside batches: varints, codecs, build/decode round trips, malformed input."""

from __future__ import annotations

import struct

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.records.readers import read_batch

from tidelog.protocol._varint import (
    read_uvarint,
    read_varint,
    read_varlong,
    write_uvarint,
    write_varint,
    write_varlong,
)
from tidelog.protocol.batch import Compression, TimestampType, rewrite_crc, validate_produce_records
from tidelog.protocol.errors import CorruptRecordBatch
from tidelog.protocol.records import (
    Record,
    build_batch,
    compress,
    decode_batch,
    decode_records,
    decompress,
)

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
BLOB = st.none() | st.binary(max_size=40)
HEADERS = st.lists(st.tuples(st.text(max_size=8), BLOB), max_size=3).map(tuple)


@st.composite
def record_lists(draw: st.DrawFn) -> tuple[int, list[Record]]:
    base_offset = draw(st.integers(0, 2**40))
    deltas = draw(st.lists(st.integers(1, 1000), min_size=0, max_size=8))
    first_timestamp = draw(st.integers(2**21, 2**41))  # kio's reader needs >= 0
    offsets = [base_offset + draw(st.integers(0, 10))]
    for delta in deltas:
        offsets.append(offsets[-1] + delta)
    records = [
        Record(
            offset,
            first_timestamp + draw(st.integers(-(2**20), 2**20)) * (index > 0),
            draw(BLOB),
            draw(BLOB),
            draw(HEADERS),
        )
        for index, offset in enumerate(offsets)
    ]
    return base_offset, records


@given(st.integers(0, 2**32 - 1))
def test_uvarint_roundtrip(value: int) -> None:
    out = bytearray()
    write_uvarint(out, value)
    assert read_uvarint(bytes(out) + b"tail", 0) == (value, len(out))


@given(INT32)
def test_varint_roundtrip_and_zigzag_width(value: int) -> None:
    out = bytearray()
    write_varint(out, value)
    assert read_varint(bytes(out), 0) == (value, len(out))
    assert len(out) <= 5
    if -64 <= value < 64:
        assert len(out) == 1


@given(INT64)
def test_varlong_roundtrip(value: int) -> None:
    out = bytearray()
    write_varlong(out, value)
    assert read_varlong(bytes(out), 0) == (value, len(out))
    assert len(out) <= 10


def test_known_zigzag_encodings() -> None:
    for value, encoded in [
        (0, b"\x00"),
        (-1, b"\x01"),
        (1, b"\x02"),
        (-64, b"\x7f"),
        (64, b"\x80\x01"),
    ]:
        out = bytearray()
        write_varint(out, value)
        assert bytes(out) == encoded


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"\x80\x80", "runs past the end"), (b"\xff\xff\xff\xff\xff\x01", "longer than allowed")],
)
def test_malformed_varints_raise_value_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_varint(data, 0)


def test_out_of_range_varints_are_refused() -> None:
    with pytest.raises(ValueError, match="value=2147483648"):
        write_varint(bytearray(), 2**31)
    with pytest.raises(ValueError, match="value=-1"):
        write_uvarint(bytearray(), -1)


@settings(max_examples=60, deadline=None)
@given(record_lists(), st.sampled_from(list(Compression)))
def test_build_then_decode_roundtrips(
    case: tuple[int, list[Record]], compression: Compression
) -> None:
    base_offset, records = case
    data = build_batch(records, base_offset=base_offset, compression=compression)
    assert decode_records(data) == records
    assert decode_batch(data + data, len(data)) == records


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(BLOB, BLOB), min_size=1, max_size=5), st.sampled_from(list(Compression)))
def test_dense_batches_from_zero_pass_produce_validation(
    pairs: list[tuple[bytes | None, bytes | None]], compression: Compression
) -> None:
    records = [Record(i, 1_700_000_000_000 + i, key, value) for i, (key, value) in enumerate(pairs)]
    data = build_batch(records, compression=compression, producer_id=9, base_sequence=0)
    [header] = validate_produce_records(data)
    assert (header.records_count, header.compression) == (len(records), compression)
    assert decode_records(data) == records


def test_negative_timestamps_roundtrip() -> None:
    records = [Record(0, -1, None, b"no timestamp"), Record(1, -5, b"k", None)]
    assert decode_records(build_batch(records)) == records


@settings(max_examples=30, deadline=None)
@given(record_lists())
def test_uncompressed_batches_agree_with_kios_independent_reader(
    case: tuple[int, list[Record]],
) -> None:
    base_offset, records = case
    data = build_batch(records, base_offset=base_offset)
    parsed, size = read_batch(data, 0)  # raises on a CRC or length mismatch
    assert size == len(data)
    assert [(r.offset, r.key, r.value) for r in parsed.records] == [
        (r.offset, r.key, r.value) for r in records
    ]
    assert [[(h.key, h.value) for h in r.headers] for r in parsed.records] == [
        [(k.encode(), v) for k, v in r.headers] for r in records
    ]


def test_log_append_time_gives_every_record_the_max_timestamp() -> None:
    records = [Record(0, 10, None, b"a"), Record(1, 30, None, b"b")]
    data = build_batch(records, timestamp_type=TimestampType.LOG_APPEND_TIME)
    assert [r.timestamp for r in decode_records(data)] == [30, 30]


@pytest.mark.parametrize("compression", list(Compression))
def test_codecs_roundtrip_a_large_payload(compression: Compression) -> None:
    payload = b"".join(b"payment-%d;" % i for i in range(20_000))  # > one xerial/lz4 block
    packed = compress(compression, payload)
    if compression is not Compression.NONE:
        assert len(packed) < len(payload)
    assert decompress(compression, packed) == payload


def test_snappy_accepts_raw_blocks_as_librdkafka_writes_them() -> None:
    payload = b"raw snappy block " * 50
    raw = bytes(cramjam.snappy.compress_raw(payload))
    assert decompress(Compression.SNAPPY, raw) == payload
    assert compress(Compression.SNAPPY, payload).startswith(b"\x82SNAPPY\x00")


def test_lz4_frames_use_independent_blocks_as_kafka_requires() -> None:
    frame = compress(Compression.LZ4, b"x" * 1000)
    assert frame[:4] == b"\x04\x22\x4d\x18"
    assert frame[4] & 0x20  # FLG block-independence bit


@pytest.mark.parametrize("compression", [c for c in Compression if c is not Compression.NONE])
def test_garbage_compressed_section_is_corrupt(compression: Compression) -> None:
    with pytest.raises(CorruptRecordBatch, match=f"compression={compression.name.lower()}"):
        decompress(compression, b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x09xx")


def resealed(data: bytearray) -> bytes:
    rewrite_crc(data, 0)
    return bytes(data)


def test_record_count_larger_than_records_is_corrupt() -> None:
    data = bytearray(build_batch([Record(0, 1, b"k", b"v")]))
    struct.pack_into(">i", data, 57, 2)
    with pytest.raises(CorruptRecordBatch, match="malformed record"):
        decode_records(resealed(data))


def test_bytes_after_last_record_are_corrupt() -> None:
    data = bytearray(build_batch([Record(0, 1, b"k", b"v"), Record(1, 1, b"k", b"v")]))
    struct.pack_into(">i", data, 57, 1)
    with pytest.raises(CorruptRecordBatch, match="bytes left after last record"):
        decode_records(resealed(data))


def test_record_length_disagreeing_with_fields_is_corrupt() -> None:
    data = bytearray(build_batch([Record(0, 1, b"k", b"v")]))
    data[61] += 2  # record length varint (small: one byte, zigzag)
    data += b"\x00"
    struct.pack_into(">i", data, 8, len(data) - 12)
    with pytest.raises(CorruptRecordBatch, match="disagree with length"):
        decode_records(resealed(data))


def test_build_batch_needs_records() -> None:
    with pytest.raises(ValueError, match="count=0"):
        build_batch([])


def test_partial_trailing_batch_is_skipped_when_allowed() -> None:
    data = build_batch([Record(0, 1, b"k", b"v")])
    assert decode_records(data + data[:20], allow_partial=True) == [Record(0, 1, b"k", b"v")]
