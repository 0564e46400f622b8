"""What a broker is apart from its listener: storage, groups, handlers, cluster view.

Owns: the LogStore over the object store, the group coordinator, the handler table
(which is also what ApiVersions advertises), the cluster id, the cluster view (live
brokers, the controller, who leads a partition), topic auto-creation, and this
half of start-up and shutdown: recover storage before anyone is served; on stop,
answer parked group requests and long polls, then flush to the object store and
close it by the deadline. It implements `broker/handlers/context.py` `Node`, the one
thing handlers see; every handler question about storage is answered here, so
handlers never reach into LogStore's state. `broker/server.py` puts a listener in
front of it. No sockets here: tests build one over the in-memory object store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

from tidelog.broker.config import ServeConfig
from tidelog.broker.groups.coordinator import GroupCoordinator
from tidelog.broker.groups.events import Effect, Event
from tidelog.broker.groups.model import Group, GroupConfig
from tidelog.broker.handlers import HANDLERS
from tidelog.broker.handlers.base import Handler, api_ranges
from tidelog.broker.handlers.context import ActiveProducer, PartitionKey, PartitionLeader
from tidelog.broker.observability.measured_store import MeasuredStore
from tidelog.broker.observability.metrics import BrokerMetrics
from tidelog.broker.peer_client import PeerClient
from tidelog.broker.security.peer_login import peer_opener
from tidelog.broker.security.state import BrokerSecurity
from tidelog.broker.transactions.coordinator import TxnCoordinator
from tidelog.broker.transactions.state import Markers
from tidelog.broker.txn_links import TxnLinks
from tidelog.protocol.error_scan import api_name
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.commit_log import LoadStats
from tidelog.storage.errors import StoreError
from tidelog.storage.log_reader import ReadResult
from tidelog.storage.log_start import delete_records
from tidelog.storage.log_store import LogStore, PendingAppend, StoreConfig
from tidelog.storage.meta_state import GROUP_TOPIC, Member, TopicState
from tidelog.storage.object_store import ObjectStore
from tidelog.storage.ownership import group_slot
from tidelog.storage.partition_log import PartitionLog
from tidelog.storage.s3_store import S3ObjectStore
from tidelog.storage.stream_state import CommittedOffset
from tidelog.storage.topic_config import ConfigBuild

log = logging.getLogger(__name__)

CLUSTER_ID_NAMESPACE = uuid.UUID("6f1c0a52-3e55-4a0e-9a0c-2b1f8d1c7e11")
# Auto-create refusals a retry cannot change: the client hears the reason, not "unknown".
_AUTO_CREATE_REFUSALS = frozenset(
    {
        ErrorCode.invalid_topic_exception,
        ErrorCode.invalid_partitions,
        ErrorCode.policy_violation,
        ErrorCode.invalid_config,
    }
)


class BrokerNode:
    def __init__(
        self,
        config: ServeConfig,
        object_store: ObjectStore,
        clock_ms: Callable[[], int],
        store: StoreConfig | None = None,
    ) -> None:
        """`store` overrides the storage settings `config` implies (tests shorten them)."""
        self._config = config
        self.object_store = object_store
        self._clock_ms = clock_ms
        self.metrics = BrokerMetrics(config.node_id)
        self.measured_store = MeasuredStore(object_store, self.metrics.object_request)
        self.store = LogStore(store or config.store_config(), self.measured_store, clock_ms)
        self.groups = GroupCoordinator(
            GroupConfig(initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms),
            clock_ms,
            self.store.coordinates,
        )
        self.security = BrokerSecurity(config.security, self.measured_store)
        self.peers = PeerClient(opener=peer_opener(config.security, self.security.broker_secret))
        self.txn_links = TxnLinks(self.store, self.peers)
        self.txns = TxnCoordinator(
            self, max_timeout_ms=config.transaction_max_timeout_ms, clock_ms=clock_ms
        )
        self._txn_gates: dict[int, tuple[asyncio.Lock, list[int]]] = {}
        self.handlers: dict[int, Handler] = {h.api_key: h for h in HANDLERS}
        self.metrics.name_apis({k: api_name(k, h.max_version) for k, h in self.handlers.items()})
        self._cluster_id = str(uuid.uuid5(CLUSTER_ID_NAMESPACE, object_store.url))[:22]
        self._stopping = False
        self.fenced = asyncio.Event()  # set when another broker took our partitions
        self.store.on_fenced = self._fenced
        self.ready = False  # recovered and serving; false again once stopping

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> LoadStats:
        """Recover storage (the bucket, then our WAL); serve nobody before it returns."""
        if isinstance(self.object_store, S3ObjectStore):
            await self.object_store.ensure_bucket()
        stats = await self.store.start()
        await self.security.start()
        if self.store.wal is not None:
            self.store.wal.on_sync = self.metrics.wal_synced
        self.txns.start()
        self.ready = True
        return stats

    def _fenced(self) -> None:
        self.metrics.fenced()
        self.fenced.set()

    @property
    def traffic(self) -> BrokerMetrics:
        return self.metrics

    def begin_stop(self) -> None:
        """Answer what is parked: group requests NOT_COORDINATOR, long polls at once."""
        if self._stopping:
            return
        self.groups.close()
        self._stopping = True
        self.ready = False
        self.store.wake_readers()

    async def stop(self, deadline: float | None = None) -> bool:
        """Upload, hand over and close the object store by `deadline` (event-loop time);
        False if something was given up (the store logs what it left behind)."""
        self.begin_stop()
        loop = asyncio.get_running_loop()
        await self.txns.close()
        await self.peers.close()
        await self.security.stop()
        finished = await self.store.stop(deadline)
        try:
            async with asyncio.timeout_at(deadline if finished else loop.time()):
                await self.object_store.close()
        except TimeoutError:
            finished = False
        return finished

    @property
    def stream_id(self) -> str:
        return self.store.stream_id

    def partitions_led(self) -> int:
        return len(self.store.partitions)

    # -- the cluster view --------------------------------------------------------------

    @property
    def node_id(self) -> int:
        return self._config.node_id

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def config(self) -> ServeConfig:
        return self._config

    @property
    def stopping(self) -> bool:
        return self._stopping

    def api_ranges(self) -> list[tuple[int, int, int]]:
        return api_ranges(self.handlers)

    def live_brokers(self) -> list[Member]:
        """Brokers in the cluster now, one per node id (its newest incarnation)."""
        newest: dict[int, Member] = {}
        for m in self.store.meta.state.members.values():
            if m.node not in newest or m.epoch > newest[m.node].epoch:
                newest[m.node] = m
        return [newest[n] for n in sorted(newest)]

    def controller_id(self) -> int:
        brokers = self.live_brokers()
        return brokers[0].node if brokers else self.node_id

    def partition_leader(self, topic: str, partition: int) -> PartitionLeader | None:
        meta = self.store.meta.state
        owner = meta.owner_of((topic, partition))
        if owner is None:
            return None
        return PartitionLeader(owner.node, meta.owners[(topic, partition)].seq)

    def coordinates(self, group_id: str) -> bool:
        return self.store.coordinates(group_id)

    def coordinator_of(self, group_id: str) -> Member | None:
        return self.store.coordinator_of(group_id)

    async def fresh_metadata(self) -> None:
        await self.store.fresh_metadata()

    # -- the topic catalog -------------------------------------------------------------

    def topic(self, name: str) -> TopicState | None:
        return self.store.topic(name)

    def topics(self) -> Mapping[str, TopicState]:
        return self.store.topics()

    def topic_name(self, topic_id: uuid.UUID) -> str | None:
        wanted = str(topic_id)
        return next((n for n, s in self.store.topics().items() if s.topic_id == wanted), None)

    def partition_exists(self, key: PartitionKey) -> bool:
        return self.store.partition_exists(key)

    def check_new_topic(
        self, name: str, partitions: int, configs: Mapping[str, str | None], *, planned: int
    ) -> dict[str, str]:
        return self.store.check_new_topic(name, partitions, configs, planned=planned)

    async def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str | None]
    ) -> TopicState:
        return await self.store.create_topic(name, partitions, configs)

    async def ensure_topic(self, name: str) -> TopicState | None:
        """The topic, auto-created if allowed; None if it does not exist. Raises
        StoreError when creating it is refused for good (a cap, a reserved name)."""
        auto_create = self._config.auto_create_topics
        topic = self.store.topic(name)
        if topic is None and auto_create:
            await self.store.fresh_metadata()  # another broker may have just created it
            topic = self.store.topic(name)
        if topic is not None or not auto_create:
            return topic
        try:
            return await self.store.create_topic(name, self._config.default_partitions)
        except StoreError as exc:
            log.info("auto-create refused topic=%s error=%s", name, exc)
            if exc.code in _AUTO_CREATE_REFUSALS:
                raise
            return self.store.topic(name)

    async def delete_topic(self, name: str) -> None:
        await self.store.delete_topic(name)

    def check_new_partitions(self, name: str, count: int, *, planned: int) -> TopicState:
        return self.store.check_new_partitions(name, count, planned=planned)

    async def create_partitions(self, name: str, count: int) -> None:
        await self.store.create_partitions(name, count)

    def check_topic_configs(self, name: str, build: ConfigBuild) -> dict[str, str]:
        return self.store.catalog.check_topic_configs(name, build)

    async def alter_topic_configs(self, name: str, build: ConfigBuild) -> dict[str, str]:
        return await self.store.catalog.alter_topic_configs(name, build)

    def cluster_defaults(self) -> dict[str, str]:
        return self.store.catalog.cluster_defaults()

    def check_cluster_configs(self, build: ConfigBuild) -> dict[str, str]:
        return self.store.catalog.check_cluster_configs(build)

    async def alter_cluster_configs(self, build: ConfigBuild) -> dict[str, str]:
        return await self.store.catalog.alter_cluster_configs(build)

    def broker_dynamic_configs(self) -> dict[str, str]:
        return self.store.catalog.broker_configs(self.node_id)

    def check_broker_configs(self, build: ConfigBuild) -> dict[str, str]:
        return self.store.catalog.check_broker_configs(self.node_id, build)

    async def alter_broker_configs(self, build: ConfigBuild) -> dict[str, str]:
        return await self.store.catalog.alter_broker_configs(self.node_id, build)

    # -- partition data ----------------------------------------------------------------

    def partition(self, topic: str, partition: int) -> PartitionLog:
        return self.store.partition(topic, partition)

    def partition_log(self, topic: str, partition: int) -> PartitionLog | None:
        return self.store.partitions.get((topic, partition))

    async def delete_records(self, topic: str, partition: int, offset: int) -> int:
        part = self.store.partition(topic, partition)
        return await delete_records(part, offset, self.store.stream_ops)

    def append_nowait(
        self,
        topic: str,
        partition: int,
        records: bytes | bytearray | memoryview,
        *,
        txn_verified: bool = False,
    ) -> PendingAppend:
        return self.store.append_nowait(topic, partition, records, txn_verified=txn_verified)

    async def read(
        self, topic: str, partition: int, offset: int, max_bytes: int, *, committed: bool = False
    ) -> ReadResult:
        return await self.store.read(topic, partition, offset, max_bytes, committed=committed)

    def prefetch(self, topic: str, partition: int, offset: int) -> None:
        self.store.prefetch(topic, partition, offset)

    async def wait_for_data(self, keys: Sequence[PartitionKey], timeout: float) -> None:
        await self.store.wait_for_data(keys, timeout)

    async def offset_for_timestamp(
        self, topic: str, partition: int, timestamp: int
    ) -> tuple[int, int]:
        return await self.store.offset_for_timestamp(topic, partition, timestamp)

    async def max_timestamp_offset(self, topic: str, partition: int) -> tuple[int, int]:
        return await self.store.max_timestamp_offset(topic, partition)

    async def allocate_producer_id(self) -> int:
        return await self.store.allocate_producer_id()

    def producers(self, topic: str, partition: int) -> list[ActiveProducer]:
        state = self.store.partition(topic, partition).state
        open_txns = state.txns.open
        return [
            ActiveProducer(
                producer_id=pid,
                producer_epoch=epoch,
                last_sequence=latest.last_seq if latest is not None else -1,
                last_timestamp=-1,  # batches' timestamps are not kept in producer state
                txn_start_offset=open_txns.get(pid, -1),
            )
            for pid, epoch, latest in state.producers.active()
        ]

    # -- groups ------------------------------------------------------------------------

    async def group_call(self, group_id: str, make_event: Callable[[int], Event]) -> Effect:
        return await self.groups.call(group_id, make_event)

    def live_group(self, group_id: str) -> Group | None:
        return self.groups.group(group_id)

    def live_group_ids(self) -> Iterable[str]:
        return list(self.groups.groups)

    def committed_offsets(self, group_id: str) -> Mapping[PartitionKey, CommittedOffset]:
        return self.store.committed_offsets(group_id)

    def groups_with_offsets(self) -> list[str]:
        return self.store.groups_with_offsets()

    def unstable_offsets(self, group_id: str) -> frozenset[PartitionKey]:
        # Every transaction ends within transaction.max.timeout.ms of its last write
        # (the coordinator aborts it), so offsets staged longer ago than that have no
        # marker coming (a staging that raced its own abort): they never hold a reader.
        since = self._clock_ms() - self._config.transaction_max_timeout_ms
        return frozenset(
            (str(row[0]), int(row[1]))
            for entry in self.store.txns.pending_offsets(group_id).values()
            if int(entry.get("ts", 0)) >= since
            for row in entry["offsets"]
        )

    async def commit_offsets(
        self, group_id: str, offsets: Sequence[tuple[str, int, int, int, str | None]]
    ) -> None:
        await self.store.commit_offsets(group_id, offsets)

    async def delete_offsets(self, group_id: str, partitions: Sequence[PartitionKey]) -> None:
        await self.store.delete_offsets(group_id, partitions)

    async def delete_group_offsets(self, group_id: str) -> None:
        await self.store.delete_group(group_id)

    # -- transactions (broker/transactions/, docs/transactions.md) -----------------------

    @property
    def txn_coordinator(self) -> TxnCoordinator:
        return self.txns

    def coordinates_txn(self, transactional_id: str) -> bool:
        return self.store.coordinates(transactional_id)  # the same slots as groups

    def now_ms(self) -> int:
        return self._clock_ms()

    def load_txn(self, transactional_id: str) -> dict[str, Any] | None:
        return self.store.txns.load(transactional_id)

    def served_txns(self) -> dict[str, dict[str, Any]]:
        return self.store.txns.served()

    async def save_txn(self, transactional_id: str, meta: dict[str, Any]) -> None:
        await self.store.txns.save(transactional_id, meta)

    def coordinator_epoch(self, transactional_id: str) -> int:
        return self.store.txns.coordinator_epoch(transactional_id)

    async def write_markers(self, markers: Markers, coordinator_epoch: int) -> None:
        await self.txn_links.write_markers(markers, coordinator_epoch)

    @contextlib.asynccontextmanager
    async def txn_gate(self, producer_id: int) -> AsyncIterator[None]:
        lock, users = self._txn_gates.setdefault(producer_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                self._txn_gates.pop(producer_id, None)

    async def verify_txn(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Sequence[PartitionKey],
    ) -> dict[PartitionKey, ErrorCode]:
        if self.coordinates_txn(transactional_id):  # no await on this path: order kept
            return {
                key: self.verify_txn_here(transactional_id, producer_id, producer_epoch, key)
                for key in partitions
            }
        owner = self.store.coordinator_of(transactional_id)
        if owner is None:
            return dict.fromkeys(partitions, ErrorCode.coordinator_not_available)
        return await self.txn_links.verify_remote(
            owner, transactional_id, producer_id, producer_epoch, partitions
        )

    def verify_txn_here(
        self, transactional_id: str, producer_id: int, producer_epoch: int, key: PartitionKey
    ) -> ErrorCode:
        if key[0] != GROUP_TOPIC:
            return self.txns.verify(transactional_id, producer_id, producer_epoch, partition=key)
        # `__consumer_offsets` N stands for the transaction's groups of slot N, as Kafka's
        # group coordinator names a group by its offsets partition when it verifies.
        meta = self.txns.meta(transactional_id)
        groups = sorted(g for g in (meta.groups if meta else ()) if group_slot(g) == key[1])
        if not groups:
            code = self.txns.verify(transactional_id, producer_id, producer_epoch)
            return code if code != ErrorCode.none else ErrorCode.invalid_txn_state
        return self.txns.verify(transactional_id, producer_id, producer_epoch, group=groups[0])

    async def stage_txn_offsets(
        self,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        offsets: Sequence[tuple[str, int, int, int, str | None]],
    ) -> None:
        await self.store.txns.stage_offsets(group_id, producer_id, producer_epoch, offsets)

    async def write_txn_marker(
        self,
        topic: str,
        partition: int,
        *,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
    ) -> ErrorCode:
        store = self.store
        try:
            if topic == GROUP_TOPIC:
                if not store.serves((GROUP_TOPIC, partition)):
                    return ErrorCode.not_coordinator
                groups = [
                    g
                    for g, pending in store.stream.state.txn_offsets.items()
                    if group_slot(g) == partition and producer_id in pending
                ]
                await store.txns.end_offsets(producer_id, producer_epoch, groups, commit)
                return ErrorCode.none
            if store.topic(topic) is None:
                return ErrorCode.unknown_topic_or_partition
            pending = store.produce.append_marker(
                topic,
                partition,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                commit=commit,
                coordinator_epoch=coordinator_epoch,
                timestamp=store.clock.wall_ms(),
            )
            await pending.durable
        except StoreError as exc:
            return exc.code
        return ErrorCode.none
