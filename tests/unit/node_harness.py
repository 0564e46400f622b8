"""A real BrokerNode over the in-memory object store, for handler tests without sockets.

`run_node(tmp_path, body, **settings)` starts a `BrokerNode` (the real LogStore, WAL in
`tmp_path`, group coordinator and handler table) on `MemoryObjectStore`, runs the async
`body(harness)` on one event loop and stops the node whatever happens. `harness.call`
takes a kio request entity and does what a connection does around a handler: the
request is encoded with the client-side codec and decoded by the handler's own
`decode` (the body guard, Produce's zero-copy view), handled, and the answer is
encoded and decoded again, so a test sees exactly what a client would read, and an
answer kio cannot write fails the test. `answers_on_the_wire` feeds raw frames to a
real `Connection` on a fake transport, for what only the connection decides.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from tidelog.broker.config import ServeConfig, add_serve_arguments, resolve_serve_config
from tidelog.broker.connection import Connection
from tidelog.broker.connection_table import ConnectionLimits, ConnectionTable
from tidelog.broker.node import BrokerNode
from tidelog.protocol.codec import decode_response, encode_request, encode_response
from tidelog.protocol.headers import parse_request_header
from tidelog.protocol.messages import build, request_module
from tidelog.protocol.records import Record, build_batch
from tidelog.storage.memory_store import MemoryObjectStore

T = TypeVar("T")
NOW_MS = 1_700_000_000_000


def serve_config(data_dir: Path, **settings: Any) -> ServeConfig:
    """`tidelog serve`'s defaults, with `data_dir` and `settings` (ServeConfig fields)."""
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    config = resolve_serve_config(parser.parse_args(["--data-dir", str(data_dir)]), {})
    # No initial rebalance delay: a join completes on the loop, not after a timer.
    settings.setdefault("group_initial_rebalance_delay_ms", 0)
    settings.setdefault("transaction_max_timeout_ms", 900_000)
    return dataclasses.replace(config, **settings)


def request(api_key: int, version: int, class_name: str, **fields: Any) -> Any:
    """A kio request entity of that version; fields it lacks are dropped."""
    return build(request_module(api_key, version), class_name, **fields)


def batch(*values: bytes, timestamp_ms: int = NOW_MS) -> bytes:
    """One v2 record batch holding `values` (keys k0, k1, ...)."""
    records = [Record(i, timestamp_ms + i, f"k{i}".encode(), v) for i, v in enumerate(values)]
    return build_batch(records)


class NodeHarness:
    def __init__(self, node: BrokerNode, objects: MemoryObjectStore) -> None:
        self.node = node
        self.objects = objects
        self._correlations = itertools.count(1)

    async def call(self, entity: Any, client_id: str = "unit") -> Any:
        """The handler's answer to `entity`, as a client would decode it."""
        frame = bytearray(b"".join(encode_request(next(self._correlations), entity, client_id)))
        del frame[:4]  # the size prefix: the connection hands handlers the frame only
        header, body_offset = parse_request_header(frame)
        handler = self.node.handlers[header.api_key]
        decoded = handler.decode(frame, body_offset, header.api_version)
        answer = await handler.handle(self.node, header, decoded)
        parts = (
            answer if isinstance(answer, list) else encode_response(header.correlation_id, answer)
        )
        wire = b"".join(parts)
        correlation, response = decode_response(header.api_key, header.api_version, wire[4:])
        assert correlation == header.correlation_id
        return response

    async def create_topic(self, name: str, partitions: int = 1) -> None:
        await self.node.create_topic(name, partitions, {})


def run_node(tmp_path: Path, body: Callable[[NodeHarness], Awaitable[T]], **settings: Any) -> T:
    """Start a node on a fresh memory store, run `body`, stop the node; body's result."""

    async def main() -> T:
        objects = MemoryObjectStore()
        node = BrokerNode(
            serve_config(tmp_path, **settings), objects, lambda: time.time_ns() // 1_000_000
        )
        await node.start()
        try:
            return await body(NodeHarness(node, objects))
        finally:
            await node.stop()

    return asyncio.run(main())


class FakeTransport:
    """What a Connection needs of a transport; records what is written."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.aborted = False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def writelines(self, data: list[bytes]) -> None:
        for part in data:
            self.written += part

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True


def answers_on_the_wire(node: BrokerNode, frame: bytes) -> FakeTransport:
    """Feed one raw frame (size prefix included) to a real Connection in front of
    `node`; the transport holds what was answered synchronously, or `aborted`."""
    limits = ConnectionLimits(
        max_connections=10,
        max_connections_per_ip=10,
        max_idle_ms=600_000,
        queued_max_requests=10,
        max_request_bytes=1 << 20,
    )
    conn = Connection(node, node.handlers, ConnectionTable(limits, time.monotonic))
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    view = memoryview(frame)
    while view:
        buf = conn.get_buffer(len(view))
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        conn.buffer_updated(n)
        view = view[n:]
    return transport
