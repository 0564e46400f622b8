"""The read path: batches from the in-memory tail, older ones from the bucket.

Owns: turning (partition, offset, max_bytes) into the bytes a Fetch returns, the
timestamp lookups of ListOffsets, the bounded cache of committed chunks read by ranged
GET, and the readahead that fills it (docs/read-path.md). Reads only.

Guarantees: nothing past the high watermark is ever returned; whole batches only, the
first one even if it alone exceeds `max_bytes` (so a consumer always progresses); a
chunk whose length or CRC-32C does not match its index entry is never served
(KAFKA_STORAGE_ERROR instead); one GET per chunk at a time, however many readers and
readaheads want it.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import crc32c

from tidelog.protocol.batch import BatchHeader, iter_batches
from tidelog.protocol.errors import ErrorCode, RecordBatchError
from tidelog.protocol.records import Record, decode_batch
from tidelog.storage.clock import SYSTEM_CLOCK, Clock
from tidelog.storage.errors import StoreError
from tidelog.storage.object_store import ObjectStore, ObjectStoreError
from tidelog.storage.partition_log import PartitionLog
from tidelog.storage.stream_state import ChunkRef
from tidelog.storage.txn_index import AbortedTxn

log = logging.getLogger(__name__)

ChunkKey = tuple[str, int, int]  # (stream, commit seq, position)
_RECENT_S = 10.0  # a partition read from the bucket this recently shares the cache


@dataclass(frozen=True, slots=True)
class ReadResult:
    high_watermark: int
    log_start_offset: int
    parts: list[bytes | bytearray | memoryview]
    last_stable_offset: int = -1  # -1: the high watermark (no transaction open)
    # read_committed only: aborted transactions with records in what was returned
    aborted: tuple[AbortedTxn, ...] | None = None

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts)


class LogReader:
    def __init__(
        self,
        store: ObjectStore,
        *,
        chunk_cache_bytes: int,
        readahead_bytes: int = 8 << 20,
        max_loading_bytes: int = 64 << 20,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._store = store
        self._cache: OrderedDict[ChunkKey, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = chunk_cache_bytes
        self._loading: dict[ChunkKey, asyncio.Task[bytes]] = {}
        self._loading_bytes = 0
        self._readahead = readahead_bytes  # per partition, past the chunk being read
        self._max_loading = max_loading_bytes  # readahead stops starting GETs above this
        self._recent: OrderedDict[tuple[str, int], float] = OrderedDict()
        self.gets = 0  # ranged GETs started, for tests and benchmarks
        self.cache_hits = 0  # chunk reads the cache answered (metrics)
        self.cache_misses = 0  # ... that waited for a GET, started now or before

    async def read(
        self, part: PartitionLog, offset: int, max_bytes: int, *, committed: bool = False
    ) -> ReadResult:
        """`committed` (read_committed): only below the last stable offset, with the
        aborted transactions the returned batches hold records of."""
        hw = part.high_watermark
        lso = part.last_stable_offset
        where = f"topic={part.state.topic} partition={part.state.partition} offset={offset}"
        if offset < part.log_start or offset > hw:
            raise StoreError(
                ErrorCode.offset_out_of_range,
                f"offset out of range {where} log_start={part.log_start} high_watermark={hw}",
            )
        bound = lso if committed else hw
        if offset >= bound:
            return self._result(part, hw, lso, [], committed, offset)
        while offset < part.tail_start:
            ref = part.state.chunk_for(offset)
            if ref is None:
                raise StoreError(ErrorCode.offset_out_of_range, f"offset in no chunk {where}")
            chunk = await self._chunk(ref)
            self._read_ahead(part, ref)
            # One chunk per read: going on into the next chunk made responses bigger and
            # consumers slower here (docs/read-path.md).
            view = _slice_from(chunk, offset, max_bytes, bound)
            if view or ref.end_offset >= bound:
                return self._result(part, hw, lso, [view] if view else [], committed, offset)
            offset = ref.end_offset  # compaction left nothing at or after offset here
        parts = list(part.read_tail(offset, max_bytes, bound))
        return self._result(part, hw, lso, parts, committed, offset)

    @staticmethod
    def _result(
        part: PartitionLog,
        hw: int,
        lso: int,
        parts: list[bytes | bytearray | memoryview],
        committed: bool,
        offset: int,
    ) -> ReadResult:
        aborted = None
        if committed:
            end = offset
            if parts:
                for _, h in iter_batches(memoryview(parts[-1])):
                    end = h.next_offset
            aborted = tuple(part.state.txns.aborted_between(offset, end)) if end > offset else ()
        return ReadResult(hw, part.log_start, parts, lso, aborted)

    def prefetch(self, part: PartitionLog, offset: int) -> None:
        """Start loading the chunk holding `offset` (and what follows) without waiting,
        so the partitions of one Fetch are read from the bucket side by side."""
        if part.log_start <= offset < min(part.tail_start, part.high_watermark):
            ref = part.state.chunk_for(offset)
            if ref is not None:
                if not self._present(ref):
                    self._start(ref)
                self._read_ahead(part, ref)

    async def offset_for_timestamp(self, part: PartitionLog, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset) of the first record at or after `timestamp`, or (-1, -1)."""
        async for h, batch in self._visible_batches(part):
            if h.max_timestamp >= timestamp:
                records = _records_of(batch)
                if records is None:
                    return h.max_timestamp, max(h.base_offset, part.log_start)
                for rec in records:
                    # a batch may straddle the log start: what is below it is gone
                    if rec.timestamp >= timestamp and rec.offset >= part.log_start:
                        return rec.timestamp, rec.offset
        return -1, -1

    async def max_timestamp_offset(self, part: PartitionLog) -> tuple[int, int]:
        """(timestamp, offset) of the record with the largest timestamp, or (-1, -1)."""
        best: tuple[BatchHeader, bytes] | None = None
        async for h, batch in self._visible_batches(part):
            if best is None or h.max_timestamp > best[0].max_timestamp:
                best = (h, bytes(batch))
        if best is None:
            return -1, -1
        header, data = best
        records = _records_of(data)
        if records is None:
            return header.max_timestamp, max(header.base_offset, part.log_start)
        for rec in records:
            if rec.timestamp == header.max_timestamp and rec.offset >= part.log_start:
                return rec.timestamp, rec.offset
        return -1, -1

    async def _visible_batches(
        self, part: PartitionLog
    ) -> AsyncIterator[tuple[BatchHeader, bytes | memoryview]]:
        """Every visible batch as (header, bytes), oldest first."""
        tail_start = part.tail_start
        for ref in part.state.chunks:
            if ref.base_offset >= tail_start:
                break
            view = memoryview(await self._chunk(ref))
            for pos, h in iter_batches(view):
                if h.base_offset >= tail_start:
                    break
                yield h, view[pos : pos + h.size]
        for b in list(part.tail):
            if b.end_offset > part.high_watermark:
                break
            for pos, h in iter_batches(b.data):
                yield h, memoryview(b.data)[pos : pos + h.size]

    @staticmethod
    def _key(ref: ChunkRef) -> ChunkKey:
        return (ref.stream, ref.commit_seq, ref.position)

    def _present(self, ref: ChunkRef) -> bool:
        key = self._key(ref)
        return key in self._cache or key in self._loading

    async def load(self, ref: ChunkRef) -> bytes:
        """One chunk's bytes straight from the bucket, checked, not cached (for the
        segment roller: it reads each chunk once)."""
        return await self._load(ref)

    async def _chunk(self, ref: ChunkRef) -> bytes:
        key = self._key(ref)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return cached
        self.cache_misses += 1
        task = self._loading.get(key) or self._start(ref)
        # shield: a reader that gives up (its connection closed) does not cancel a GET
        # that other readers, or the cache, still want.
        return await asyncio.shield(task)

    def _window(self, part: PartitionLog) -> int:
        """Bytes to read ahead for `part`: `readahead_bytes`, cut so that every partition
        read from the bucket in the last 10 s fits in half the cache with its window, so
        chunks read ahead are not evicted before they are used (and fetched twice)."""
        now = self._clock.monotonic()
        self._recent[part.key] = now
        self._recent.move_to_end(part.key)
        while self._recent and next(iter(self._recent.values())) < now - _RECENT_S:
            self._recent.popitem(last=False)
        return min(self._readahead, self._cache_limit // (2 * len(self._recent)))

    def _read_ahead(self, part: PartitionLog, ref: ChunkRef) -> None:
        """Start GETs for the chunks after `ref`, up to the partition's window of them,
        while fewer than `max_loading_bytes` are on their way. Chunks the memory tail
        holds are never fetched."""
        chunks = part.state.chunks
        i = bisect_right(chunks, ref.base_offset, key=lambda c: c.base_offset)
        ahead = 0
        window = self._window(part)
        tail_start = part.tail_start
        while i < len(chunks) and ahead < window:
            nxt = chunks[i]
            if nxt.base_offset >= tail_start or self._loading_bytes >= self._max_loading:
                return
            ahead += nxt.length
            if not self._present(nxt):
                self._start(nxt)
            i += 1

    def _start(self, ref: ChunkRef) -> asyncio.Task[bytes]:
        key = self._key(ref)
        task = asyncio.get_running_loop().create_task(self._load(ref))
        self._loading[key] = task
        self._loading_bytes += ref.length
        self.gets += 1

        def done(t: asyncio.Task[bytes]) -> None:
            self._loading.pop(key, None)
            self._loading_bytes -= ref.length
            if t.cancelled():
                return
            exc = t.exception()  # retrieved here, so a failed readahead is not an orphan
            if exc is not None:
                log.debug("chunk read failed key=%s error=%s", key, exc)
                return
            self._remember(key, t.result())

        task.add_done_callback(done)
        return task

    async def _load(self, ref: ChunkRef) -> bytes:
        try:
            raw = await self._store.get_range(ref.object_key, ref.position, ref.length)
        except ObjectStoreError as exc:
            raise StoreError(
                ErrorCode.kafka_storage_error, f"object store read failed error={exc}"
            ) from None
        if len(raw) != ref.length or crc32c.crc32c(raw) != ref.crc:
            raise StoreError(
                ErrorCode.kafka_storage_error,
                f"chunk does not match its index key={ref.object_key} position={ref.position}",
            )
        return raw

    def _remember(self, key: ChunkKey, raw: bytes) -> None:
        if key in self._cache:
            return
        self._cache[key] = raw
        self._cache_bytes += len(raw)
        while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= len(old)


def _slice_from(chunk: bytes, offset: int, max_bytes: int, bound: int) -> memoryview:
    """The chunk's bytes from the batch holding `offset`, whole batches up to max_bytes,
    none ending past `bound` (the high watermark or the last stable offset)."""
    view = memoryview(chunk)
    start = None
    end = 0
    for pos, h in iter_batches(view):
        if h.next_offset > bound:
            break
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


def _records_of(batch: bytes | memoryview) -> list[Record] | None:
    """The batch's records, or None if they do not decode. Produce checks a batch's
    header and CRC-32C but never decodes its records (docs/protocol.md), so a producer
    can store records that do not parse; a timestamp lookup then answers by the batch's
    first offset (a consumer seeking there skips nothing after it) instead of failing
    the connection."""
    try:
        return decode_batch(batch)
    except RecordBatchError as exc:
        log.warning("undecodable records in a stored batch error=%s", exc)
        return None
