"""The broker's storage engine: partitions over a WAL, flushed as commits to the bucket.

Owns: the produce path (validate, deduplicate, assign offsets, make durable), the
flusher (one commit object per flush carrying every partition with new data), the
read path (memory tail, then ranged GETs of committed chunks through a bounded cache),
topic metadata changes, producer-id blocks, and recovery at start-up.

Guarantees (docs/durability.md):
- `wal` mode: an append completes only after its batch is fdatasync'ed to the WAL;
  `object` mode: only after the commit holding it is in the bucket;
- the high watermark (what fetches can see) never passes what is durable, so a
  consumer never sees an offset that a crash could take back;
- at start-up every committed byte is found through the commit log and every WAL
  record beyond it is replayed and uploaded before the broker serves anyone;
- a fenced broker (a newer claim exists) stops acknowledging at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import crc32c

from protocol.batch import (
    iter_batches,
    patch_base_offset,
    set_base_offsets,
    validate_produce_records,
)
from protocol.errors import ErrorCode, RecordBatchError
from storage.cluster_state import CommittedOffset, TopicState
from storage.commit_format import Chunk, ProducerBatch
from storage.commit_log import CommitLog, Fenced, LoadStats
from storage.errors import StoreError
from storage.flusher import Flusher
from storage.log_reader import LogReader, ReadResult
from storage.object_store import Buffer, ObjectStore
from storage.partition_log import Batch, PartitionLog
from storage.producer_state import Verdict
from storage.wal import KIND_BATCH, WalError, WalWriter, encode_payload, read_wal

log = logging.getLogger(__name__)

Durability = Literal["wal", "object"]
PartitionKey = tuple[str, int]

TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
DEFAULT_TOPIC_CONFIGS: dict[str, str] = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "max.message.bytes": "1048588",
    "message.timestamp.type": "CreateTime",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "min.insync.replicas": "1",
}


@dataclass(frozen=True, slots=True)
class StoreConfig:
    data_dir: Path
    node_id: int = 1
    durability: Durability = "wal"
    flush_interval_ms: int = 200
    flush_bytes: int = 8 << 20
    max_backlog_bytes: int = 512 << 20
    tail_cache_bytes: int = 64 << 20
    chunk_cache_bytes: int = 128 << 20
    wal_fsync: bool = True
    snapshot_every: int = 256
    max_in_flight_uploads: int = 4
    ops_timeout_s: float = 15.0


@dataclass(frozen=True, slots=True)
class AppendResult:
    base_offset: int
    log_start_offset: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """An append whose offsets are assigned; `durable` completes when it may be acked."""

    result: AppendResult
    durable: Coroutine[Any, Any, None]


def validate_topic_name(name: str) -> None:
    if name in (".", "..") or not TOPIC_NAME.match(name):
        raise StoreError(
            ErrorCode.invalid_topic_exception,
            f"invalid topic name (1-249 of [a-zA-Z0-9._-], not '.' or '..') topic={name!r}",
        )


class LogStore:
    def __init__(self, config: StoreConfig, store: ObjectStore, clock_ms: Callable[[], int]):
        self.config = config
        self.store = store
        self._clock_ms = clock_ms
        self.commit_log = CommitLog(
            store, node_id=config.node_id, clock_ms=clock_ms, snapshot_every=config.snapshot_every
        )
        self._wal_dir = config.data_dir / "wal"
        self.wal: WalWriter | None = None
        self.partitions: dict[PartitionKey, PartitionLog] = {}
        self._uncommitted_bytes = 0  # appended, not yet in a landed commit (the backlog)
        self._unlaunched_bytes = 0  # appended, not yet in any upload
        self.flusher = Flusher(
            self.commit_log,
            self,
            interval_s=config.flush_interval_ms / 1000,
            flush_bytes=config.flush_bytes,
            max_in_flight=config.max_in_flight_uploads,
        )
        self._background: set[asyncio.Task[int]] = set()
        self.reader = LogReader(store, chunk_cache_bytes=config.chunk_cache_bytes)
        self._pid_lock = asyncio.Lock()
        self._pid_next = 0
        self._pid_end = 0
        self.fenced = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> LoadStats:
        stats = await self.commit_log.load()
        self._sync_partitions()
        replayed, marks = self._replay_wal()
        await self.commit_log.claim()
        log.info(
            "claimed ownership node=%d epoch=%d commits_read=%d snapshot_seq=%d "
            "wal_batches_replayed=%d",
            self.config.node_id,
            self.commit_log.epoch,
            stats.commits_read,
            stats.snapshot_seq,
            replayed,
        )
        if self.config.durability == "wal":
            self.wal = WalWriter(self._wal_dir, fsync=self.config.wal_fsync)
            await self.wal.open(marks)
        self.flusher.start()
        if self._uncommitted_bytes and await self.flush_once() is None:
            log.warning("replayed wal data not uploaded yet; it stays in the wal until it is")
        return stats

    async def stop(self) -> None:
        """Upload everything (unless fenced), then stop the pipeline and close the WAL."""
        if not self.fenced and await self.flush_once() is None and self._uncommitted_bytes:
            log.error("final upload failed; data stays in the wal (wal mode) until restart")
        await self.flusher.stop()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.commit_log.close()
        if self.wal is not None:
            await self.wal.close()
        for part in self.partitions.values():
            part.wake_all()

    async def refresh(self) -> int:
        """Fold commits other brokers appended; returns how many."""
        read = await self.commit_log.catch_up()
        self._sync_partitions()
        return read

    def _sync_partitions(self) -> None:
        """Make live partitions match the folded state (topics created or deleted)."""
        state = self.commit_log.state
        for key in list(self.partitions):
            cur = state.partitions.get(key)
            if cur is None or cur is not self.partitions[key].state:
                self.partitions.pop(key).wake_all()
        for key, pstate in state.partitions.items():
            if key not in self.partitions:
                self.partitions[key] = PartitionLog(pstate)

    def _replay_wal(self) -> tuple[int, dict[int, dict[PartitionKey, int]]]:
        if not self._wal_dir.is_dir():
            return 0, {}
        replayed = 0
        marks: dict[int, dict[PartitionKey, int]] = {}
        for file_seq, entry in read_wal(self._wal_dir):
            if entry.kind != KIND_BATCH:
                continue
            key = (entry.topic, entry.partition)
            part = self.partitions.get(key)
            if part is None or part.topic_id != entry.topic_id:
                continue  # the topic was deleted since
            batches = list(iter_batches(entry.body))
            if not batches:
                continue
            base = batches[0][1].base_offset
            end = batches[-1][1].next_offset
            marks.setdefault(file_seq, {})[key] = end
            if end <= part.next_offset:
                continue  # already committed to the bucket
            if base != part.next_offset:
                log.error(
                    "wal replay gap; skipping topic=%s partition=%d expected=%d got=%d",
                    entry.topic,
                    entry.partition,
                    part.next_offset,
                    base,
                )
                continue
            part.add(_stored_batch(base, end, bytes(entry.body)))
            replayed += 1
        for part in self.partitions.values():
            part.advance_high_watermark(part.next_offset)
        self._recount()
        return replayed, marks

    # -- topics ------------------------------------------------------------------------

    def topic(self, name: str) -> TopicState | None:
        return self.commit_log.state.topics.get(name)

    def topics(self) -> dict[str, TopicState]:
        return self.commit_log.state.topics

    async def create_topic(
        self, name: str, partitions: int, configs: dict[str, str] | None = None
    ) -> TopicState:
        validate_topic_name(name)
        if partitions <= 0 or partitions > 100_000:
            raise StoreError(
                ErrorCode.invalid_partitions, f"invalid partition count partitions={partitions}"
            )
        merged = dict(configs or {})
        unknown = sorted(set(merged) - set(DEFAULT_TOPIC_CONFIGS))
        if unknown:
            raise StoreError(ErrorCode.invalid_config, f"unknown topic config names={unknown}")
        if self.topic(name) is not None:
            raise StoreError(ErrorCode.topic_already_exists, f"topic exists topic={name}")
        topic_id = str(uuid.uuid4())
        op = {"op": "create_topic", "name": name, "id": topic_id, "partitions": partitions}
        await self._commit_ops([{**op, "configs": merged}])
        created = self.topic(name)
        if created is None or created.topic_id != topic_id:
            raise StoreError(ErrorCode.topic_already_exists, f"topic exists topic={name}")
        log.info("topic created topic=%s partitions=%d id=%s", name, partitions, topic_id)
        return created

    async def delete_topic(self, name: str) -> None:
        topic = self.topic(name)
        if topic is None:
            raise StoreError(ErrorCode.unknown_topic_or_partition, f"no such topic topic={name}")
        await self._commit_ops([{"op": "delete_topic", "name": name, "id": topic.topic_id}])
        log.info("topic deleted topic=%s id=%s", name, topic.topic_id)

    async def create_partitions(self, name: str, count: int) -> None:
        topic = self.topic(name)
        if topic is None:
            raise StoreError(ErrorCode.unknown_topic_or_partition, f"no such topic topic={name}")
        if count <= topic.partitions:
            raise StoreError(
                ErrorCode.invalid_partitions,
                f"partition count can only grow topic={name} current={topic.partitions} "
                f"requested={count}",
            )
        op = {"op": "create_partitions", "name": name, "id": topic.topic_id, "count": count}
        await self._commit_ops([op])

    async def _commit_ops(self, ops: Sequence[dict[str, Any]]) -> int:
        """Commit metadata ops with the next upload; their effect is visible on return."""
        self._check_writable()
        pending = asyncio.ensure_future(self.flusher.commit_ops(list(ops)))
        try:
            seq = await asyncio.wait_for(asyncio.shield(pending), self.config.ops_timeout_s)
        except Fenced:
            raise StoreError(ErrorCode.not_leader_or_follower, "this broker was replaced") from None
        except TimeoutError:
            # Still queued: it may land later, as a Kafka request that timed out may.
            raise StoreError(
                ErrorCode.request_timed_out,
                "object store did not take the change in time "
                f"timeout_s={self.config.ops_timeout_s}",
            ) from None
        finally:
            self._sync_partitions()
        return seq

    # -- committed group offsets -------------------------------------------------------

    async def commit_offsets(
        self, group: str, offsets: Sequence[tuple[str, int, int, int, str | None]]
    ) -> None:
        """Make (topic, partition, offset, leader_epoch, metadata) rows durable in the
        bucket; returns once a commit holding them has landed (both durability modes)."""
        if offsets:
            rows = [list(o) for o in offsets]
            op = {"op": "offsets", "group": group, "ts": self._clock_ms(), "offsets": rows}
            await self._commit_ops([op])

    def committed_offsets(self, group: str) -> dict[tuple[str, int], CommittedOffset]:
        return self.commit_log.state.group_offsets.get(group, {})

    def groups_with_offsets(self) -> list[str]:
        return sorted(self.commit_log.state.group_offsets)

    async def delete_offsets(self, group: str, partitions: Sequence[tuple[str, int]]) -> None:
        op = {"op": "delete_offsets", "group": group, "partitions": [list(p) for p in partitions]}
        await self._commit_ops([op])

    async def delete_group(self, group: str) -> None:
        await self._commit_ops([{"op": "delete_group", "group": group}])

    async def allocate_producer_id(self) -> int:
        async with self._pid_lock:
            if self._pid_next >= self._pid_end:
                await self._commit_ops(
                    [{"op": "alloc_pids", "node": self.config.node_id, "count": 1000}]
                )
                start, count = self.commit_log.state.pid_blocks[self.config.node_id]
                self._pid_next, self._pid_end = start, start + count
            pid = self._pid_next
            self._pid_next += 1
            return pid

    # -- produce -----------------------------------------------------------------------

    def partition(self, topic: str, partition: int) -> PartitionLog:
        part = self.partitions.get((topic, partition))
        if part is None:
            raise StoreError(
                ErrorCode.unknown_topic_or_partition,
                f"unknown topic or partition topic={topic} partition={partition}",
            )
        return part

    def _check_writable(self) -> None:
        if self.fenced:
            raise StoreError(ErrorCode.not_leader_or_follower, "this broker was replaced")

    def append_nowait(
        self, topic: str, partition: int, records: bytes | bytearray | memoryview
    ) -> PendingAppend:
        """Validate, deduplicate and store one partition's record set now (offsets are
        assigned before this returns); await `durable` before acknowledging it."""
        self._check_writable()
        part = self.partition(topic, partition)
        max_bytes = int(self.topic_config(topic, "max.message.bytes"))
        try:
            headers = validate_produce_records(records)
        except RecordBatchError as exc:
            raise StoreError(exc.error_code, str(exc)) from None
        if len(records) > max_bytes:
            raise StoreError(
                ErrorCode.message_too_large,
                f"batch larger than max.message.bytes size={len(records)} max={max_bytes}",
            )
        first = headers[0]
        count = sum(h.last_offset_delta + 1 for h in headers)
        if first.producer_id >= 0:
            last_seq = first.base_sequence + count - 1
            check = part.state.producers.check(
                first.producer_id, first.producer_epoch, first.base_sequence, last_seq
            )
            if check.verdict is Verdict.DUPLICATE and check.duplicate_of is not None:
                dup = check.duplicate_of
                return PendingAppend(
                    AppendResult(dup.base_offset, part.log_start, duplicate=True),
                    self._wait_visible(part, dup.last_offset + 1),
                )
            if check.verdict is Verdict.OUT_OF_ORDER:
                raise StoreError(
                    ErrorCode.out_of_order_sequence_number,
                    f"out of order sequence topic={topic} partition={partition} "
                    f"producer_id={first.producer_id} sequence={first.base_sequence}",
                )
            if check.verdict is Verdict.STALE_EPOCH:
                raise StoreError(
                    ErrorCode.invalid_producer_epoch,
                    f"stale producer epoch producer_id={first.producer_id} "
                    f"epoch={first.producer_epoch}",
                )
        if self._uncommitted_bytes > self.config.max_backlog_bytes:
            raise StoreError(
                ErrorCode.kafka_storage_error,
                f"upload backlog full; object store slow or unavailable "
                f"backlog_bytes={self._uncommitted_bytes}",
            )
        base = part.next_offset
        data, end = _with_offsets(records, base)
        producer = None
        if first.producer_id >= 0:
            producer = ProducerBatch(
                first.producer_id,
                first.producer_epoch,
                first.base_sequence,
                first.base_sequence + count - 1,
                base,
                end - 1,
            )
        max_ts = max(h.max_timestamp for h in headers)
        part.add(Batch(base, end, max_ts, data, producer))
        self._uncommitted_bytes += len(data)
        self._unlaunched_bytes += len(data)
        self.flusher.kick()
        result = AppendResult(base, part.log_start)
        if self.wal is None:
            return PendingAppend(result, self._wait_visible(part, end))
        head = encode_payload(KIND_BATCH, part.topic_id, topic, partition)
        try:
            synced = self.wal.append(head, data, ((topic, partition), end))
        except WalError as exc:
            raise StoreError(ErrorCode.kafka_storage_error, str(exc)) from None
        return PendingAppend(result, self._wait_wal(part, end, synced))

    async def append(
        self, topic: str, partition: int, records: bytes | bytearray | memoryview
    ) -> AppendResult:
        pending = self.append_nowait(topic, partition, records)
        await pending.durable
        return pending.result

    async def _wait_wal(self, part: PartitionLog, end: int, synced: asyncio.Future[None]) -> None:
        try:
            await synced
        except WalError as exc:
            raise StoreError(ErrorCode.kafka_storage_error, str(exc)) from None
        part.advance_high_watermark(end)

    async def _wait_visible(self, part: PartitionLog, end: int) -> None:
        while part.high_watermark < end:
            if self.fenced:
                raise StoreError(ErrorCode.not_leader_or_follower, "this broker was replaced")
            if self.partitions.get(part.key) is not part:
                raise StoreError(ErrorCode.unknown_topic_or_partition, "topic deleted")
            await part.waiter()

    def topic_config(self, topic: str, name: str) -> str:
        state = self.topic(topic)
        if state is not None and name in state.configs:
            return state.configs[name]
        return DEFAULT_TOPIC_CONFIGS[name]

    # -- flush -------------------------------------------------------------------------

    async def flush_once(self) -> int | None:
        """Upload everything appended so far; the last landed seq, None if nothing landed."""
        if self.fenced:
            return None
        return await self.flusher.drain()

    # FlushSource: what the upload pipeline asks of the store.

    def unflushed_bytes(self) -> int:
        return self._unlaunched_bytes

    def take_chunks(self) -> tuple[list[Chunk], list[Buffer]]:
        chunks: list[Chunk] = []
        data: list[Buffer] = []
        position = 0
        for part in self.partitions.values():
            limit = part.high_watermark if self.wal is not None else part.next_offset
            batches = part.take_unlaunched(limit)
            if not batches:
                continue
            crc = 0
            length = 0
            for b in batches:
                crc = crc32c.crc32c(b.data, crc)
                length += len(b.data)
                data.append(b.data)
            chunks.append(
                Chunk(
                    topic_id=part.topic_id,
                    topic=part.state.topic,
                    partition=part.state.partition,
                    base_offset=batches[0].base_offset,
                    end_offset=batches[-1].end_offset,
                    max_timestamp=max(b.max_timestamp for b in batches),
                    position=position,
                    length=length,
                    crc=crc,
                    producers=_producer_summary(batches),
                )
            )
            position += length
        self._unlaunched_bytes = max(0, self._unlaunched_bytes - position)
        return chunks, data

    def landed(self) -> None:
        self._sync_partitions()
        for part in self.partitions.values():
            if self.wal is None:
                part.advance_high_watermark(part.committed_end)
        self._recount()
        if self.wal is not None:
            task = asyncio.get_running_loop().create_task(self.wal.release(self._committed_end))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self._evict_tail()

    def rewind(self) -> None:
        for part in self.partitions.values():
            part.rewind_launched()
        self._recount()

    def fenced_by_newer_owner(self) -> None:
        self._step_down()

    def _recount(self) -> None:
        uncommitted = 0
        unlaunched = 0
        for part in self.partitions.values():
            uncommitted += part.bytes_from(part.committed_end)
            unlaunched += part.bytes_from(part.launched_end)
        self._uncommitted_bytes, self._unlaunched_bytes = uncommitted, unlaunched

    def _committed_end(self, key: PartitionKey) -> int:
        part = self.partitions.get(key)
        # A deleted topic's WAL records will never be committed: treat them as done.
        return part.committed_end if part is not None else 2**63

    def _evict_tail(self) -> None:
        total = sum(p.tail_bytes for p in self.partitions.values())
        if total <= self.config.tail_cache_bytes:
            return
        keep = self.config.tail_cache_bytes // max(1, len(self.partitions))
        for part in self.partitions.values():
            part.evict_committed(keep)

    def _step_down(self) -> None:
        if not self.fenced:
            log.error(
                "fenced: a newer broker claimed the log; refusing all writes "
                "node=%d epoch=%d owner_node=%d owner_epoch=%d",
                self.config.node_id,
                self.commit_log.epoch,
                self.commit_log.state.owner_node,
                self.commit_log.state.owner_epoch,
            )
        self.fenced = True
        for part in self.partitions.values():
            part.wake_all()

    # -- read (storage/log_reader.py does the work) --------------------------------------

    async def read(self, topic: str, partition: int, offset: int, max_bytes: int) -> ReadResult:
        return await self.reader.read(self.partition(topic, partition), offset, max_bytes)

    async def offset_for_timestamp(
        self, topic: str, partition: int, timestamp: int
    ) -> tuple[int, int]:
        return await self.reader.offset_for_timestamp(self.partition(topic, partition), timestamp)

    async def max_timestamp_offset(self, topic: str, partition: int) -> tuple[int, int]:
        return await self.reader.max_timestamp_offset(self.partition(topic, partition))

    def wake_readers(self) -> None:
        """Release every long-polling fetch (shutdown)."""
        for part in self.partitions.values():
            part.wake_all()

    async def wait_for_data(self, keys: Sequence[PartitionKey], timeout: float) -> None:
        """Wait until any of the partitions' high watermarks moves, or `timeout`."""
        waiters = [self.partitions[k].waiter() for k in keys if k in self.partitions]
        if not waiters:
            await asyncio.sleep(timeout)
            return
        _, pending = await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for w in pending:
            w.cancel()


def _with_offsets(
    records: bytes | bytearray | memoryview, base: int
) -> tuple[bytearray | memoryview, int]:
    """The batches with offsets from `base`: patched in place when the buffer is ours
    to write (a view into the request frame), otherwise in a copy."""
    if isinstance(records, memoryview) and not records.readonly:
        offset = base
        for position, header in iter_batches(records):
            patch_base_offset(records, position, offset)
            offset += header.last_offset_delta + 1
        return records, offset
    return set_base_offsets(records, base)


def _stored_batch(base: int, end: int, data: bytes) -> Batch:
    """A Batch rebuilt from stored bytes (WAL replay)."""
    headers = [h for _, h in iter_batches(data)]
    first = headers[0]
    producer = None
    if first.producer_id >= 0:
        producer = ProducerBatch(
            first.producer_id,
            first.producer_epoch,
            first.base_sequence,
            first.base_sequence + (end - base) - 1,
            base,
            end - 1,
        )
    return Batch(base, end, max(h.max_timestamp for h in headers), data, producer)


def _producer_summary(batches: list[Batch]) -> tuple[ProducerBatch, ...]:
    """The last five batches of each producer id among `batches`."""
    per_pid: dict[int, list[ProducerBatch]] = {}
    for b in batches:
        if b.producer is not None:
            per_pid.setdefault(b.producer.producer_id, []).append(b.producer)
    return tuple(p for rows in per_pid.values() for p in rows[-5:])
