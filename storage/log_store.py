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
- a fenced broker (a newer claim exists) stops acknowledging at once;
- a produce whose WAL write fails is answered KAFKA_STORAGE_ERROR and leaves the
  partition as it was (offsets, bytes, producer sequences); while the WAL cannot write,
  produce is refused before anything is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import crc32c

from tidelog.protocol.batch import (
    iter_batches,
    patch_base_offset,
    set_base_offsets,
    validate_produce_records,
)
from tidelog.protocol.errors import ErrorCode, RecordBatchError
from tidelog.storage import paths
from tidelog.storage.commit_format import Chunk, ProducerBatch
from tidelog.storage.commit_log import CommitLog, Fenced, LoadStats
from tidelog.storage.data_dir import lock_data_dir, read_wal_owner, write_wal_owner
from tidelog.storage.errors import StoreError
from tidelog.storage.flusher import Flusher
from tidelog.storage.log_reader import LogReader, ReadResult
from tidelog.storage.membership import Membership, NodeIdInUse
from tidelog.storage.meta_state import GROUP_TOPIC, Member, MetaState, TopicState
from tidelog.storage.object_store import Buffer, ObjectStore, ObjectStoreError
from tidelog.storage.ownership import group_slot, open_stream
from tidelog.storage.partition_log import Batch, PartitionLog
from tidelog.storage.producer_state import Verdict
from tidelog.storage.stream_state import CommittedOffset, StreamState
from tidelog.storage.topic_config import DEFAULT_TOPIC_CONFIGS, problem, validate_topic_configs
from tidelog.storage.wal import KIND_BATCH, WalError, WalWriter, encode_payload, read_wal

log = logging.getLogger(__name__)

Durability = Literal["wal", "object"]
PartitionKey = tuple[str, int]

TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
# Kafka's internal topics, never user topics: group slots are keyed under the first one
# (a user topic of that name had no partition anyone could serve), transactions will
# need the second.
INTERNAL_TOPICS = frozenset({GROUP_TOPIC, "__transaction_state"})


@dataclass(frozen=True, slots=True)
class StoreConfig:
    data_dir: Path
    node_id: int = 1
    durability: Durability = "wal"
    flush_interval_ms: int = 200
    flush_bytes: int = 4 << 20  # cut a commit once this much waits; most one holds
    max_backlog_bytes: int = 512 << 20
    tail_cache_bytes: int = 64 << 20
    chunk_cache_bytes: int = 128 << 20
    wal_fsync: bool = True
    snapshot_every: int = 256
    max_in_flight_uploads: int = 4
    ops_timeout_s: float = 15.0
    host: str = "127.0.0.1"  # what other brokers and clients are told to connect to
    port: int = 9092
    session_timeout_ms: int = 6000  # a silent broker is fenced after this; also the lease
    replace_nodes: tuple[int, ...] = ()  # take these nodes' keys over at start, at once
    # A silent wal-mode broker: "wait" for its WAL to be handed over (its last acks may
    # be only there), or "takeover" after the session timeout, giving those up.
    wal_failover: Literal["wait", "takeover"] = "wait"
    # Checked before anything is allocated (docs/topics.md): one topic, and all together.
    max_partitions_per_topic: int = 10_000
    max_partitions: int = 50_000
    wal_retry_ms: int = 1000  # after a failed WAL write, probe this often until one works


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


def validate_user_topic_name(name: str) -> None:
    """A name clients may create and produce to: valid, and not Kafka's internal ones."""
    validate_topic_name(name)
    if name in INTERNAL_TOPICS:
        raise StoreError(
            ErrorCode.invalid_topic_exception,
            f"kafka's internal topic names are not user topics topic={name}",
        )


class LogStore:
    def __init__(self, config: StoreConfig, store: ObjectStore, clock_ms: Callable[[], int]):
        self.config = config
        self.store = store
        self.clock_ms = clock_ms
        self.meta: CommitLog[MetaState] = CommitLog(
            store,
            paths.META,
            MetaState,
            node_id=config.node_id,
            clock_ms=clock_ms,
            snapshot_every=config.snapshot_every,
        )
        # Our own stream exists once we joined (start); until then a placeholder.
        self.stream_id = ""
        self.stream: CommitLog[StreamState] = CommitLog(
            store, paths.META, StreamState, node_id=config.node_id, clock_ms=clock_ms
        )
        self._wal_dir = config.data_dir / "wal"
        self.wal: WalWriter | None = None
        self.partitions: dict[PartitionKey, PartitionLog] = {}
        self.moving: set[PartitionKey] = set()  # being handed to another broker
        self._uncommitted_bytes = 0  # appended, not yet in a landed commit (the backlog)
        self._unlaunched_bytes = 0  # appended, not yet in any upload
        self._take_from = 0  # where the next commit starts taking partitions
        self.flusher = self._new_flusher()  # replaced at start, once our stream exists
        self._background: set[asyncio.Task[Any]] = set()
        self.reader = LogReader(store, chunk_cache_bytes=config.chunk_cache_bytes)
        self._pid_lock = asyncio.Lock()
        self._pid_next = 0
        self._pid_end = 0
        self._lock_fd = -1
        self._refreshed_at = 0.0
        self._refreshing: asyncio.Future[int] | None = None  # the refresh under way
        self._started = False
        self.fenced = False
        self.lease_until = 0.0  # wal mode acks only before this (time.monotonic)
        self._lease_renewed = asyncio.Event()
        self.on_fenced: Callable[[], None] | None = None  # the server closes its listener
        self.membership = Membership(self)
        self.load_stats = LoadStats(-1, 0, 0)
        self._bad_configs_reported: set[tuple[str, str]] = set()  # (topic id, name)

    @property
    def epoch(self) -> int:
        return self.meta.epoch

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> LoadStats:
        """Join the cluster, take over what is ours, replay the WAL, start uploading."""
        self._lock_fd = lock_data_dir(self.config.data_dir)
        stats = await self.meta.load()
        self._report_bad_configs()
        wal_owner = read_wal_owner(self._wal_dir)
        try:
            await self.membership.ensure_node_id_free(wal_owner)
        except NodeIdInUse:
            self.release_data_dir()
            raise
        epoch = await self.meta.append(
            ops=[
                {
                    "op": "join",
                    "node": self.config.node_id,
                    "host": self.config.host,
                    "port": self.config.port,
                    "durability": self.config.durability,
                    "session_timeout_ms": self.config.session_timeout_ms,
                }
            ]
        )
        self.meta.epoch = epoch
        self.stream_id = paths.stream_id(self.config.node_id, epoch)
        self.stream = open_stream(
            self.store, self.stream_id, node_id=self.config.node_id, clock_ms=self.clock_ms
        )
        self.stream.epoch = epoch
        self.flusher = self._new_flusher()
        self._started = True
        read_before = self.meta.bytes_read
        try:
            taken = await self.membership.start(wal_owner)
        except NodeIdInUse:
            self.release_data_dir()
            raise
        replayed, marks = self._replay_wal()
        self.load_stats = LoadStats(
            stats.snapshot_seq,
            stats.commits_read + self.membership.commits_read,
            stats.bytes_read + self.meta.bytes_read - read_before + self.membership.bytes_read,
        )
        log.info(
            "joined node=%d stream=%s took_over=%s partitions=%d commits_read=%d "
            "wal_batches_replayed=%d",
            self.config.node_id,
            self.stream_id,
            ",".join(taken) or "-",
            len([k for k in self.partitions if k[0] != GROUP_TOPIC]),
            self.load_stats.commits_read,
            replayed,
        )
        if self.config.durability == "wal":
            self.wal = WalWriter(
                self._wal_dir,
                fsync=self.config.wal_fsync,
                probe_interval_s=self.config.wal_retry_ms / 1000,
            )
            await self.wal.open(marks)
        # Both modes: a restart on this data dir takes this incarnation over at once
        # (we hold the dir's lock for our life, so whoever finds it named here is dead).
        self._wal_dir.mkdir(parents=True, exist_ok=True)
        write_wal_owner(self._wal_dir, self.stream_id)
        self.lease_until = time.monotonic() + self.lease_s
        self.flusher.start()
        self.membership.run()
        if self._uncommitted_bytes and await self.flush_once() is None:
            log.warning("replayed wal data not uploaded yet; it stays in the wal until it is")
        return self.load_stats

    def _new_flusher(self) -> Flusher:
        return Flusher(
            self.stream,
            self,
            interval_s=self.config.flush_interval_ms / 1000,
            flush_bytes=self.config.flush_bytes,
            max_in_flight=self.config.max_in_flight_uploads,
        )

    @property
    def lease_s(self) -> float:
        return self.config.session_timeout_ms / 1000

    async def stop(self, deadline: float | None = None) -> bool:
        """Upload everything and hand our keys over (unless fenced), then stop and close
        the WAL. With a `deadline` (event-loop time) the upload is retried until it lands
        or the deadline passes; without one it is tried once. Returns False if the
        deadline cut it short; what did not reach the bucket is logged either way."""
        await self.membership.stop()
        if not self._started:
            self.release_data_dir()
            return True
        finished = True
        try:
            async with asyncio.timeout_at(deadline):
                if not self.fenced and await self._final_upload(retry=deadline is not None):
                    await self.membership.leave()
        except TimeoutError:
            finished = False
        await self.flusher.stop()
        await self._settle(self._background, cancel=not finished)
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
        for part in self.partitions.values():
            part.wake_all()
        self._report_left_behind("shutdown timed out" if not finished else "final upload failed")
        self.release_data_dir()
        return finished

    async def _final_upload(self, *, retry: bool) -> bool:
        """Upload everything accepted; with `retry`, until it lands (the caller bounds
        it). Returns whether everything is in the bucket."""
        pause = 0.1
        while True:
            if retry and self.wal is not None and time.monotonic() >= self.lease_until:
                # Batches past the lease wait for a landed commit before they may be
                # uploaded, and the tick that would commit is stopped: commit here.
                with contextlib.suppress(Fenced):
                    await self.flusher.commit_ops([])
            await self.flush_once()
            if not self._uncommitted_bytes:
                return True
            if not retry or self.fenced:
                return False
            if pause == 0.1:
                log.warning(
                    "final upload failed; retrying until the shutdown deadline backlog_bytes=%d",
                    self._uncommitted_bytes,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    @staticmethod
    async def _settle(tasks: set[asyncio.Task[Any]], *, cancel: bool) -> None:
        if cancel:
            for task in tasks:
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _report_left_behind(self, why: str) -> None:
        """Say what is not in the bucket at shutdown, and where it is now. (A fenced
        broker's partitions belong to another broker: nothing of theirs is ours to keep.)"""
        if self.fenced:
            return
        left = [
            (key, part)
            for key, part in sorted(self.partitions.items())
            if key[0] != GROUP_TOPIC and part.next_offset > part.committed_end
        ]
        if not left:
            return
        size = sum(part.bytes_from(part.committed_end) for _, part in left)
        ranges = ",".join(
            f"{t}-{p}:[{part.committed_end},{part.next_offset})" for (t, p), part in left[:64]
        ) + (",..." if len(left) > 64 else "")
        if self.wal is not None:
            log.error(
                "%s; what is not in the bucket stays in the wal for the next start on this "
                "data dir, which uploads it before serving (acknowledged records included, "
                "none lost) bytes=%d partitions=%d offsets=%s wal=%s",
                why,
                size,
                len(left),
                ranges,
                self._wal_dir,
            )
        else:
            log.error(
                "%s; records not in the bucket were never acknowledged (object mode acks "
                "only after the upload) and are dropped; their producers were not told "
                "they were stored bytes=%d partitions=%d offsets=%s",
                why,
                size,
                len(left),
                ranges,
            )

    def release_data_dir(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    async def refresh(self) -> int:
        """Fold metadata commits other brokers appended; returns how many."""
        read = await self.meta.catch_up()
        self._refreshed_at = time.monotonic()
        return read

    async def fresh_metadata(self, max_age_s: float = 0.1) -> None:
        """Fold the metadata log unless that was done in the last `max_age_s`: before
        telling a client who leads what, so it is not sent to a broker that just left.
        Also brings the membership tick forward (keys just assigned to us)."""
        self.membership.poke()
        if time.monotonic() - self._refreshed_at <= max_age_s:
            return
        # Requests that find the metadata stale together share one refresh: one LIST,
        # not one each in a queue (a burst of Metadata requests would wait on them all).
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self.refresh())
            # Retrieved here too, so a failure nobody waited for is not reported as lost.
            self._refreshing.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            await asyncio.shield(self._refreshing)
        except ObjectStoreError as exc:  # answer from what we have
            log.warning("metadata refresh failed; answering from memory error=%s", exc)

    def serves(self, key: PartitionKey) -> bool:
        """Ours in the metadata, and adopted into our stream for that very assignment."""
        owner = self.meta.state.owners.get(key)
        return (
            owner is not None
            and owner.stream == self.stream_id
            and self.stream.state.tenures.get(key) == owner.seq
        )

    def sync_partitions(self) -> None:
        """Serve exactly the keys the metadata gives us and our stream has adopted."""
        meta, mine = self.meta.state, self.stream.state
        for key in list(self.partitions):
            cur = mine.partitions.get(key)
            if not self.serves(key) or cur is not self.partitions[key].state:
                self.partitions.pop(key).wake_all()
        for key, pstate in mine.partitions.items():
            topic = meta.topics.get(key[0])
            if (
                key not in self.partitions
                and self.serves(key)
                and topic is not None
                and topic.topic_id == pstate.topic_id
            ):
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
        return self.meta.state.topics.get(name)

    def topics(self) -> dict[str, TopicState]:
        return self.meta.state.topics

    def partition_exists(self, key: PartitionKey) -> bool:
        topic = self.topic(key[0])
        return topic is not None and 0 <= key[1] < topic.partitions

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
        validate_user_topic_name(name)
        if self.topic(name) is not None:
            raise StoreError(ErrorCode.topic_already_exists, f"topic exists topic={name}")
        self._check_partition_count(name, partitions)
        checked = validate_topic_configs(configs or {})
        self._check_cluster_total(self.meta.state, name, partitions + planned)
        return checked

    def check_new_partitions(self, name: str, count: int, *, planned: int = 0) -> TopicState:
        """What `create_partitions` checks, allocating nothing; returns the topic."""
        validate_user_topic_name(name)  # one a broker before this check let in stays as is
        topic = self.topic(name)
        if topic is None:
            raise StoreError(ErrorCode.unknown_topic_or_partition, f"no such topic topic={name}")
        if count <= topic.partitions:
            raise StoreError(
                ErrorCode.invalid_partitions,
                f"partition count can only grow topic={name} current={topic.partitions} "
                f"requested={count}",
            )
        self._check_partition_count(name, count)
        self._check_cluster_total(self.meta.state, name, count - topic.partitions + planned)
        return topic

    def _check_partition_count(self, name: str, partitions: int) -> None:
        cap = self.config.max_partitions_per_topic
        if partitions <= 0:
            raise StoreError(
                ErrorCode.invalid_partitions,
                f"partition count must be positive topic={name} partitions={partitions}",
            )
        if partitions > cap:
            raise StoreError(
                ErrorCode.invalid_partitions,
                f"more partitions than one topic may have (--max-partitions-per-topic) "
                f"topic={name} partitions={partitions} max_partitions_per_topic={cap}",
            )

    def _check_cluster_total(self, state: MetaState, name: str, adding: int) -> None:
        cap = self.config.max_partitions
        total = sum(t.partitions for t in state.topics.values())
        if total + adding > cap:
            raise StoreError(
                ErrorCode.policy_violation,
                f"the cluster would have more partitions than --max-partitions allows "
                f"topic={name} adding={adding} partitions_now={total} max_partitions={cap}",
            )

    async def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str | None] | None = None
    ) -> TopicState:
        checked = self.check_new_topic(name, partitions, configs)
        topic_id = str(uuid.uuid4())
        op = {"op": "create_topic", "name": name, "id": topic_id, "partitions": partitions}
        keys = [(name, p) for p in range(partitions)]

        def ops(state: MetaState) -> list[dict[str, Any]]:
            # Again against the log as it is now: another broker may have just grown it.
            self._check_cluster_total(state, name, partitions)
            return [{**op, "configs": checked}, self.membership.assign_new(state, keys)]

        await self._meta_ops(ops)
        created = self.topic(name)
        if created is None or created.topic_id != topic_id:
            raise StoreError(ErrorCode.topic_already_exists, f"topic exists topic={name}")
        log.info("topic created topic=%s partitions=%d id=%s", name, partitions, topic_id)
        await self.membership.adopt_assigned()
        return created

    async def delete_topic(self, name: str) -> None:
        if name == GROUP_TOPIC:
            # Only a broker before the name check made one. Its delete would drop the
            # group slots' owners too, and a slot claimed anew starts with no offsets.
            raise StoreError(
                ErrorCode.invalid_topic_exception,
                f"a topic named like the group slots cannot be deleted topic={name}",
            )
        topic = self.topic(name)
        if topic is None:
            raise StoreError(ErrorCode.unknown_topic_or_partition, f"no such topic topic={name}")
        await self._meta_ops([{"op": "delete_topic", "name": name, "id": topic.topic_id}])
        log.info("topic deleted topic=%s id=%s", name, topic.topic_id)

    async def create_partitions(self, name: str, count: int) -> None:
        topic = self.check_new_partitions(name, count)
        op = {"op": "create_partitions", "name": name, "id": topic.topic_id, "count": count}
        keys = [(name, p) for p in range(topic.partitions, count)]

        def ops(state: MetaState) -> list[dict[str, Any]]:
            self._check_cluster_total(state, name, len(keys))
            return [op, self.membership.assign_new(state, keys)]

        await self._meta_ops(ops)
        await self.membership.adopt_assigned()

    async def _meta_ops(
        self, ops: Sequence[dict[str, Any]] | Callable[[MetaState], Sequence[dict[str, Any]]]
    ) -> int:
        """Append to the metadata log; its effect is visible on return."""
        self._check_writable()
        try:
            return await asyncio.wait_for(
                self.meta.append(ops=ops, guard=self.membership.is_member),
                self.config.ops_timeout_s,
            )
        except Fenced:
            self.step_down("no longer a member of the cluster")
            raise StoreError(ErrorCode.not_leader_or_follower, "this broker was fenced") from None
        except TimeoutError:
            raise StoreError(
                ErrorCode.request_timed_out,
                "object store did not take the change in time "
                f"timeout_s={self.config.ops_timeout_s}",
            ) from None
        except ObjectStoreError as exc:
            raise StoreError(ErrorCode.kafka_storage_error, f"object store error={exc}") from None
        finally:
            self.sync_partitions()

    async def stream_ops(self, ops: Sequence[dict[str, Any]]) -> int:
        """Commit ops to our stream with the next upload; visible on return."""
        self._check_writable()
        pending = asyncio.ensure_future(self.flusher.commit_ops(list(ops)))
        try:
            seq = await asyncio.wait_for(asyncio.shield(pending), self.config.ops_timeout_s)
        except Fenced:
            raise StoreError(ErrorCode.not_leader_or_follower, "this broker was fenced") from None
        except TimeoutError:
            # Still queued: it may land later, as a Kafka request that timed out may.
            raise StoreError(
                ErrorCode.request_timed_out,
                "object store did not take the change in time "
                f"timeout_s={self.config.ops_timeout_s}",
            ) from None
        finally:
            self.sync_partitions()
        return seq

    # -- committed group offsets (kept in the stream of the group's coordinator) ---------

    def coordinates(self, group: str) -> bool:
        """Whether this broker is the group's coordinator now."""
        key = (GROUP_TOPIC, group_slot(group))
        return not self.fenced and self.serves(key) and key not in self.moving

    def coordinator_of(self, group: str) -> Member | None:
        return self.meta.state.owner_of((GROUP_TOPIC, group_slot(group)))

    async def commit_offsets(
        self, group: str, offsets: Sequence[tuple[str, int, int, int, str | None]]
    ) -> None:
        """Make (topic, partition, offset, leader_epoch, metadata) rows durable in the
        bucket; returns once a commit holding them has landed (both durability modes)."""
        if offsets:
            rows = [list(o) for o in offsets]
            op = {"op": "offsets", "group": group, "ts": self.clock_ms(), "offsets": rows}
            await self.stream_ops([op])

    def committed_offsets(self, group: str) -> dict[tuple[str, int], CommittedOffset]:
        return self.stream.state.group_offsets.get(group, {})

    def groups_with_offsets(self) -> list[str]:
        return sorted(g for g in self.stream.state.group_offsets if self.coordinates(g))

    async def delete_offsets(self, group: str, partitions: Sequence[tuple[str, int]]) -> None:
        op = {"op": "delete_offsets", "group": group, "partitions": [list(p) for p in partitions]}
        await self.stream_ops([op])

    async def delete_group(self, group: str) -> None:
        await self.stream_ops([{"op": "delete_group", "group": group}])

    async def allocate_producer_id(self) -> int:
        async with self._pid_lock:
            if self._pid_next >= self._pid_end:
                await self._meta_ops(
                    [{"op": "alloc_pids", "node": self.config.node_id, "count": 1000}]
                )
                start, count = self.meta.state.pid_blocks[self.config.node_id]
                self._pid_next, self._pid_end = start, start + count
            pid = self._pid_next
            self._pid_next += 1
            return pid

    # -- produce -----------------------------------------------------------------------

    def partition(self, topic: str, partition: int) -> PartitionLog:
        """The partition if this broker leads it; NOT_LEADER_OR_FOLLOWER if another does."""
        part = self.partitions.get((topic, partition))
        if part is not None and not self.fenced:
            return part
        if not self.partition_exists((topic, partition)):
            raise StoreError(
                ErrorCode.unknown_topic_or_partition,
                f"unknown topic or partition topic={topic} partition={partition}",
            )
        self.membership.poke()  # it may have just been assigned to us
        raise StoreError(
            ErrorCode.not_leader_or_follower,
            f"not the leader of topic={topic} partition={partition}",
        )

    def _check_writable(self) -> None:
        if self.fenced:
            raise StoreError(ErrorCode.not_leader_or_follower, "this broker was fenced")

    def append_nowait(
        self, topic: str, partition: int, records: bytes | bytearray | memoryview
    ) -> PendingAppend:
        """Validate, deduplicate and store one partition's record set now (offsets are
        assigned before this returns); await `durable` before acknowledging it."""
        if topic in INTERNAL_TOPICS:
            raise StoreError(
                ErrorCode.invalid_topic_exception,
                f"cannot produce to kafka's internal topic topic={topic}",
            )
        self._check_writable()
        part = self.partition(topic, partition)
        if part.key in self.moving:
            raise StoreError(
                ErrorCode.not_leader_or_follower,
                f"partition moving to another broker topic={topic} partition={partition}",
            )
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
                    self._wait_visible(part, dup.last_offset + 1, part.discards),
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
        if self.wal is not None and not self.wal.writable:
            # Refused before anything is stored, so the answer comes at once and the log
            # stays as it was (docs/wal-format.md, "A full disk").
            raise StoreError(
                ErrorCode.kafka_storage_error,
                f"wal cannot write (disk full?); retry later topic={topic} partition={partition}",
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
        undo = functools.partial(self._give_back, part, base)
        try:
            synced = self.wal.append(head, data, ((topic, partition), end), undo)
        except WalError as exc:
            undo()
            raise StoreError(ErrorCode.kafka_storage_error, str(exc)) from None
        return PendingAppend(result, self._wait_wal(part, end, synced))

    def _give_back(self, part: PartitionLog, base: int) -> None:
        """A batch's WAL write failed: forget it and everything after it in its partition
        (those writes failed too), so a produce answered with an error stores nothing."""
        part.discard_from(base)
        self._recount()

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
        # The lease: ack only while a commit of ours landed within the session timeout,
        # so a broker fenced behind our back (its stream sealed) stops acking before its
        # successor serves (docs/durability.md, "Leases").
        while time.monotonic() >= self.lease_until:
            if self.fenced:
                raise StoreError(ErrorCode.not_leader_or_follower, "this broker was fenced")
            self._lease_renewed.clear()
            self.membership.renew_lease()  # idle for a while: one upload renews it
            await self._lease_renewed.wait()
        part.advance_high_watermark(end)

    async def _wait_visible(self, part: PartitionLog, end: int, discards: int = -1) -> None:
        """Until offsets below `end` are visible. With `discards` (a retry's wait for the
        batch it duplicates): fail if batches were given back since, which may be it."""
        while part.high_watermark < end:
            if self.fenced:
                raise StoreError(ErrorCode.not_leader_or_follower, "this broker was fenced")
            if self.partitions.get(part.key) is not part and part.high_watermark < end:
                raise StoreError(ErrorCode.unknown_topic_or_partition, "topic deleted")
            if discards >= 0 and part.discards != discards:
                raise StoreError(
                    ErrorCode.kafka_storage_error,
                    f"the batch this retry repeats was not written to the wal; retry "
                    f"topic={part.state.topic} partition={part.state.partition}",
                )
            await part.waiter()

    def topic_config(self, topic: str, name: str) -> str:
        """The value in force: the topic's override if it validates, else the default.
        A bad override in the bucket (from before topic configs were checked) is never
        used, so nothing that reads a config fails on it; it is logged once."""
        state = self.topic(topic)
        stored = state.configs.get(name) if state is not None else None
        if state is None or stored is None:
            return DEFAULT_TOPIC_CONFIGS[name]
        if problem(name, stored) is None:
            return stored
        self._report_bad_config(state, name, stored)
        return DEFAULT_TOPIC_CONFIGS[name]

    def _report_bad_configs(self) -> None:
        for state in self.topics().values():
            for name, stored in state.configs.items():
                if problem(name, stored) is not None:
                    self._report_bad_config(state, name, stored)

    def _report_bad_config(self, state: TopicState, name: str, stored: object) -> None:
        if (state.topic_id, name) in self._bad_configs_reported:
            return
        self._bad_configs_reported.add((state.topic_id, name))
        log.warning(
            "topic config in the bucket does not validate; ignored, its default applies "
            "topic=%s config=%s value=%r reason=%s default=%s",
            state.name,
            name,
            stored,
            problem(name, stored),
            DEFAULT_TOPIC_CONFIGS.get(name, "-"),
        )

    # -- flush -------------------------------------------------------------------------

    async def flush_once(self) -> int | None:
        """Upload everything appended so far; the last landed seq, None if nothing landed."""
        if self.fenced or not self._started:
            return None
        return await self.flusher.drain()

    # FlushSource: what the upload pipeline asks of the store.

    def unflushed_bytes(self) -> int:
        return self._unlaunched_bytes

    def take_chunks(self, max_bytes: int) -> tuple[list[Chunk], list[Buffer]]:
        chunks: list[Chunk] = []
        data: list[Buffer] = []
        position = 0
        # A commit holds at most max_bytes (or one bigger batch). The next commit starts
        # at the first partition this one left waiting, so no busy partition can keep
        # the others out of every commit.
        parts = list(self.partitions.values())
        first = self._take_from % len(parts) if parts else 0
        waiting: int | None = None
        for i in range(len(parts)):
            part = parts[(first + i) % len(parts)]
            limit = part.high_watermark if self.wal is not None else part.next_offset
            batches = part.take_unlaunched(limit, max_bytes - position, not chunks)
            if waiting is None and i > 0 and part.has_unlaunched(limit):
                waiting = first + i
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
        self._take_from = waiting if waiting is not None else first + 1
        self._unlaunched_bytes = max(0, self._unlaunched_bytes - position)
        return chunks, data

    def landed(self) -> None:
        self.sync_partitions()
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
        self.step_down(f"our stream was sealed by stream={self.stream.state.sealed_by}")

    def lease_renewed(self, sent_at: float) -> None:
        self.lease_until = max(self.lease_until, sent_at + self.lease_s)
        self._lease_renewed.set()

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

    def step_down(self, reason: str) -> None:
        if not self.fenced:
            log.error(
                "fenced: refusing all writes from now on; restart to rejoin as a new "
                "incarnation node=%d stream=%s reason=%s",
                self.config.node_id,
                self.stream_id,
                reason,
            )
        self.fenced = True
        self._lease_renewed.set()
        for part in self.partitions.values():
            part.wake_all()
        if self.on_fenced is not None:
            self.on_fenced()

    # -- read (storage/log_reader.py does the work) --------------------------------------

    async def read(self, topic: str, partition: int, offset: int, max_bytes: int) -> ReadResult:
        # A moving partition is still served until its new owner has it.
        return await self.reader.read(self.partition(topic, partition), offset, max_bytes)

    def prefetch(self, topic: str, partition: int, offset: int) -> None:
        """Start reading what a `read` at `offset` will want from the bucket; no wait."""
        part = self.partitions.get((topic, partition))
        if part is not None and not self.fenced:
            self.reader.prefetch(part, offset)

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
