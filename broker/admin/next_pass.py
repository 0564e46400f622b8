"""What the next lifecycle pass would do to a partition, predicted for `tidelog inspect`.

Owns: `partition_segments` (the index cut into `SegmentView`s) and `predict_next_pass`:
the pass of storage/lifecycle.py replayed on a copy of the partition's index, by the
pure rules of storage/segments.py, the topic's configs in force
(storage/topic_config.py `effective`: the override, the cluster default, the default)
and the time `now_ms`: retention first (only if
`cleanup.policy` has `delete`), then up to `ROLLS_PER_PASS` rolls, then compaction
(only with `compact`) over the segments as the rolls left them.

Guarantees: pure (no I/O, no clock); the partition's state is never changed. The rules
are called, not restated. Two things a broker knows and the bucket does not are
parameters: `--segment-object-bytes` (caps a roll and the cleaner's read) and the last
stable offset, taken to be the committed end (docs/segments.md, "tidelog inspect").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from tidelog.broker.admin.report import NextPassView, SegmentView
from tidelog.storage.segments import (
    CLEAN_WINDOWS,
    ROLLS_PER_PASS,
    Segment,
    active_chunks,
    clean_plan,
    retention_start,
    roll_plan,
    segments_of,
)
from tidelog.storage.stream_state import ChunkRef, PartitionState
from tidelog.storage.topic_config import effective

PREDICTED_KEY = "(next roll)"  # the key a predicted roll's chunks get in the copy


def partition_segments(part: PartitionState) -> list[SegmentView]:
    return [_segment_view(s) for s in segments_of(part.chunks)]


def _segment_view(seg: Segment) -> SegmentView:
    return SegmentView(
        seg.key or "", seg.base_offset, seg.end_offset, len(seg.chunks), seg.size, seg.max_timestamp
    )


def predict_next_pass(
    part: PartitionState,
    configs: Mapping[str, object],
    *,
    defaults: Mapping[str, str] | None = None,
    now_ms: int,
    segment_object_bytes: int,
) -> NextPassView:
    """The next pass over `part`, had it run at `now_ms`."""

    def config(name: str) -> int:
        return int(effective(configs, name, defaults))

    policy = {p.strip() for p in effective(configs, "cleanup.policy", defaults).split(",")}
    sim = PartitionState(
        part.topic_id,
        part.topic,
        part.partition,
        chunks=list(part.chunks),
        committed_end=part.committed_end,
        log_start=part.log_start,
        cleaned_end=part.cleaned_end,
    )
    new_start: int | None = None
    retained_bytes = 0
    if "delete" in policy:
        segments = segments_of(sim.chunks)
        new_start = retention_start(
            segments,
            log_start=sim.log_start,
            retention_ms=config("retention.ms"),
            retention_bytes=config("retention.bytes"),
            now_ms=now_ms,
        )
        retained_bytes = sum(s.size for s in segments if sim.log_start < s.end_offset <= new_start)
        sim.move_log_start(new_start)
    roll_bytes = min(config("segment.bytes"), segment_object_bytes)
    rolled: list[ChunkRef] = []
    for n in range(ROLLS_PER_PASS):
        plan = roll_plan(
            active_chunks(sim.chunks),
            roll_bytes=roll_bytes,
            segment_ms=config("segment.ms"),
            now_ms=now_ms,
        )
        if not plan:
            break
        moved = [replace(c, stream=f"{PREDICTED_KEY} {n}", commit_seq=-1) for c in plan]
        if not sim.replace_chunks(plan[0].base_offset, plan[-1].end_offset, moved):
            break  # as the pass stops when the index does not take a roll
        rolled += plan
    compact: list[Segment] = []
    if "compact" in policy:
        compact = clean_plan(
            segments_of(sim.chunks),
            cleaned_end=sim.cleaned_end,
            committed_end=sim.committed_end,
            stable_end=sim.committed_end,  # the LSO is the broker's; not in the bucket
            now_ms=now_ms,
            min_lag_ms=config("min.compaction.lag.ms"),
            max_lag_ms=config("max.compaction.lag.ms"),
            min_dirty_ratio=float(effective(configs, "min.cleanable.dirty.ratio", defaults)),
            max_bytes=CLEAN_WINDOWS * segment_object_bytes,
        )
    return NextPassView(
        new_start,
        new_start - part.log_start if new_start is not None else 0,
        retained_bytes,
        len(rolled),
        sum(c.length for c in rolled),
        len(compact),
        sum(s.size for s in compact),
    )
