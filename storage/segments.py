"""A partition's segments, and what the next lifecycle pass does with them.

Owns: the rules, pure (no I/O, no clock: `now_ms` is a parameter), that
`storage/lifecycle.py` carries out (docs/segments.md):
- which committed chunks make up the partition's segments: the chunks of one segment
  object each form a closed segment; the chunks still in the per-flush commit objects
  (shared with other partitions) form the active segment, always the last;
- when the active segment rolls: its first chunks are copied into a new segment object
  once they hold `segment.bytes` (capped by the broker's `--segment-object-bytes`), or
  once its first chunk is `segment.ms` old;
- how far retention moves the log start: whole segments from the front, while the
  segment's newest record is older than `retention.ms`, or while the partition without
  it still holds `retention.bytes`, as Kafka's log manager decides.

Guarantees: a log start is only ever moved up, to the end of a whole segment, never
past the committed end; a roll never splits a chunk and never takes more than the cap
(but always at least one chunk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tidelog.storage.stream_state import ChunkRef

ROLLS_PER_PASS = 16  # a backlog of full segments goes over passes
CLEAN_WINDOWS = 4  # the cleaner reads at most this many --segment-object-bytes a pass


@dataclass(frozen=True, slots=True)
class Segment:
    """Chunks `[base_offset, end_offset)` held by one object (`key`), or the active
    segment (`key` None: chunks in the per-flush commit objects)."""

    key: str | None
    chunks: tuple[ChunkRef, ...]

    @property
    def base_offset(self) -> int:
        return self.chunks[0].base_offset

    @property
    def end_offset(self) -> int:
        return self.chunks[-1].end_offset

    @property
    def size(self) -> int:
        return sum(c.length for c in self.chunks)

    @property
    def max_timestamp(self) -> int:
        return max(c.max_timestamp for c in self.chunks)


def segment_op(
    key: tuple[str, int], topic_id: str, base: int, end: int, chunks: Sequence[ChunkRef]
) -> dict[str, Any]:
    """The stream op that points the index's chunks [base, end) at `chunks` (a roll's
    or the cleaner's new segment object; storage/stream_state.py folds it)."""
    return {
        "op": "segment",
        "topic": key[0],
        "partition": key[1],
        "id": topic_id,
        "base": base,
        "end": end,
        "chunks": [c.to_json() for c in chunks],
    }


def segments_of(chunks: Sequence[ChunkRef]) -> list[Segment]:
    """The index cut into segments, in offset order: one per segment object, one for
    each run of chunks in commit objects (normally one run, the active segment, last)."""
    out: list[Segment] = []
    run: list[ChunkRef] = []
    run_key: str | None = None
    for ref in chunks:
        key = ref.object_key if ref.in_segment else None
        if run and key != run_key:
            out.append(Segment(run_key, tuple(run)))
            run = []
        run.append(ref)
        run_key = key
    if run:
        out.append(Segment(run_key, tuple(run)))
    return out


def active_chunks(chunks: Sequence[ChunkRef]) -> list[ChunkRef]:
    """The chunks after the last one in a segment object: what the next roll takes from."""
    i = len(chunks)
    while i > 0 and not chunks[i - 1].in_segment:
        i -= 1
    return list(chunks[i:])


def roll_plan(
    active: Sequence[ChunkRef], *, roll_bytes: int, segment_ms: int, now_ms: int
) -> list[ChunkRef]:
    """The chunks to copy into a new segment object now (empty: not yet). A full
    segment's worth rolls at once, however young; a younger run rolls whole once its
    first chunk is `segment_ms` old (Kafka rolls by the first batch's timestamp)."""
    if not active:
        return []
    out: list[ChunkRef] = []
    size = 0
    for ref in active:
        if out and size + ref.length > roll_bytes:
            return out  # a full segment
        out.append(ref)
        size += ref.length
    if size >= roll_bytes or now_ms - active[0].max_timestamp >= segment_ms:
        return out
    return []


def retention_start(
    segments: Sequence[Segment],
    *,
    log_start: int,
    retention_ms: int,
    retention_bytes: int,
    now_ms: int,
) -> int:
    """The log start after retention: the end of the last whole segment, from the
    front, that is past `retention_ms` (its newest record is older) or that the
    partition can lose and still hold `retention_bytes`. -1 disables either rule.
    Never below `log_start`."""
    live = [s for s in segments if s.end_offset > log_start]
    total = sum(s.size for s in live)
    start = log_start
    for seg in live:
        expired = retention_ms >= 0 and now_ms - seg.max_timestamp > retention_ms
        oversize = retention_bytes >= 0 and total - seg.size >= retention_bytes
        if not (expired or oversize):
            break
        start = seg.end_offset
        total -= seg.size
    return start


def clean_plan(
    segments: Sequence[Segment],
    *,
    cleaned_end: int,
    committed_end: int,
    stable_end: int,
    now_ms: int,
    min_lag_ms: int,
    max_lag_ms: int,
    min_dirty_ratio: float,
    max_bytes: int,
) -> list[Segment]:
    """The closed segments to compact now, from the front (empty: not now), as Kafka's
    cleaner chooses a log: only segment objects, ending at or below the last stable
    offset and below the committed end (the newest data is never touched, as Kafka
    never touches the active segment), each at least `min_lag_ms` old by its newest
    record; then only if the part not yet cleaned (from `cleaned_end`) is at least
    `min_dirty_ratio` of them by bytes, or its oldest chunk is `max_lag_ms` old. At
    most `max_bytes` of them (the cleaner holds them in memory): the rest waits."""
    cleanable: list[Segment] = []
    size = 0
    for seg in segments:
        if seg.key is None or seg.end_offset > stable_end or seg.end_offset >= committed_end:
            break
        if now_ms - seg.max_timestamp < min_lag_ms:
            break
        if cleanable and size + seg.size > max_bytes:
            break
        cleanable.append(seg)
        size += seg.size
    dirty = [s for s in cleanable if s.end_offset > cleaned_end]
    if not dirty:
        return []
    dirty_bytes = sum(s.size for s in dirty)
    overdue = now_ms - dirty[0].chunks[0].max_timestamp >= max_lag_ms
    if size and (dirty_bytes / size >= min_dirty_ratio or overdue):
        return cleanable
    return []
