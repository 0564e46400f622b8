"""Compaction equals "latest value per key, tombstones kept while younger than
delete.retention.ms" on random workloads, and a second pass changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tidelog.protocol.batch import BatchHeader, Compression, check_crc, iter_batches
from tidelog.protocol.records import Record, build_batch, decode_batch
from tidelog.storage.compaction import build_offset_map, clean_segments

PROPERTY = settings(max_examples=150, deadline=None)
KEYS = [b"a", b"b", b"c", b"d", b"e"]
BASE_TS = 1_700_000_000_000


@dataclass(frozen=True)
class Workload:
    segments: list[bytes]
    records: list[Record]
    last_batch_of: dict[int, BatchHeader]  # producer id -> its last batch's header
    now_ms: int
    retention_ms: int


@st.composite
def workloads(draw: st.DrawFn) -> Workload:
    count = draw(st.integers(1, 40))
    records = []
    for offset in range(count):
        key = draw(st.sampled_from([*KEYS, None]))
        value = draw(st.one_of(st.none(), st.binary(max_size=12)))
        headers = draw(st.sampled_from([(), (("h", b"v"),), (("n", None),)]))
        ts = BASE_TS + draw(st.integers(0, 10_000))
        records.append(Record(offset, ts, key, value, headers))
    cuts = sorted(draw(st.sets(st.integers(1, count - 1), max_size=count - 1)) if count > 1 else [])
    bounds = [0, *cuts, count]
    batches: list[bytes] = []
    headers_out: list[BatchHeader] = []
    sequences: dict[int, int] = {}
    for start, end in pairwise(bounds):
        pid = draw(st.sampled_from([-1, 1, 2]))
        seq = sequences.get(pid, 0) if pid >= 0 else -1
        if pid >= 0:
            sequences[pid] = seq + end - start
        raw = build_batch(
            records[start:end],
            base_offset=start,
            compression=draw(st.sampled_from(list(Compression))),
            producer_id=pid,
            producer_epoch=0 if pid >= 0 else -1,
            base_sequence=seq,
        )
        batches.append(raw)
        headers_out.append(next(iter_batches(raw))[1])
    seg_cuts = sorted(draw(st.sets(st.integers(1, len(batches)), max_size=3)))
    seg_bounds = [0, *seg_cuts]
    if seg_bounds[-1] != len(batches):
        seg_bounds.append(len(batches))
    segments = [b"".join(batches[s:e]) for s, e in pairwise(seg_bounds)]
    last_batch_of = {h.producer_id: h for h in headers_out if h.producer_id >= 0}
    return Workload(
        segments,
        records,
        last_batch_of,
        now_ms=BASE_TS + draw(st.integers(0, 20_000)),
        retention_ms=draw(st.integers(0, 10_000)),
    )


def model(work: Workload) -> list[Record]:
    latest = {r.key: r.offset for r in work.records if r.key is not None}
    return [
        r
        for r in work.records
        if r.key is not None
        and latest[r.key] == r.offset
        and (r.value is not None or work.now_ms < r.timestamp + work.retention_ms)
    ]


def batches_of(segments: list[bytes]) -> list[tuple[BatchHeader, list[Record]]]:
    out = []
    for segment in segments:
        for position, header in iter_batches(segment):
            check_crc(segment, position, header)
            out.append((header, decode_batch(segment, position)))
    return out


def clean(work: Workload, segments: list[bytes]) -> list[bytes]:
    result = clean_segments(
        segments,
        build_offset_map(segments),
        now_ms=work.now_ms,
        delete_retention_ms=work.retention_ms,
    )
    assert all(s.error is None for s in result.segments)
    return [s.data for s in result.segments]


@PROPERTY
@given(workloads())
def test_compaction_keeps_latest_value_per_key_and_young_tombstones(work: Workload) -> None:
    result = clean_segments(
        work.segments,
        build_offset_map(work.segments),
        now_ms=work.now_ms,
        delete_retention_ms=work.retention_ms,
    )
    out = [s.data for s in result.segments]
    survivors = [r for _, records in batches_of(out) for r in records]
    assert survivors == model(work)
    assert result.stats.records_kept == len(survivors)
    assert result.stats.records_removed == len(work.records) - len(survivors)
    assert result.stats.bytes_before == sum(map(len, work.segments))
    assert result.stats.bytes_after == sum(map(len, out))


@PROPERTY
@given(workloads())
def test_compacted_batches_keep_offsets_in_order_and_within_their_batch(work: Workload) -> None:
    previous_last = -1
    for header, records in batches_of(clean(work, work.segments)):
        assert header.base_offset > previous_last
        for record in records:
            assert header.base_offset <= record.offset <= header.last_offset
            assert record.offset > previous_last
            previous_last = record.offset
        previous_last = max(previous_last, header.last_offset)


@PROPERTY
@given(workloads())
def test_each_producers_last_batch_survives_with_its_sequence(work: Workload) -> None:
    out = {h.base_offset: h for h, _ in batches_of(clean(work, work.segments))}
    for pid, last in work.last_batch_of.items():
        kept = out[last.base_offset]
        assert (kept.producer_id, kept.producer_epoch, kept.base_sequence) == (
            pid,
            last.producer_epoch,
            last.base_sequence,
        )
        assert kept.last_offset_delta == last.last_offset_delta


@PROPERTY
@given(workloads())
def test_compacting_twice_changes_nothing(work: Workload) -> None:
    once = clean(work, work.segments)
    assert clean(work, once) == once
    # The first pass's map (over the uncleaned input) gives the same answer too.
    again = clean_segments(
        once,
        build_offset_map(work.segments),
        now_ms=work.now_ms,
        delete_retention_ms=work.retention_ms,
    )
    assert [s.data for s in again.segments] == once
    assert not again.changed
