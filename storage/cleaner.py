"""Compacting one partition: read its closed segments, clean them, point the index at
the result (docs/compaction.md, "In the broker").

Owns: the I/O around the pure cleaner (`storage/compaction.py`): reading the segments
`storage/segments.py` `clean_plan` chose (one ranged GET per segment object when its
chunks lie back to back), building the offset map over all of them, rewriting them in
windows of at most `--segment-object-bytes`, each into one new segment object cut into
chunks of about 1 MiB at batch boundaries, and committing per window a `segment` op
(the same op a roll commits) and at the end a `cleaned` op.

Guarantees: offsets never change (a chunk spans the offsets of its batches; what
compaction removed whole leaves a gap the read path steps over); a window the cleaner
did not change is not rewritten; a segment that does not decode is copied as it was
(the cleaner says so); the old objects leave the index only by the `segment` op, and
the lifecycle pass deletes them after `file.delete.delay.ms`, as any object that left.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import crc32c

from tidelog.protocol.batch import iter_batches
from tidelog.storage.compaction import CleanerStats, build_offset_map, clean_segments
from tidelog.storage.object_store import ObjectStore
from tidelog.storage.partition_log import PartitionLog
from tidelog.storage.paths import SegmentName
from tidelog.storage.segments import Segment, segment_op
from tidelog.storage.stream_state import ChunkRef

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20  # a fetch GETs one chunk whole: keep them small
LoadChunk = Callable[[ChunkRef], Awaitable[bytes]]
StreamOps = Callable[[Sequence[dict[str, Any]]], Awaitable[int]]


@dataclass(slots=True)
class CleanOutcome:
    objects: int = 0  # segment objects written
    stats: CleanerStats | None = None


async def read_segment(store: ObjectStore, seg: Segment, load: LoadChunk) -> bytes:
    """The segment's bytes, its chunks checked against their CRCs."""
    chunks = seg.chunks
    back_to_back = all(a.position + a.length == b.position for a, b in itertools.pairwise(chunks))
    if seg.key is not None and back_to_back:
        first = chunks[0]
        raw = await store.get_range(seg.key, first.position, sum(c.length for c in chunks))
        view, at, ok = memoryview(raw), 0, len(raw) == seg.size
        for c in chunks:
            ok = ok and crc32c.crc32c(view[at : at + c.length]) == c.crc
            at += c.length
        if ok:
            return raw
    return b"".join([await load(c) for c in chunks])  # checked one by one


def chunk_refs(data: bytes, key: str, position: int) -> list[ChunkRef]:
    """Chunks of about CHUNK_BYTES over a cleaned segment's batches (none if empty)."""
    out: list[ChunkRef] = []
    start = base = end = -1
    max_ts = -1
    view = memoryview(data)

    def cut(upto: int) -> None:
        part = view[start:upto]
        out.append(
            ChunkRef(base, end, max_ts, key, -1, position + start, len(part), crc32c.crc32c(part))
        )

    for pos, h in iter_batches(view):
        if start >= 0 and pos - start + h.size > CHUNK_BYTES:
            cut(pos)
            start = -1
        if start < 0:
            start, base, max_ts = pos, h.base_offset, h.max_timestamp
        end, max_ts = h.next_offset, max(max_ts, h.max_timestamp)
    if start >= 0:
        cut(len(data))
    return out


async def clean_partition(
    part: PartitionLog,
    plan: Sequence[Segment],
    *,
    store: ObjectStore,
    load: LoadChunk,
    stream_ops: StreamOps,
    now_ms: int,
    delete_retention_ms: int,
    window_bytes: int,
) -> CleanOutcome:
    topic, partition = part.key
    datas = [await read_segment(store, s, load) for s in plan]
    aborted = list(part.state.txns.aborted)
    offset_map = build_offset_map(datas, aborted=aborted)
    outcome = CleanOutcome(stats=CleanerStats())
    i = 0
    while i < len(plan):
        j, size = i + 1, plan[i].size
        while j < len(plan) and size + plan[j].size <= window_bytes:
            size += plan[j].size
            j += 1
        result = clean_segments(
            datas[i:j],
            offset_map,
            now_ms=now_ms,
            delete_retention_ms=delete_retention_ms,
            aborted=aborted,
        )
        if outcome.stats is not None:
            outcome.stats.add(result.stats)
        if result.changed:
            await _replace(
                part, plan[i:j], [c.data for c in result.segments], store, stream_ops, now_ms
            )
            outcome.objects += 1
        i = j
    op = {"op": "cleaned", "topic": topic, "partition": partition, "id": part.topic_id}
    await stream_ops([{**op, "offset": plan[-1].end_offset}])
    return outcome


async def _replace(
    part: PartitionLog,
    window: Sequence[Segment],
    cleaned: list[bytes],
    store: ObjectStore,
    stream_ops: StreamOps,
    now_ms: int,
) -> None:
    topic, partition = part.key
    name = SegmentName(
        part.topic_id, partition, window[0].base_offset, now_ms, secrets.token_hex(4)
    )
    refs: list[ChunkRef] = []
    position = 0
    for data in cleaned:
        refs += chunk_refs(data, name.key, position)
        position += len(data)
    await store.put_if_absent(name.key, list(cleaned))
    op = segment_op(part.key, part.topic_id, window[0].base_offset, window[-1].end_offset, refs)
    await stream_ops([op])
    part.evict_below(window[-1].end_offset)
    log.info(
        "compacted topic=%s partition=%d base=%d end=%d bytes_before=%d bytes_after=%d key=%s",
        topic,
        partition,
        window[0].base_offset,
        window[-1].end_offset,
        sum(s.size for s in window),
        position,
        name.key,
    )
