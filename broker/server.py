"""The broker process: a TCP listener and its connections in front of a `BrokerNode`.

Owns: the listener, the ConnectionTable and its idle sweep, and the wiring (config to
object store to node to connections). Start-up order: bind first (a taken port fails
before we claim the log and fence anyone), serve only once the node has recovered.
Shutdown: stop accepting, finish in-flight requests, then let the node flush
everything to the object store and close; all of it by the shutdown deadline, after
which what is left is given up (docs/durability.md). What a broker is apart from its
listener (storage, groups, handlers, cluster view) is `broker/node.py`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time

from tidelog.broker.config import ServeConfig
from tidelog.broker.connection import Connection
from tidelog.broker.connection_table import (
    ConnectionLimits,
    ConnectionTable,
    default_max_connections,
)
from tidelog.broker.node import BrokerNode
from tidelog.broker.observability.broker_state import NodeState
from tidelog.broker.observability.http_server import HttpServer
from tidelog.broker.observability.status import StatusReport
from tidelog.broker.security.listeners import Listener
from tidelog.broker.security.sasl import SaslSession
from tidelog.broker.security.tls import server_context
from tidelog.storage.store_url import open_object_store

log = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT_S = 10.0


def clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Broker:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
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
        object_store = open_object_store(
            config.object_store,
            s3_endpoint=config.s3_endpoint,
            default_root=config.object_store_root,
            sse=config.security.s3_sse,
            sse_kms_key_id=config.security.s3_sse_kms_key_id,
        )
        self.node = BrokerNode(config, object_store, clock_ms)
        self.fenced = self.node.fenced  # set when another broker took our partitions
        self._servers: list[asyncio.Server] = []
        security = config.security
        self._tls: ssl.SSLContext | None = None
        if any(listener.tls for listener in security.listeners):
            self._tls = server_context(security)  # a bad certificate fails before anything
        self.http: HttpServer | None = None
        if config.http_listen is not None:
            state = NodeState(self.node, self.connections)
            self.node.metrics.watch(state)
            report = StatusReport(state, self.node.measured_store, time.monotonic())
            self.http = HttpServer(
                config.http_listen, self.node.metrics, report, self.why_not_ready
            )

    def _connection(self, listener: Listener) -> Connection:
        sasl = None
        if listener.sasl:
            security = self.node.security
            sasl = SaslSession(self.config.security.sasl_enabled_mechanisms, security.credential)
        return Connection(
            self.node,
            self.node.handlers,
            self.connections,
            self.node.metrics,
            sasl=sasl,
            listener=listener.name,
            audit=self.node.security.audit,
        )

    def why_not_ready(self) -> str:
        """Why /readyz says no ("" once the broker serves Kafka)."""
        if self.fenced.is_set():
            return "fenced: a newer broker owns this broker's partitions"
        if self.node.stopping:
            return "stopping"
        if not self.node.ready:
            return "starting: loading the bucket, replaying the WAL, adopting partitions"
        return ""

    async def start(self) -> None:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            for listener in self.config.security.listeners:
                self._servers.append(
                    await loop.create_server(
                        functools.partial(self._connection, listener),
                        listener.address.host,
                        listener.address.port,
                        reuse_address=True,
                        start_serving=False,
                        ssl=self._tls if listener.tls else None,
                        # A handshake in progress is not in the connection table yet:
                        # bound how long a silent one may hold its socket.
                        ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if listener.tls else None,
                    )
                )
            if self.http is not None:
                await self.http.start()
        except OSError:
            for server in self._servers:
                server.close()
            raise
        stats = await self.node.start()
        for server in self._servers:
            await server.start_serving()
        self._sweeper = loop.create_task(self.connections.sweep_forever())
        names = [listener.name for listener in self.config.security.listeners]
        bound = [server.sockets[0].getsockname() for server in self._servers]
        log.info(
            "tidelog ready listen=%s:%d listeners=%s advertised=%s node_id=%d durability=%s "
            "object_store=%s stream=%s topics=%d partitions_led=%d commits_read=%d "
            "bytes_read=%d startup_ms=%d",
            bound[0][0],
            bound[0][1],
            ",".join(f"{n}://{a[0]}:{a[1]}" for n, a in zip(names, bound, strict=True)),
            ",".join(map(str, self.config.security.advertised)),
            self.node.node_id,
            self.config.durability,
            self.node.object_store.url,
            self.node.stream_id,
            len(self.node.topics()),
            self.node.partitions_led(),
            stats.commits_read,
            stats.bytes_read,
            (time.monotonic() - started) * 1000,
        )

    async def stop(self, deadline: float | None = None) -> bool:
        """Stop accepting, finish in-flight requests, upload, hand over, close. With a
        `deadline` (event-loop time) whatever has not finished by then is given up;
        returns False if so (the store logs what it left behind)."""
        for server in self._servers:
            server.close()
        self.node.begin_stop()  # parked joins get NOT_COORDINATOR, long polls answer now
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
        finished = await self.node.stop(deadline if finished else loop.time()) and finished
        if self.http is not None:
            await self.http.stop()
        log.info("tidelog stopped node_id=%d", self.node.node_id)
        return finished
