"""The read path: batches from the in-memory tail, older ones from the bucket.

Owns: turning (partition, offset, max_bytes) into the bytes a Fetch returns, the
timestamp lookups of ListOffsets, and the bounded cache of committed chunks read by
ranged GET. Reads only.

Guarantees: nothing past the high watermark is ever returned; whole batches only, the
first one even if it alone exceeds `max_bytes` (so a consumer always progresses); a
chunk whose length or CRC-32C does not match its index entry is never served
(KAFKA_STORAGE_ERROR instead).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import crc32c

from protocol.batch import iter_batches
from protocol.errors import ErrorCode
from protocol.records import decode_batch
from storage.errors import StoreError
from storage.object_store import ObjectStore, ObjectStoreError
from storage.partition_log import PartitionLog
from storage.paths import stream_commit_key
from storage.stream_state import ChunkRef


@dataclass(frozen=True, slots=True)
class ReadResult:
    high_watermark: int
    log_start_offset: int
    parts: list[bytes | bytearray | memoryview]

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts)


class LogReader:
    def __init__(self, store: ObjectStore, *, chunk_cache_bytes: int) -> None:
        self._store = store
        self._cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = chunk_cache_bytes

    async def read(self, part: PartitionLog, offset: int, max_bytes: int) -> ReadResult:
        hw = part.high_watermark
        where = f"topic={part.state.topic} partition={part.state.partition} offset={offset}"
        if offset < part.log_start or offset > hw:
            raise StoreError(
                ErrorCode.offset_out_of_range,
                f"offset out of range {where} log_start={part.log_start} high_watermark={hw}",
            )
        if offset == hw:
            return ReadResult(hw, part.log_start, [])
        if offset >= part.tail_start:
            return ReadResult(hw, part.log_start, list(part.read_tail(offset, max_bytes)))
        ref = part.state.chunk_for(offset)
        if ref is None:
            raise StoreError(ErrorCode.offset_out_of_range, f"offset in no chunk {where}")
        chunk = await self._chunk(ref)
        return ReadResult(hw, part.log_start, [_slice_from(chunk, offset, max_bytes)])

    async def offset_for_timestamp(self, part: PartitionLog, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset) of the first record at or after `timestamp`, or (-1, -1)."""
        async for max_ts, batch in self._visible_batches(part):
            if max_ts >= timestamp:
                for rec in decode_batch(batch):
                    if rec.timestamp >= timestamp:
                        return rec.timestamp, rec.offset
        return -1, -1

    async def max_timestamp_offset(self, part: PartitionLog) -> tuple[int, int]:
        """(timestamp, offset) of the record with the largest timestamp, or (-1, -1)."""
        best: tuple[int, bytes] | None = None
        async for max_ts, batch in self._visible_batches(part):
            if best is None or max_ts > best[0]:
                best = (max_ts, bytes(batch))
        if best is None:
            return -1, -1
        for rec in decode_batch(best[1]):
            if rec.timestamp == best[0]:
                return rec.timestamp, rec.offset
        return -1, -1

    async def _visible_batches(
        self, part: PartitionLog
    ) -> AsyncIterator[tuple[int, bytes | memoryview]]:
        """Every visible batch as (max_timestamp, bytes), oldest first."""
        tail_start = part.tail_start
        for ref in part.state.chunks:
            if ref.base_offset >= tail_start:
                break
            view = memoryview(await self._chunk(ref))
            for pos, h in iter_batches(view):
                if h.base_offset >= tail_start:
                    break
                yield h.max_timestamp, view[pos : pos + h.size]
        for b in list(part.tail):
            if b.end_offset > part.high_watermark:
                break
            for pos, h in iter_batches(b.data):
                yield h.max_timestamp, memoryview(b.data)[pos : pos + h.size]

    async def _chunk(self, ref: ChunkRef) -> bytes:
        key = (ref.stream, ref.commit_seq, ref.position)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        try:
            raw = await self._store.get_range(
                stream_commit_key(ref.stream, ref.commit_seq), ref.position, ref.length
            )
        except ObjectStoreError as exc:
            raise StoreError(
                ErrorCode.kafka_storage_error, f"object store read failed error={exc}"
            ) from None
        if len(raw) != ref.length or crc32c.crc32c(raw) != ref.crc:
            raise StoreError(
                ErrorCode.kafka_storage_error,
                f"chunk does not match its index stream={ref.stream} seq={ref.commit_seq} "
                f"position={ref.position}",
            )
        self._cache[key] = raw
        self._cache_bytes += len(raw)
        while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= len(old)
        return raw


def _slice_from(chunk: bytes, offset: int, max_bytes: int) -> memoryview:
    """The chunk's bytes from the batch holding `offset`, whole batches up to max_bytes."""
    view = memoryview(chunk)
    start = None
    end = 0
    for pos, h in iter_batches(view):
        batch_end = pos + h.size
        if start is None:
            if h.last_offset < offset:
                continue
            start = pos
        elif batch_end - start > max_bytes:
            break
        end = batch_end
    if start is None:
        return view[0:0]
    return view[start:end]
