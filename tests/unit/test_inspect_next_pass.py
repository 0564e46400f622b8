"""`tidelog inspect`'s prediction of the next lifecycle pass (broker/admin/next_pass.py)
and how the partitions table and `--segments` show it (broker/admin/report_text.py).

Indexes are built by hand: segment objects are chunks with `commit_seq` -1, the active
segment chunks in per-flush commits. Times are fixed numbers, never the clock."""

from __future__ import annotations

import re
from dataclasses import replace

from tidelog.broker.admin.next_pass import partition_segments, predict_next_pass
from tidelog.broker.admin.report import (
    Head,
    NextPassView,
    PartitionView,
    Report,
    SegmentView,
)
from tidelog.broker.admin.report_text import render_report
from tidelog.storage.stream_state import ChunkRef, PartitionState

NOW = 1_000_000_000_000  # 2001-09-09T01:46:40Z
HOUR = 3_600_000
MIB = 1 << 20


def chunk(base: int, end: int, ts: int, size: int = 100, segment: str = "") -> ChunkRef:
    if segment:
        return ChunkRef(base, end, ts, segment, -1, 0, size, 0)
    return ChunkRef(base, end, ts, "s1", base, 0, size, 0)


def partition(*chunks: ChunkRef, log_start: int = 0, cleaned_end: int = 0) -> PartitionState:
    part = PartitionState("tid", "t", 0, log_start=log_start, cleaned_end=cleaned_end)
    part.chunks = list(chunks)
    part.committed_end = chunks[-1].end_offset if chunks else 0
    return part


def predict(part: PartitionState, **configs: str) -> NextPassView:
    named = {k.replace("_", "."): v for k, v in configs.items()}
    return predict_next_pass(part, named, now_ms=NOW, segment_object_bytes=64 * MIB)


def three_segments() -> PartitionState:
    """Two old segment objects ([0, 10) 300 B, [10, 20) 200 B), then a young active one."""
    return partition(
        chunk(0, 5, NOW - 3 * HOUR, 100, segment="seg/a"),
        chunk(5, 10, NOW - 3 * HOUR, 200, segment="seg/a"),
        chunk(10, 20, NOW - 2 * HOUR, 200, segment="seg/b"),
        chunk(20, 30, NOW - 1000, 50),
        chunk(30, 40, NOW - 500, 50),
    )


def test_retention_predicts_the_log_start_and_what_goes_with_whole_segments() -> None:
    part = three_segments()
    before = list(part.chunks)

    nxt = predict(part, retention_ms=str(HOUR + HOUR // 2))

    assert (nxt.retention_log_start, nxt.retention_records, nxt.retention_bytes) == (20, 20, 500)
    assert (nxt.would_roll_chunks, nxt.would_compact_segments) == (0, 0)
    assert part.chunks == before and part.log_start == 0  # the index is left alone


def test_retention_counts_from_the_current_log_start_and_by_bytes() -> None:
    part = replace(three_segments(), log_start=7)  # DeleteRecords moved it into seg/a

    nxt = predict(part, retention_bytes="100")  # the active segment (100 B) still holds it

    assert (nxt.retention_log_start, nxt.retention_records, nxt.retention_bytes) == (20, 13, 500)


def test_nothing_due_keeps_the_log_start_and_a_compact_topic_has_no_retention() -> None:
    part = three_segments()

    assert predict(part) == NextPassView(0, 0, 0, 0, 0, 0, 0)  # 7 days, 1 GiB: nothing
    compact = predict(part, cleanup_policy="compact")
    assert compact.retention_log_start is None
    assert (compact.would_compact_segments, compact.would_compact_bytes) == (2, 500)


def test_roll_takes_the_active_chunks_once_the_first_is_segment_ms_old() -> None:
    part = three_segments()

    young = predict(part, segment_ms="2000")  # the first active chunk is 1 s old
    due = predict(part, segment_ms="1000")

    assert (young.would_roll_chunks, young.would_roll_bytes) == (0, 0)
    assert (due.would_roll_chunks, due.would_roll_bytes) == (2, 100)


def test_rolls_go_on_by_segment_bytes_and_the_cleaner_sees_what_they_made() -> None:
    part = partition(*(chunk(i * 10, i * 10 + 10, NOW - HOUR, MIB) for i in range(20)))

    nxt = predict(part, segment_bytes=str(MIB), cleanup_policy="compact")

    # one roll a chunk, at most 16 a pass; the segments they make are below the chunks
    # still active, so the cleaner may take them, up to 4 segment objects' bytes
    assert (nxt.would_roll_chunks, nxt.would_roll_bytes) == (16, 16 * MIB)
    assert (nxt.would_compact_segments, nxt.would_compact_bytes) == (16, 16 * MIB)
    capped = predict_next_pass(
        part,
        {"segment.bytes": str(MIB), "cleanup.policy": "compact"},
        now_ms=NOW,
        segment_object_bytes=2 * MIB,
    )
    assert (capped.would_roll_chunks, capped.would_compact_segments) == (16, 8)


def test_compaction_waits_for_dirt_and_lag() -> None:
    part = replace(three_segments(), cleaned_end=20)  # both segments clean already

    assert predict(part, cleanup_policy="compact").would_compact_segments == 0
    lagging = predict(
        three_segments(), cleanup_policy="compact", min_compaction_lag_ms=str(HOUR * 5)
    )
    assert lagging.would_compact_segments == 0


def test_segments_list_the_objects_then_the_active_segment() -> None:
    assert partition_segments(three_segments()) == [
        SegmentView("seg/a", 0, 10, 2, 300, NOW - 3 * HOUR),
        SegmentView("seg/b", 10, 20, 1, 200, NOW - 2 * HOUR),
        SegmentView("", 20, 40, 2, 100, NOW - 500),
    ]


ACTIVE_TS = "2001-09-09T01:46:39.500Z"


def report_of(view: PartitionView) -> Report:
    return Report(Head("file:///b", 0, "h", 1, 1, 0, 0, -1, 0, 0), [], [view], [], [], None)


def test_the_partitions_table_shows_segments_and_the_next_pass() -> None:
    view = PartitionView(
        "t",
        "tid",
        0,
        1,
        "s1",
        0,
        40,
        5,
        600,
        segments=2,
        segment_bytes=500,
        active_chunks=2,
        active_bytes=100,
        next_pass=NextPassView(20, 20, 500, 2, 100, 0, 0),
        segment_list=partition_segments(three_segments()),
    )

    text = render_report(report_of(view))
    listed = render_report(report_of(view), segments=True)

    header = "TOPIC  PARTITION  OWNER  START  END  CHUNKS  BYTES  SEGMENTS   ACTIVE     "
    assert header + "NEXT START           ROLL       COMPACT\n" in text
    assert "600 B  2 (500 B)  2 (100 B)  20 (-20 rec, 500 B)  2 (100 B)  -\n" in text
    assert "seg/a" not in text
    rows = listed.split("\nSEGMENTS\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [r.split() for r in rows] == [
        ["TOPIC", "PARTITION", "SEGMENT", "BASE", "END", "CHUNKS", "BYTES", "NEWEST"],
        ["t", "0", "seg/a", "0", "10", "2", "300", "B", "2001-09-08T22:46:40.000Z"],
        ["t", "0", "seg/b", "10", "20", "1", "200", "B", "2001-09-08T23:46:40.000Z"],
        ["t", "0", "(active:", "per-flush", "commits)", "20", "40", "2", "100", "B", ACTIVE_TS],
    ]


def test_next_start_is_a_dash_without_delete_and_the_offset_when_nothing_goes() -> None:
    plain = PartitionView("t", "tid", 0, 1, "s1", 7, 9, 1, 10)  # no delete policy, no pass
    kept = replace(plain, next_pass=NextPassView(7, 0, 0, 0, 0, 1, 10))

    def cells(view: PartitionView) -> list[str]:
        text = render_report(report_of(view))
        row = text.split("\nPARTITIONS\n", 1)[1].splitlines()[1]
        return re.split(r"\s{2,}", row.strip())[-5:]

    assert cells(plain) == ["0 (0 B)", "0 (0 B)", "-", "-", "-"]
    assert cells(kept) == ["0 (0 B)", "0 (0 B)", "7", "-", "1 (10 B)"]


def test_a_cluster_default_applies_unless_the_topic_overrides_it() -> None:
    part = three_segments()
    defaults = {"retention.ms": str(HOUR + HOUR // 2)}  # storage/cluster_defaults.py

    nxt = predict_next_pass(part, {}, defaults=defaults, now_ms=NOW, segment_object_bytes=MIB)
    assert nxt.retention_log_start == 20
    week = {"retention.ms": "604800000"}
    kept = predict_next_pass(part, week, defaults=defaults, now_ms=NOW, segment_object_bytes=MIB)
    assert kept.retention_log_start == 0
