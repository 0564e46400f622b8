"""The broker's storage engine: partitions over a WAL, flushed as commits to the bucket.

`LogStore` is the facade the broker, the group coordinator, drills and tests call. It
owns the lifecycle (start: join, take over, replay, start uploading; stop: final
upload, hand-off, leave) and stepping down when fenced; the rest is in the rooms it
composes, each named in docs/storage.md. It implements `MemberStorage`, the contract
the membership sees it through.

Guarantees (docs/durability.md):
- at start-up every committed byte is found through the commit log and every WAL
  record beyond it is replayed and uploaded before the broker serves anyone;
- a fenced broker (a newer claim exists) stops acknowledging at once;
- time is read only through the `Clock` it was given (storage/clock.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tidelog.storage import paths
from tidelog.storage.clock import Clock, SystemClock
from tidelog.storage.commit_log import CommitLog, LoadStats
from tidelog.storage.data_dir import lock_data_dir, read_wal_owner, write_wal_owner
from tidelog.storage.flusher import Flusher
from tidelog.storage.group_offsets import GroupOffsets, OffsetRow
from tidelog.storage.lease import Lease
from tidelog.storage.lifecycle import Lifecycle
from tidelog.storage.log_reader import LogReader, ReadResult
from tidelog.storage.membership import Membership, NodeIdInUse
from tidelog.storage.meta_state import GROUP_TOPIC, Member, MetaState, TopicState
from tidelog.storage.metadata_refresh import MetadataRefresh
from tidelog.storage.object_store import Buffer, ObjectStore
from tidelog.storage.op_commits import OpCommits
from tidelog.storage.ownership import own_stream
from tidelog.storage.partition_log import PartitionLog
from tidelog.storage.partition_reads import PartitionReads
from tidelog.storage.produce_path import AppendResult, PendingAppend, ProducePath
from tidelog.storage.producer_ids import ProducerIds
from tidelog.storage.served_partitions import ServedPartitions
from tidelog.storage.shutdown import final_upload, report_left_behind, settle_tasks
from tidelog.storage.store_config import Durability, StoreConfig
from tidelog.storage.stream_state import CommittedOffset, PartitionKey, StreamState
from tidelog.storage.topic_catalog import (
    INTERNAL_TOPICS,
    TopicCatalog,
    validate_topic_name,
    validate_user_topic_name,
)
from tidelog.storage.txn_store import TxnStore
from tidelog.storage.upload_backlog import UploadBacklog
from tidelog.storage.wal import WalWriter
from tidelog.storage.wal_replay import replay_wal

# Names the broker and tests import from here (they live in the rooms now).
__all__ = ["INTERNAL_TOPICS", "AppendResult", "Durability", "LogStore", "PendingAppend"]
__all__ += ["StoreConfig", "validate_topic_name", "validate_user_topic_name"]

log = logging.getLogger(__name__)


class LogStore:
    def __init__(
        self,
        config: StoreConfig,
        store: ObjectStore,
        clock_ms: Callable[[], int] | None = None,
        *,
        clock: Clock | None = None,
    ):
        """`clock` is the one source of time; without one, real time (with `clock_ms`
        as its wall clock when given)."""
        self.config = config
        self.store = store
        self.clock: Clock = clock or (SystemClock(clock_ms) if clock_ms else SystemClock())
        self.meta: CommitLog[MetaState] = CommitLog(
            store,
            paths.META,
            MetaState,
            node_id=config.node_id,
            clock_ms=self.clock.wall_ms,
            snapshot_every=config.snapshot_every,
        )
        self._wal_dir = config.data_dir / "wal"
        self.moving: set[PartitionKey] = set()  # being handed to another broker
        self.lease = Lease(self.clock, config.lease_s)
        # Our own stream exists once we joined (start); until then a placeholder.
        placeholder: CommitLog[StreamState] = CommitLog(
            store, paths.META, StreamState, node_id=config.node_id, clock_ms=self.clock.wall_ms
        )
        self.served = ServedPartitions(
            self.meta,
            placeholder,
            self.lease,
            exists=lambda key: self.catalog.partition_exists(key),
            poke=lambda: self.membership.poke(),
        )
        self.partitions = self.served.partitions
        self.membership = Membership(self)
        self.ops = OpCommits(
            self.meta,
            lambda: self.flusher,
            self.lease,
            self.clock,
            ops_timeout_s=config.ops_timeout_s,
            is_member=self.membership.is_member,
            step_down=self.step_down,
            after=self.sync_partitions,
        )
        self.backlog = UploadBacklog(
            self.partitions,
            self.lease,
            tail_cache_bytes=config.tail_cache_bytes,
            on_landed=self.sync_partitions,
            on_sealed=self.fenced_by_newer_owner,
        )
        self.flusher = self._new_flusher()  # replaced at start, once our stream exists
        self.catalog = TopicCatalog(
            self.meta,
            self.ops.meta_ops,
            self.membership,
            max_partitions_per_topic=config.max_partitions_per_topic,
            max_partitions=config.max_partitions,
        )
        self.produce = ProducePath(
            partitions=self.partitions,
            moving=self.moving,
            backlog=self.backlog,
            lease=self.lease,
            max_backlog_bytes=config.max_backlog_bytes,
            leader_of=self.served.leader_of,
            topic_config=self.topic_config,
            renew_lease=self.membership.renew_lease,
            kick_flusher=lambda: self.flusher.kick(),
        )
        reader = LogReader(store, chunk_cache_bytes=config.chunk_cache_bytes, clock=self.clock)
        self.reads = PartitionReads(
            reader, self.partitions, self.lease, self.clock, self.served.leader_of
        )
        self.groups = GroupOffsets(
            self.meta,
            lambda: self.stream.state,
            lease=self.lease,
            moving=self.moving,
            serves=self.serves,
            stream_ops=self.stream_ops,
            clock=self.clock,
        )
        self.txns = TxnStore(
            lambda: self.stream.state,
            coordinates=self.coordinates,
            stream_ops=self.stream_ops,
            clock=self.clock,
        )
        self.lifecycle = Lifecycle.of(self)
        self.producer_ids = ProducerIds(self.meta, self.ops.meta_ops, config.node_id)
        self._lock_fd = -1
        self.metadata = MetadataRefresh(self.meta, self.clock)
        self._started = False
        self.on_fenced: Callable[[], None] | None = None  # the server closes its listener
        self.load_stats = LoadStats(-1, 0, 0)

    @property
    def stream(self) -> CommitLog[StreamState]:
        """Our own stream (a placeholder until we joined)."""
        return self.served.stream

    @property
    def stream_id(self) -> str:
        return self.served.stream_id

    @property
    def epoch(self) -> int:
        return self.meta.epoch

    @property
    def wal(self) -> WalWriter | None:
        return self.backlog.wal

    @property
    def reader(self) -> LogReader:
        return self.reads.reader

    @reader.setter
    def reader(self, reader: LogReader) -> None:
        self.reads.reader = reader

    @property
    def fenced(self) -> bool:
        return self.lease.fenced

    @property
    def lease_until(self) -> float:  # wal mode acks only before this (clock.monotonic)
        return self.lease.until

    @property
    def lease_s(self) -> float:
        return self.lease.seconds

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> LoadStats:
        """Join the cluster, take over what is ours, replay the WAL, start uploading."""
        config = self.config
        self._lock_fd = lock_data_dir(config.data_dir)
        stats = await self.meta.load()
        self.catalog.report_bad_configs()
        wal_owner = read_wal_owner(self._wal_dir)
        try:
            await self.membership.ensure_node_id_free(wal_owner)
        except NodeIdInUse:
            self.release_data_dir()
            raise
        epoch = await self.membership.join()
        stream_id = paths.stream_id(config.node_id, epoch)
        self.served.stream_id = stream_id
        self.served.stream = own_stream(self.store, stream_id, config, self.clock.wall_ms)
        self.stream.epoch = epoch
        self.flusher = self._new_flusher()
        self._started = True
        read_before = self.meta.bytes_read
        try:
            taken = await self.membership.start(wal_owner)
        except NodeIdInUse:
            self.release_data_dir()
            raise
        replayed, marks = replay_wal(self._wal_dir, self.partitions, self.flusher.queue_ops)
        self.backlog.recount()
        self.load_stats = LoadStats(
            stats.snapshot_seq,
            stats.commits_read + self.membership.commits_read,
            stats.bytes_read + self.meta.bytes_read - read_before + self.membership.bytes_read,
        )
        log.info(
            "joined node=%d stream=%s took_over=%s partitions=%d commits_read=%d "
            "wal_batches_replayed=%d",
            config.node_id,
            self.stream_id,
            ",".join(taken) or "-",
            len([k for k in self.partitions if k[0] != GROUP_TOPIC]),
            self.load_stats.commits_read,
            replayed,
        )
        if config.durability == "wal":
            wal = WalWriter(
                self._wal_dir,
                fsync=config.wal_fsync,
                probe_interval_s=config.wal_retry_ms / 1000,
                clock=self.clock,
            )
            self.backlog.wal = wal
            await wal.open(marks)
        # Both modes: a restart on this data dir takes this incarnation over at once
        # (we hold the dir's lock for our life, so whoever finds it named here is dead).
        self._wal_dir.mkdir(parents=True, exist_ok=True)
        write_wal_owner(self._wal_dir, self.stream_id)
        self.lease.start()
        self.flusher.start()
        self.membership.run()
        self.lifecycle.start()
        if self.backlog.uncommitted_bytes and await self.flush_once() is None:
            log.warning("replayed wal data not uploaded yet; it stays in the wal until it is")
        return self.load_stats

    def _new_flusher(self) -> Flusher:
        return Flusher(
            self.stream,
            self.backlog,
            interval_s=self.config.flush_interval_ms / 1000,
            flush_bytes=self.config.flush_bytes,
            max_in_flight=self.config.max_in_flight_uploads,
            clock=self.clock,
        )

    async def stop(self, deadline: float | None = None) -> bool:
        """Upload everything and hand our keys over (unless fenced), then stop and close
        the WAL. With a `deadline` (event-loop time) the upload is retried until it lands
        or the deadline passes; without one it is tried once. Returns False if the
        deadline cut it short; what did not reach the bucket is logged either way."""
        await self.membership.stop()
        await self.lifecycle.stop()
        if not self._started:
            self.release_data_dir()
            return True
        finished = True
        try:
            async with asyncio.timeout_at(deadline):
                retry = deadline is not None
                if not self.fenced and await final_upload(self, retry=retry):
                    await self.membership.leave()
        except TimeoutError:
            finished = False
        await self.flusher.stop()
        await settle_tasks(self.backlog.background, cancel=not finished)
        try:
            async with asyncio.timeout_at(deadline if finished else None):
                await self.stream.close(abandon=not finished)
                await self.meta.close(abandon=not finished)
        except TimeoutError:  # a snapshot upload hung: give it up too
            finished = False
            await self.stream.close(abandon=True)
            await self.meta.close(abandon=True)
        if self.wal is not None:
            await self.wal.close()
        self.reads.wake_all()
        if not self.fenced:  # a fenced broker's partitions are another broker's now
            why = "shutdown timed out" if not finished else "final upload failed"
            wal_dir = self._wal_dir if self.wal is not None else None
            report_left_behind(why, self.partitions, wal_dir)
        self.release_data_dir()
        return finished

    def release_data_dir(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    async def refresh(self) -> int:
        """Fold metadata commits other brokers appended; returns how many."""
        return await self.metadata.refresh()

    async def fresh_metadata(self, max_age_s: float = 0.1) -> None:
        """Fold the metadata log unless that was done in the last `max_age_s`: before
        telling a client who leads what, so it is not sent to a broker that just left.
        Also brings the membership tick forward (keys just assigned to us)."""
        self.membership.poke()
        await self.metadata.fresh(max_age_s)

    # -- what this broker serves, and fencing ------------------------------------------

    def serves(self, key: PartitionKey) -> bool:
        """Ours in the metadata, and adopted into our stream for that very assignment."""
        return self.served.serves(key)

    def sync_partitions(self) -> None:
        """Serve exactly the keys the metadata gives us and our stream has adopted."""
        if self.served.sync():
            # A deleted topic's records will never be uploaded: a drain (the final
            # upload at shutdown) must not wait for them.
            self.backlog.recount()

    def partition(self, topic: str, partition: int) -> PartitionLog:
        """The partition if this broker leads it; NOT_LEADER_OR_FOLLOWER if another does."""
        return self.served.leader_of(topic, partition)

    def step_down(self, reason: str) -> None:
        if not self.fenced:
            log.error(
                "fenced: refusing all writes from now on; restart to rejoin as a new "
                "incarnation node=%d stream=%s reason=%s",
                self.config.node_id,
                self.stream_id,
                reason,
            )
        self.lease.fence()
        self.reads.wake_all()
        if self.on_fenced is not None:
            self.on_fenced()

    def fenced_by_newer_owner(self) -> None:
        self.step_down(f"our stream was sealed by stream={self.stream.state.sealed_by}")

    # -- commits of ops ----------------------------------------------------------------

    async def stream_ops(self, ops: Sequence[dict[str, Any]]) -> int:
        """Commit ops to our stream with the next upload; visible on return."""
        return await self.ops.stream_ops(ops)

    async def commit_now(self) -> None:
        """A commit at once (empty if nothing waits): it renews the lease."""
        await self.flusher.commit_ops([])

    # -- topics (storage/topic_catalog.py) ---------------------------------------------

    def topic(self, name: str) -> TopicState | None:
        return self.catalog.topic(name)

    def topics(self) -> dict[str, TopicState]:
        return self.catalog.topics()

    def partition_exists(self, key: PartitionKey) -> bool:
        return self.catalog.partition_exists(key)

    def check_new_topic(
        self,
        name: str,
        partitions: int,
        configs: Mapping[str, str | None] | None = None,
        *,
        planned: int = 0,
    ) -> dict[str, str]:
        """What `create_topic` checks, allocating nothing: raises StoreError with Kafka's
        code, else returns the configs to store. `planned` partitions are about to be
        created by the same request (a validate-only request creates none itself)."""
        return self.catalog.check_new_topic(name, partitions, configs, planned=planned)

    def check_new_partitions(self, name: str, count: int, *, planned: int = 0) -> TopicState:
        """What `create_partitions` checks, allocating nothing; returns the topic."""
        return self.catalog.check_new_partitions(name, count, planned=planned)

    async def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str | None] | None = None
    ) -> TopicState:
        return await self.catalog.create_topic(name, partitions, configs)

    async def delete_topic(self, name: str) -> None:
        await self.catalog.delete_topic(name)

    async def create_partitions(self, name: str, count: int) -> None:
        await self.catalog.create_partitions(name, count)

    def topic_config(self, topic: str, name: str) -> str:
        """The value in force: the topic's override if it validates, else the default.
        A bad override in the bucket (from before topic configs were checked) is never
        used, so nothing that reads a config fails on it; it is logged once."""
        return self.catalog.topic_config(topic, name)

    # -- group offsets (storage/group_offsets.py) and producer ids ---------------------

    def coordinates(self, group: str) -> bool:
        """Whether this broker is the group's coordinator now."""
        return self.groups.coordinates(group)

    def coordinator_of(self, group: str) -> Member | None:
        return self.groups.coordinator_of(group)

    async def commit_offsets(self, group: str, offsets: Sequence[OffsetRow]) -> None:
        """Make (topic, partition, offset, leader_epoch, metadata) rows durable in the
        bucket; returns once a commit holding them has landed (both durability modes)."""
        await self.groups.commit_offsets(group, offsets)

    def committed_offsets(self, group: str) -> dict[tuple[str, int], CommittedOffset]:
        return self.groups.committed_offsets(group)

    def groups_with_offsets(self) -> list[str]:
        return self.groups.groups_with_offsets()

    async def delete_offsets(self, group: str, partitions: Sequence[tuple[str, int]]) -> None:
        await self.groups.delete_offsets(group, partitions)

    async def delete_group(self, group: str) -> None:
        await self.groups.delete_group(group)

    async def allocate_producer_id(self) -> int:
        return await self.producer_ids.allocate()

    # -- produce (storage/produce_path.py) ---------------------------------------------

    def append_nowait(
        self, topic: str, partition: int, records: Buffer, *, txn_verified: bool = False
    ) -> PendingAppend:
        """Validate, deduplicate and store one partition's record set now (offsets are
        assigned before this returns); await `durable` before acknowledging it."""
        return self.produce.append_nowait(topic, partition, records, txn_verified=txn_verified)

    async def append(
        self, topic: str, partition: int, records: bytes | bytearray | memoryview
    ) -> AppendResult:
        pending = self.append_nowait(topic, partition, records)
        await pending.durable
        return pending.result

    # -- flush (the flusher's source is storage/upload_backlog.py) ---------------------

    async def flush_once(self) -> int | None:
        """Upload everything appended so far; the last landed seq, None if nothing landed."""
        if self.fenced or not self._started:
            return None
        return await self.flusher.drain()

    def unflushed_bytes(self) -> int:
        return self.backlog.unflushed_bytes()

    # -- read (storage/partition_reads.py) ---------------------------------------------

    async def read(
        self, topic: str, partition: int, offset: int, max_bytes: int, *, committed: bool = False
    ) -> ReadResult:
        return await self.reads.read(topic, partition, offset, max_bytes, committed=committed)

    def prefetch(self, topic: str, partition: int, offset: int) -> None:
        """Start reading what a `read` at `offset` will want from the bucket; no wait."""
        self.reads.prefetch(topic, partition, offset)

    async def offset_for_timestamp(self, topic: str, partition: int, ts: int) -> tuple[int, int]:
        return await self.reads.offset_for_timestamp(topic, partition, ts)

    async def max_timestamp_offset(self, topic: str, partition: int) -> tuple[int, int]:
        return await self.reads.max_timestamp_offset(topic, partition)

    def wake_readers(self) -> None:
        """Release every long-polling fetch (shutdown)."""
        self.reads.wake_all()

    async def wait_for_data(self, keys: Sequence[PartitionKey], timeout: float) -> None:
        """Wait until any of the partitions' high watermarks moves, or `timeout`."""
        await self.reads.wait_for_data(keys, timeout)
