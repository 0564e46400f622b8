"""The broker process: a TCP listener in front of the handler table and the LogStore.

Owns: start-up order (recover storage before listening), the handler table (which is
also what ApiVersions advertises), and clean shutdown: stop accepting, finish
in-flight requests, flush everything to the object store, close; all of it by the
shutdown deadline, after which what is left is given up (docs/durability.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

from tidelog.broker.config import ServeConfig
from tidelog.broker.connection import Connection
from tidelog.broker.connection_table import (
    ConnectionLimits,
    ConnectionTable,
    default_max_connections,
)
from tidelog.broker.groups.coordinator import GroupCoordinator
from tidelog.broker.groups.model import GroupConfig
from tidelog.broker.handlers import HANDLERS
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.errors import StoreError
from tidelog.storage.log_store import LogStore, StoreConfig
from tidelog.storage.meta_state import Member, TopicState
from tidelog.storage.s3_store import S3ObjectStore
from tidelog.storage.store_url import open_object_store

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


def clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Broker:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.handlers: dict[int, Handler] = {h.api_key: h for h in HANDLERS}
        max_connections = config.max_connections or default_max_connections()
        self.connections = ConnectionTable(
            ConnectionLimits(
                max_connections=max_connections,
                max_connections_per_ip=config.max_connections_per_ip or max_connections,
                max_idle_ms=config.connections_max_idle_ms,
                queued_max_requests=config.queued_max_requests,
                max_request_bytes=config.max_request_bytes,
            ),
            time.monotonic,
        )
        self._sweeper: asyncio.Task[None] | None = None
        data_dir = Path(config.data_dir)
        self.object_store = open_object_store(
            config.object_store, s3_endpoint=config.s3_endpoint, default_root=data_dir / "objects"
        )
        self.store = LogStore(
            StoreConfig(
                data_dir=data_dir,
                node_id=config.node_id,
                durability="object" if config.durability == "object" else "wal",
                flush_interval_ms=config.flush_interval_ms,
                flush_bytes=config.flush_bytes,
                host=config.advertised.host,
                port=config.advertised.port,
                session_timeout_ms=config.session_timeout_ms,
                replace_nodes=config.replace,
                wal_failover="takeover" if config.wal_failover == "takeover" else "wait",
                max_partitions_per_topic=config.max_partitions_per_topic,
                max_partitions=config.max_partitions,
            ),
            self.object_store,
            clock_ms,
        )
        self.cluster_id = str(uuid.uuid5(CLUSTER_ID_NAMESPACE, self.object_store.url))[:22]
        self.groups = GroupCoordinator(
            GroupConfig(initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms),
            clock_ms,
            self.store.coordinates,
        )
        self._server: asyncio.Server | None = None
        self.stopping = False
        self._stopped = asyncio.Event()
        self.fenced = asyncio.Event()  # set when another broker took our partitions
        self.store.on_fenced = self.fenced.set

    def api_ranges(self) -> list[tuple[int, int, int]]:
        return sorted(
            (h.api_key, h.advertised_min_version, h.max_version) for h in self.handlers.values()
        )

    async def start(self) -> None:
        started = time.monotonic()
        # Bind first (a taken port fails before we claim the log and fence anyone),
        # serve only once storage has recovered.
        self._server = await asyncio.get_running_loop().create_server(
            lambda: Connection(self, self.connections),
            self.config.listen.host,
            self.config.listen.port,
            reuse_address=True,
            start_serving=False,
        )
        if isinstance(self.object_store, S3ObjectStore):
            await self.object_store.ensure_bucket()
        stats = await self.store.start()
        await self._server.start_serving()
        self._sweeper = asyncio.get_running_loop().create_task(self.connections.sweep_forever())
        bound = self._server.sockets[0].getsockname()
        log.info(
            "tidelog ready listen=%s:%d advertised=%s node_id=%d durability=%s "
            "object_store=%s stream=%s topics=%d partitions_led=%d commits_read=%d "
            "bytes_read=%d startup_ms=%d",
            bound[0],
            bound[1],
            self.config.advertised,
            self.node_id,
            self.config.durability,
            self.object_store.url,
            self.store.stream_id,
            len(self.store.topics()),
            len(self.store.partitions),
            stats.commits_read,
            stats.bytes_read,
            (time.monotonic() - started) * 1000,
        )

    async def stop(self, deadline: float | None = None) -> bool:
        """Stop accepting, finish in-flight requests, upload, hand over, close. With a
        `deadline` (event-loop time) whatever has not finished by then is given up;
        returns False if so (the store logs what it left behind)."""
        if self._server is not None:
            self._server.close()
        self.groups.close()  # parked joins/syncs get NOT_COORDINATOR instead of hanging
        self.stopping = True
        self.store.wake_readers()  # long-polling fetches answer now, not at max_wait
        if self._sweeper is not None:
            self._sweeper.cancel()
        open_connections = [c for c in self.connections if isinstance(c, Connection)]
        finished = True
        try:
            async with asyncio.timeout_at(deadline):
                for conn in open_connections:
                    await conn.drain()
        except TimeoutError:
            finished = False
            log.warning(
                "in-flight requests did not finish by the shutdown deadline; closing "
                "connections=%d",
                len(open_connections),
            )
        for conn in open_connections:
            if conn.transport is not None:
                if finished:
                    conn.transport.close()
                else:
                    conn.transport.abort()
        loop = asyncio.get_running_loop()
        store_deadline = deadline if finished else loop.time()
        finished = await self.store.stop(store_deadline) and finished
        try:
            async with asyncio.timeout_at(deadline if finished else loop.time()):
                await self.object_store.close()
        except TimeoutError:
            finished = False
        self._stopped.set()
        log.info("tidelog stopped node_id=%d", self.node_id)
        return finished

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

    async def ensure_topic(self, name: str) -> TopicState | None:
        """The topic, auto-created if allowed; None if it does not exist. Raises
        StoreError when creating it is refused for good (a cap, a reserved name)."""
        topic = self.store.topic(name)
        if topic is None and self.config.auto_create_topics:
            await self.store.fresh_metadata()  # another broker may have just created it
            topic = self.store.topic(name)
        if topic is not None or not self.config.auto_create_topics:
            return topic
        try:
            return await self.store.create_topic(name, self.config.default_partitions)
        except StoreError as exc:
            log.info("auto-create refused topic=%s error=%s", name, exc)
            if exc.code in _AUTO_CREATE_REFUSALS:
                raise
            return self.store.topic(name)
