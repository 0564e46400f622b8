"""The cleaner's rules one at a time: transactions, markers, producer state, codecs,
tombstones, keyless records and a segment it cannot read."""

from __future__ import annotations

import logging

import pytest

from tidelog.protocol.batch import BatchHeader, Compression, check_crc, iter_batches
from tidelog.protocol.control import control_batch
from tidelog.protocol.records import Record, build_batch, decode_batch
from tidelog.storage.compaction import CleanResult, build_offset_map, clean_segments
from tidelog.storage.txn_index import AbortedTxn

T0 = 1_700_000_000_000
DAY = 86_400_000


def batch(offset: int, *kvs: tuple[bytes | None, bytes | None], **kw: object) -> bytes:
    records = [Record(offset + i, T0 + offset + i, k, v) for i, (k, v) in enumerate(kvs)]
    return build_batch(records, base_offset=offset, **kw)  # type: ignore[arg-type]


def marker(offset: int, pid: int, *, commit: bool, ts: int = T0) -> bytes:
    raw = bytearray(
        control_batch(
            producer_id=pid, producer_epoch=0, commit=commit, coordinator_epoch=0, timestamp=ts
        )
    )
    raw[0:8] = offset.to_bytes(8, "big", signed=True)  # outside the CRC
    return bytes(raw)


def txn(offset: int, pid: int, seq: int, *kvs: tuple[bytes, bytes | None]) -> bytes:
    return batch(
        offset, *kvs, producer_id=pid, producer_epoch=0, base_sequence=seq, is_transactional=True
    )


def clean(
    *segments: bytes, now: int = T0, retention: int = DAY, aborted: tuple[AbortedTxn, ...] = ()
) -> CleanResult:
    offset_map = build_offset_map(segments, aborted=aborted)
    return clean_segments(
        segments, offset_map, now_ms=now, delete_retention_ms=retention, aborted=aborted
    )


def batches(result: CleanResult) -> list[tuple[BatchHeader, list[Record]]]:
    out = []
    for segment in result.segments:
        for position, header in iter_batches(segment.data):
            check_crc(segment.data, position, header)
            out.append((header, decode_batch(segment.data, position)))
    return out


def survivors(result: CleanResult) -> list[tuple[int, bytes | None, bytes | None]]:
    return [
        (r.offset, r.key, r.value)
        for header, records in batches(result)
        if not header.is_control
        for r in records
    ]


def test_aborted_records_go_and_do_not_hide_the_committed_value_before_them() -> None:
    result = clean(
        batch(0, (b"k", b"committed")),
        txn(1, 7, 0, (b"k", b"aborted"), (b"j", b"aborted")),
        marker(3, 7, commit=False),
        txn(4, 8, 0, (b"j", b"kept")),
        marker(5, 8, commit=True),
        aborted=(AbortedTxn(7, 1, 3),),
    )
    assert survivors(result) == [(0, b"k", b"committed"), (4, b"j", b"kept")]
    assert result.stats.aborted_removed == 2


def test_committed_transactional_records_are_compacted_like_any_other() -> None:
    result = clean(
        txn(0, 8, 0, (b"k", b"v1")),
        marker(1, 8, commit=True),
        txn(2, 8, 1, (b"k", b"v2")),
        marker(3, 8, commit=True),
    )
    assert survivors(result) == [(2, b"k", b"v2")]


def test_a_marker_stays_while_its_transactions_data_stays() -> None:
    late = T0 + 2 * DAY
    result = clean(
        txn(0, 8, 0, (b"k", b"v1")),
        marker(1, 8, commit=True),
        txn(2, 8, 1, (b"x", b"y")),
        marker(3, 8, commit=True),
        now=late,
    )
    assert [h.is_control for h, _ in batches(result)] == [False, True, False, True]
    assert result.stats.markers_removed == 0


def test_a_marker_goes_once_its_data_is_gone_and_it_is_older_than_delete_retention() -> None:
    late = T0 + 2 * DAY
    segments = (
        txn(0, 8, 0, (b"k", b"v1")),
        marker(1, 8, commit=True),
        batch(2, (b"k", b"v2")),
        txn(3, 8, 1, (b"z", b"last")),
        marker(4, 8, commit=True),
    )
    gone = clean(*segments, now=late)
    assert [h.base_offset for h, _ in batches(gone)] == [2, 3, 4]
    assert gone.stats.markers_removed == 1
    young = clean(*segments, now=T0 + 1000)
    assert [h.base_offset for h, _ in batches(young)] == [1, 2, 3, 4]


def test_an_abort_marker_goes_with_its_data_once_old() -> None:
    result = clean(
        txn(0, 7, 0, (b"k", b"aborted")),
        marker(1, 7, commit=False),
        txn(2, 7, 1, (b"k", b"v")),
        marker(3, 7, commit=True),
        now=T0 + 2 * DAY,
        aborted=(AbortedTxn(7, 0, 1),),
    )
    assert [(h.base_offset, h.is_control) for h, _ in batches(result)] == [(2, False), (3, True)]


def test_an_abort_marker_whose_data_starts_before_the_segments_stays() -> None:
    result = clean(
        marker(5, 7, commit=False),
        batch(6, (b"k", b"v")),
        now=T0 + 2 * DAY,
        aborted=(AbortedTxn(7, 2, 5),),
    )
    assert batches(result)[0][0].is_control


def test_the_last_batch_of_a_producer_is_kept_empty_with_its_sequence() -> None:
    result = clean(
        batch(0, (b"k", b"v0"), producer_id=5, producer_epoch=3, base_sequence=0),
        batch(1, (b"k", b"v1"), (b"k", b"v2"), producer_id=5, producer_epoch=3, base_sequence=1),
        batch(3, (b"k", b"v3")),
    )
    (empty, records), (last, _) = batches(result)
    assert records == []
    assert (empty.base_offset, empty.last_offset_delta, empty.records_count) == (1, 1, 0)
    assert (empty.producer_id, empty.producer_epoch, empty.base_sequence) == (5, 3, 1)
    assert empty.compression is Compression.NONE
    assert last.base_offset == 3
    assert result.stats.empty_batches_kept == 1


def test_a_producers_last_marker_is_kept_for_its_epoch() -> None:
    result = clean(
        txn(0, 8, 0, (b"k", b"v1")),
        marker(1, 8, commit=True),
        batch(2, (b"k", b"v2")),
        now=T0 + 2 * DAY,
    )
    assert [(h.base_offset, h.is_control) for h, _ in batches(result)] == [(1, True), (2, False)]


def test_an_emptied_transactional_batch_kept_for_its_producer_stays_transactional() -> None:
    result = clean(
        txn(0, 9, 0, (b"k", b"v1")),
        batch(1, (b"k", b"v2")),
        now=T0 + 2 * DAY,
    )
    ((empty, records), _) = batches(result)
    assert empty.is_transactional and records == []


@pytest.mark.parametrize("codec", list(Compression))
def test_a_partly_cleaned_batch_keeps_its_codec_and_offsets(codec: Compression) -> None:
    result = clean(
        batch(0, (b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (b"c", b"4"), compression=codec),
        batch(4, (b"c", b"5")),
    )
    (header, records), _ = batches(result)
    assert header.compression is codec
    assert (header.base_offset, header.last_offset_delta, header.records_count) == (0, 3, 2)
    assert [(r.offset, r.key, r.value) for r in records] == [(1, b"b", b"2"), (2, b"a", b"3")]
    assert [r.timestamp for r in records] == [T0 + 1, T0 + 2]


def test_a_batch_that_keeps_every_record_is_copied_byte_for_byte() -> None:
    whole = batch(0, (b"a", b"1"), (b"b", b"2"), compression=Compression.GZIP)
    result = clean(whole)
    assert result.segments[0].data == whole
    assert not result.changed


def test_a_tombstone_stays_until_delete_retention_has_passed_since_its_timestamp() -> None:
    segment = batch(0, (b"k", b"v"), (b"k", None))
    tombstone_ts = T0 + 1
    assert survivors(clean(segment, now=tombstone_ts + DAY - 1)) == [(1, b"k", None)]
    gone = clean(segment, now=tombstone_ts + DAY)
    assert survivors(gone) == []
    assert gone.stats.tombstones_removed == 1
    assert gone.segments[0].data == b""


def test_records_without_a_key_are_removed() -> None:
    result = clean(batch(0, (None, b"x"), (b"k", b"v"), (None, b"y")))
    assert survivors(result) == [(1, b"k", b"v")]
    assert result.stats.keyless_removed == 2


def test_a_key_the_offset_map_does_not_hold_removes_nothing() -> None:
    segments = [batch(0, (b"k", b"old")), batch(1, (b"k", b"new"))]
    result = clean_segments(segments, {}, now_ms=T0, delete_retention_ms=DAY)
    assert [s.data for s in result.segments] == segments


def test_an_unreadable_segment_is_left_as_it_was_and_later_markers_stay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = bytearray(txn(0, 8, 0, (b"k", b"v1")) + batch(1, (b"j", b"v")))
    broken[-1] ^= 0xFF  # the CRC of the second batch no longer matches
    rest = marker(2, 8, commit=True) + batch(3, (b"k", b"v2")) + batch(4, (b"j", b"v2"))
    with caplog.at_level(logging.WARNING):
        result = clean(bytes(broken), rest, now=T0 + 2 * DAY)
    assert result.segments[0].data == bytes(broken)
    assert result.segments[0].error is not None and "crc" in result.segments[0].error
    assert [(h.base_offset, h.is_control) for h, _ in batches_of_one(result.segments[1].data)] == [
        (2, True),
        (3, False),
        (4, False),
    ]
    assert "cannot be read" in caplog.text


def batches_of_one(data: bytes) -> list[tuple[BatchHeader, list[Record]]]:
    return [(h, decode_batch(data, p)) for p, h in iter_batches(data)]
