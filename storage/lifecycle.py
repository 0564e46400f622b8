"""The partition lifecycle pass: roll segments, enforce retention, delete what went.

Owns: the background task that, every `log.retention.check.interval.ms`, goes over the
partitions this broker leads and, for each one (docs/segments.md):
1. retention (`cleanup.policy` with `delete`): moves the log start past the whole
   segments `retention.ms` / `retention.bytes` let go (the `log_start` stream op, the
   one DeleteRecords commits);
2. rolls the active segment: copies its first chunks, byte for byte, from the per-flush
   commit objects (or the memory tail) into one segment object of this partition, then
   commits a `segment` op that points the index at it;
3. deletes the segment objects the index no longer names, `file.delete.delay.ms` after
   they left it (a fetch that took a chunk reference just before still finds it).

Between two such passes, every `log.cleaner.backoff.ms`, a shorter cleaner pass does 2
(and the compaction of docs/compaction.md) for the partitions of compacted topics only,
so a compacted topic is cleaned within seconds of a segment closing, as Kafka's cleaner
thread has it, while retention keeps its own, longer interval. Both passes run in one
task, one after the other: never two at once on a partition.

Guarantees: nothing is deleted that the partition's index still names; a segment object
is put before the op that names it is committed. The orphan sweep of a new owner runs
only after it adopted the partition, that is after it sealed the previous owner's
stream, so an op the previous owner commits for an object the sweep dooms is an orphan
too (docs/segments.md). A failure of one partition is logged and the pass goes on with
the next.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import crc32c

from tidelog.storage.cleaner import clean_partition
from tidelog.storage.clock import Clock
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.errors import StoreError
from tidelog.storage.janitor import Janitor
from tidelog.storage.log_reader import LogReader
from tidelog.storage.meta_state import GROUP_TOPIC, MetaState, TopicState
from tidelog.storage.object_store import Buffer, ObjectStore, ObjectStoreError
from tidelog.storage.partition_log import PartitionLog
from tidelog.storage.paths import SegmentName, parse_segment_key, segment_prefix
from tidelog.storage.segments import (
    CLEAN_WINDOWS,
    ROLLS_PER_PASS,
    active_chunks,
    clean_plan,
    retention_start,
    roll_plan,
    segment_op,
    segments_of,
)
from tidelog.storage.store_config import StoreConfig
from tidelog.storage.stream_state import ChunkRef, PartitionKey, StreamState

log = logging.getLogger(__name__)

StreamOps = Callable[[Sequence[dict[str, Any]]], Awaitable[int]]
TopicConfig = Callable[[str, str], str]  # (topic, config name) -> the value in force
LoadChunk = Callable[[ChunkRef], Awaitable[bytes]]


class StoreParts(Protocol):
    """What the pass uses of a broker's store (storage/log_store.py)."""

    config: StoreConfig
    store: ObjectStore
    clock: Clock
    partitions: dict[PartitionKey, PartitionLog]
    meta: CommitLog[MetaState]

    @property
    def reader(self) -> LogReader: ...

    @property
    def stream(self) -> CommitLog[StreamState]: ...

    def topic(self, name: str) -> TopicState | None: ...

    def serves(self, key: PartitionKey) -> bool: ...

    def topic_config(self, topic: str, name: str) -> str: ...

    async def stream_ops(self, ops: Sequence[dict[str, Any]]) -> int: ...


@dataclass(slots=True)
class PassStats:
    """What one pass did, for logs, tests and `tidelog inspect`."""

    partitions: int = 0
    rolled: int = 0  # segment objects written and committed
    rolled_bytes: int = 0
    retained: int = 0  # partitions whose log start retention moved
    compacted: int = 0  # segment objects the cleaner wrote
    compacted_removed: int = 0  # records it removed
    deleted: int = 0  # segment objects deleted
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def failed_on(self, key: PartitionKey, exc: Exception, what: str) -> None:
        """One partition's failure: counted, kept for `tidelog inspect`, logged; the
        pass goes on with the next partition."""
        self.failed += 1
        self.errors.append(f"topic={key[0]} partition={key[1]} error={exc}")
        log.warning("%s topic=%s partition=%d error=%s", what, key[0], key[1], exc)


class Lifecycle:
    def __init__(
        self,
        store: ObjectStore,
        partitions: Mapping[PartitionKey, PartitionLog],
        *,
        topic_config: TopicConfig,
        stream_ops: StreamOps,
        load_chunk: LoadChunk,
        clock: Clock,
        check_interval_ms: int,
        cleaner_backoff_ms: int,
        segment_object_bytes: int,
        is_user_topic: Callable[[str], bool],
        janitor: Janitor | None = None,
    ) -> None:
        self._store = store
        self._partitions = partitions
        self._config = topic_config
        self._stream_ops = stream_ops
        self._load = load_chunk
        self._clock = clock
        self.check_interval_ms = check_interval_ms
        self.cleaner_backoff_ms = cleaner_backoff_ms
        self._cap = segment_object_bytes
        self._is_user_topic = is_user_topic
        self.janitor = janitor
        self._named: dict[PartitionKey, set[str]] = {}  # segment keys the index named
        self._doomed: dict[str, int] = {}  # segment key -> wall ms it may go at
        self._task: asyncio.Task[None] | None = None
        self.passes = 0
        self.cleaner_passes = 0
        self.last = PassStats()

    @classmethod
    def of(cls, store: StoreParts) -> Lifecycle:
        """The pass over a broker's store, as `tidelog serve` configures it."""
        config = store.config
        janitor = Janitor(
            store.store,
            store.meta,
            lambda: store.stream,
            is_janitor=lambda: store.serves((GROUP_TOPIC, 0)),
            clock=store.clock,
            delete_delay_ms=config.log_segment_delete_delay_ms,
            node_id=config.node_id,
        )
        return cls(
            store.store,
            store.partitions,
            topic_config=store.topic_config,
            stream_ops=store.stream_ops,
            load_chunk=lambda ref: store.reader.load(ref),
            clock=store.clock,
            check_interval_ms=config.log_retention_check_interval_ms,
            cleaner_backoff_ms=config.log_cleaner_backoff_ms,
            segment_object_bytes=config.segment_object_bytes,
            is_user_topic=lambda name: store.topic(name) is not None,
            janitor=janitor,
        )

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        now = self._clock.monotonic()
        next_full = now + self.check_interval_ms / 1000
        next_clean = now + self.cleaner_backoff_ms / 1000
        while True:
            await self._clock.sleep(max(0.0, min(next_full, next_clean) - self._clock.monotonic()))
            full = self._clock.monotonic() >= next_full
            try:
                await (self.run_once() if full else self.run_cleaner_once())
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad pass must not end the task
                log.exception("lifecycle pass failed")
            now = self._clock.monotonic()
            if full:  # the full pass cleaned too
                next_full = now + self.check_interval_ms / 1000
            next_clean = now + self.cleaner_backoff_ms / 1000

    async def run_cleaner_once(self) -> PassStats:
        """Roll and clean the partitions of compacted topics; nothing else."""
        stats = PassStats()
        for key, part in list(self._partitions.items()):
            if not self._is_user_topic(key[0]) or "compact" not in self._policy(key[0]):
                continue
            stats.partitions += 1
            try:
                await self._roll_and_compact(key, part, stats, self._clock.wall_ms())
            except (StoreError, ObjectStoreError) as exc:
                stats.failed_on(key, exc, "cleaner")
            if key in self._named:  # else the full pass's first sight sweeps it
                self._note_names(key, part, self._clock.wall_ms())
        await self._delete_due(stats)
        self.cleaner_passes += 1
        if stats.rolled or stats.compacted or stats.deleted or stats.failed:
            log.info(
                "cleaner pass partitions=%d rolled=%d rolled_bytes=%d compacted=%d "
                "deleted=%d failed=%d",
                stats.partitions,
                stats.rolled,
                stats.rolled_bytes,
                stats.compacted,
                stats.deleted,
                stats.failed,
            )
        return stats

    async def run_once(self) -> PassStats:
        stats = PassStats()
        for key, part in list(self._partitions.items()):
            if not self._is_user_topic(key[0]):
                continue
            stats.partitions += 1
            try:
                await self._partition(key, part, stats)
            except (StoreError, ObjectStoreError) as exc:
                stats.failed_on(key, exc, "lifecycle")
        await self._delete_due(stats)
        if self.janitor is not None:
            await self.janitor.run_once()
        for key in [k for k in self._named if k not in self._partitions]:
            del self._named[key]  # moved away: its next owner sweeps it
        self.passes += 1
        self.last = stats
        if stats.rolled or stats.retained or stats.compacted or stats.deleted or stats.failed:
            log.info(
                "lifecycle pass partitions=%d rolled=%d rolled_bytes=%d retained=%d "
                "compacted=%d deleted=%d failed=%d",
                stats.partitions,
                stats.rolled,
                stats.rolled_bytes,
                stats.retained,
                stats.compacted,
                stats.deleted,
                stats.failed,
            )
        return stats

    def _int(self, topic: str, name: str) -> int:
        return int(self._config(topic, name))

    def _policy(self, topic: str) -> set[str]:
        return {p.strip() for p in self._config(topic, "cleanup.policy").split(",")}

    async def _partition(self, key: PartitionKey, part: PartitionLog, stats: PassStats) -> None:
        topic, partition = key
        now = self._clock.wall_ms()
        policy = self._policy(topic)
        if "delete" in policy:
            start = retention_start(
                segments_of(part.state.chunks),
                log_start=part.log_start,
                retention_ms=self._int(topic, "retention.ms"),
                retention_bytes=self._int(topic, "retention.bytes"),
                now_ms=now,
            )
            if start > part.log_start:
                op = {"op": "log_start", "topic": topic, "partition": partition, "offset": start}
                await self._stream_ops([op])
                stats.retained += 1
                log.info("retention topic=%s partition=%d log_start=%d", topic, partition, start)
        await self._roll_and_compact(key, part, stats, now)
        first_sight = key not in self._named
        self._note_names(key, part, now)
        if first_sight:
            await self._sweep(key, part, now)

    async def _roll_and_compact(
        self, key: PartitionKey, part: PartitionLog, stats: PassStats, now: int
    ) -> None:
        topic = key[0]
        roll_bytes = min(self._int(topic, "segment.bytes"), self._cap)
        for _ in range(ROLLS_PER_PASS):  # a backlog of full segments goes over passes
            plan = roll_plan(
                active_chunks(part.state.chunks),
                roll_bytes=roll_bytes,
                segment_ms=self._int(topic, "segment.ms"),
                now_ms=now,
            )
            if not plan or self._partitions.get(key) is not part:
                break
            if not await self._roll(part, plan, stats):
                break
        if "compact" in self._policy(topic) and self._partitions.get(key) is part:
            await self._compact(part, stats, now)

    async def _compact(self, part: PartitionLog, stats: PassStats, now: int) -> None:
        topic = part.key[0]
        plan = clean_plan(
            segments_of(part.state.chunks),
            cleaned_end=part.state.cleaned_end,
            committed_end=part.committed_end,
            stable_end=part.last_stable_offset,
            now_ms=now,
            min_lag_ms=self._int(topic, "min.compaction.lag.ms"),
            max_lag_ms=self._int(topic, "max.compaction.lag.ms"),
            min_dirty_ratio=float(self._config(topic, "min.cleanable.dirty.ratio")),
            max_bytes=CLEAN_WINDOWS * self._cap,
        )
        if plan:
            outcome = await clean_partition(
                part,
                plan,
                store=self._store,
                load=self._load,
                stream_ops=self._stream_ops,
                now_ms=now,
                delete_retention_ms=self._int(topic, "delete.retention.ms"),
                window_bytes=self._cap,
            )
            stats.compacted += outcome.objects
            if outcome.stats is not None:
                stats.compacted_removed += outcome.stats.records_removed

    async def _roll(self, part: PartitionLog, plan: list[ChunkRef], stats: PassStats) -> bool:
        """Whether the index names the new segment object now."""
        topic, partition = part.key
        created = self._clock.wall_ms()
        name = SegmentName(
            part.topic_id, partition, plan[0].base_offset, created, secrets.token_hex(4)
        )
        data: list[Buffer] = []
        chunks: list[ChunkRef] = []
        position = 0
        for ref in plan:
            raw = self._from_tail(part, ref) or await self._load(ref)
            data.append(raw)
            moved = ChunkRef(
                ref.base_offset,
                ref.end_offset,
                ref.max_timestamp,
                name.key,
                -1,
                position,
                ref.length,
                ref.crc,
            )
            chunks.append(moved)
            position += len(raw)
        await self._store.put_if_absent(name.key, data)
        if self._partitions.get(part.key) is not part:
            log.warning("segment abandoned (the partition moved away) key=%s", name.key)
            return False  # an orphan: its next owner sweeps it
        op = segment_op(part.key, part.topic_id, plan[0].base_offset, plan[-1].end_offset, chunks)
        await self._stream_ops([op])
        if not any(c.object_key == name.key for c in part.state.chunks):
            log.warning("segment not taken (the index changed under it) key=%s", name.key)
            self._doomed[name.key] = self._clock.wall_ms()  # named by nothing, ever
            return False
        stats.rolled += 1
        stats.rolled_bytes += position
        log.info(
            "segment rolled topic=%s partition=%d base=%d end=%d bytes=%d chunks=%d key=%s",
            topic,
            partition,
            plan[0].base_offset,
            plan[-1].end_offset,
            position,
            len(plan),
            name.key,
        )
        return True

    @staticmethod
    def _from_tail(part: PartitionLog, ref: ChunkRef) -> bytes | None:
        """The chunk's bytes from the memory tail, if it still holds all of them."""
        if ref.base_offset < part.tail_start:
            return None
        pieces = [b.data for b in part.tail if ref.base_offset <= b.base_offset < ref.end_offset]
        raw = b"".join(pieces)
        if len(raw) != ref.length or crc32c.crc32c(raw) != ref.crc:
            return None
        return raw

    def _note_names(self, key: PartitionKey, part: PartitionLog, now: int) -> None:
        """Segment objects that left the index are doomed, the delete delay from now."""
        named = {c.object_key for c in part.state.chunks if c.in_segment}
        delay = self._int(key[0], "file.delete.delay.ms")
        for gone in self._named.get(key, set()) - named:
            self._doomed.setdefault(gone, now + delay)
        self._named[key] = named

    async def _sweep(self, key: PartitionKey, part: PartitionLog, now: int) -> None:
        """Once per partition this broker starts leading: objects under its prefix that
        its index does not name (a previous owner's, never committed or dropped before
        it could delete them) are doomed, the delete delay after they were written."""
        delay = self._int(key[0], "file.delete.delay.ms")
        named = self._named[key]
        for info in await self._store.list(segment_prefix(part.topic_id, key[1])):
            if info.key in named:
                continue
            try:
                created = parse_segment_key(info.key).created_ms
            except ValueError:
                continue  # not ours to judge
            self._doomed.setdefault(info.key, max(now, created + delay))

    async def _delete_due(self, stats: PassStats) -> None:
        now = self._clock.wall_ms()
        named = set().union(*self._named.values()) if self._named else set()
        for key, due in list(self._doomed.items()):
            if key in named:
                del self._doomed[key]  # named again (a roll retried): keep it
            elif due <= now:
                try:
                    await self._store.delete(key)
                except ObjectStoreError as exc:
                    log.warning("segment delete failed key=%s error=%s", key, exc)
                    continue
                del self._doomed[key]
                stats.deleted += 1
                log.info("segment deleted key=%s", key)
