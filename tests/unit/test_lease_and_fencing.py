"""Leases, fencing, liveness and flush deadlines driven by a fake clock.

Every LogStore here runs on the in-memory object store and a `FakeClock`: time moves
only when a test calls `advance`, so each deadline is hit exactly, with no sleeps and
no sockets (docs/storage.md, "The Clock rule").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch
from tidelog.storage.errors import StoreError
from tidelog.storage.fake_clock import FakeClock, settle
from tidelog.storage.lease import Lease
from tidelog.storage.log_store import LogStore, StoreConfig
from tidelog.storage.memory_store import MemoryObjectStore
from tidelog.storage.object_store import Data

T = TypeVar("T")
SESSION_MS = 6000


def batch(value: bytes) -> bytes:
    return build_batch([Record(0, 0, b"k", value)])


def make(tmp: Path, mem: MemoryObjectStore, clock: FakeClock, **kw: Any) -> LogStore:
    kw.setdefault("flush_interval_ms", 3_600_000)
    config = StoreConfig(data_dir=tmp, session_timeout_ms=SESSION_MS, **kw)
    return LogStore(config, mem, clock=clock)


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(fn())  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], turns: int = 5000) -> None:
    """Let the loop run (no time passes) until `condition` holds; fail if it never does."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition()


class ArrivingStore(MemoryObjectStore):
    """Tells when a conditional write arrives (it may then wait at the gate)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    async def put_if_absent(self, key: str, data: Data) -> str:
        self.arrived.set()
        return await super().put_if_absent(key, data)


def test_fake_clock_sleep_ends_only_when_time_reaches_it() -> None:
    async def main() -> None:
        clock = FakeClock()
        nap = asyncio.ensure_future(clock.sleep(2.0))
        await clock.advance(1.999)
        assert not nap.done()
        await clock.advance(0.001)
        assert nap.done()

    run(main)


def test_lease_expires_exactly_when_the_fake_clock_passes_it() -> None:
    async def main() -> None:
        clock = FakeClock()
        lease = Lease(clock, 6.0)
        lease.start()
        await clock.advance(5.999)
        assert lease.holds()
        await clock.advance(0.001)
        assert not lease.holds()
        lease.renewed(clock.monotonic() - 1.0)  # a commit sent a second ago landed
        assert lease.holds()
        await clock.advance(5.0)
        assert not lease.holds()

    run(main)


def test_a_wal_ack_after_the_lease_ran_out_waits_for_a_landed_commit(tmp_path: Path) -> None:
    async def main() -> None:
        clock, mem = FakeClock(), ArrivingStore()
        store = make(tmp_path, mem, clock)
        await store.start()
        await store.create_topic("t", 1)
        await store.append("t", 0, batch(b"within the lease"))  # no commit needed
        await clock.advance(SESSION_MS / 1000)  # alone in the cluster: no heartbeats
        assert not store.lease.holds()
        mem.arrived.clear()
        mem.gate = asyncio.Event()  # the renewing commit waits in flight
        ack = asyncio.ensure_future(store.append("t", 0, batch(b"after the lease")))
        arrived = asyncio.ensure_future(mem.arrived.wait())
        done, _ = await asyncio.wait({ack, arrived}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {arrived}  # a commit went out to renew the lease; no ack yet
        await settle()
        assert not ack.done() and store.partition("t", 0).high_watermark == 1
        mem.gate.set()
        assert (await ack).base_offset == 1
        assert store.lease.holds() and store.partition("t", 0).high_watermark == 2
        await store.stop()

    run(main)


def test_a_fenced_node_cannot_commit_and_its_successor_waits_out_its_lease(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        clock, mem = FakeClock(), MemoryObjectStore()
        old = make(tmp_path / "old", mem, clock)
        await old.start()
        await old.create_topic("t", 1)
        new = make(tmp_path / "new", mem, clock, node_id=2, replace_nodes=(1,))
        starting = asyncio.ensure_future(new.start())
        await until(lambda: new.stream_id != "")  # joined; now sealing old, then waiting
        await clock.advance(SESSION_MS / 1000 - 0.001)
        # old may still ack from its WAL until its lease ends: new does not take t-0 up
        assert not starting.done() and ("t", 0) not in new.partitions
        await clock.advance(0.001)
        await until(lambda: ("t", 0) in new.partitions)
        await starting
        with pytest.raises(StoreError) as err:
            await old.commit_offsets("g", [("t", 0, 1, -1, None)])
        assert err.value.code == ErrorCode.not_leader_or_follower
        assert old.fenced
        with pytest.raises(StoreError) as err:
            old.append_nowait("t", 0, batch(b"zombie"))
        assert err.value.code == ErrorCode.not_leader_or_follower
        assert new.committed_offsets("g") == {}
        await new.commit_offsets("g", [("t", 0, 1, -1, None)])
        assert new.committed_offsets("g")[("t", 0)].offset == 1
        await old.stop()
        await new.stop()

    run(main)


def test_a_silent_member_is_declared_dead_after_the_session_timeout_and_adopted(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        clock, mem = FakeClock(), MemoryObjectStore()
        a = make(tmp_path / "a", mem, clock, durability="object")
        await a.start()
        await a.create_topic("t", 4)
        b = make(tmp_path / "b", mem, clock, node_id=2, durability="object")
        await b.start()
        # a dies: no ticks, no heartbeats, no uploads from now on.
        await a.membership.stop()
        await a.flusher.stop()
        await clock.advance(1.0)  # b's first tick starts watching a's stream
        watched_from = clock.monotonic()
        while clock.monotonic() - watched_from < SESSION_MS / 1000:
            assert a.stream_id in b.meta.state.members
            assert not any(k[0] == "t" for k in b.partitions)
            await clock.advance(0.5)
        await clock.advance(1.0)  # the next tick finds a silent for longer than that
        await until(lambda: len([k for k in b.partitions if k[0] == "t"]) == 4)
        assert a.stream_id not in b.meta.state.members
        assert b.partition("t", 3).next_offset == 0
        a.release_data_dir()
        await b.stop()

    run(main)


def test_a_flush_deadline_fires_by_fake_time(tmp_path: Path) -> None:
    async def main() -> None:
        clock, mem = FakeClock(), MemoryObjectStore()
        store = make(tmp_path, mem, clock, durability="object", flush_interval_ms=200)
        await store.start()
        await store.create_topic("t", 1)  # its commit went out now: the next flush is 0.2 s on
        ack = asyncio.ensure_future(store.append("t", 0, batch(b"x")))
        await clock.advance(0.199)
        assert not ack.done() and store.partition("t", 0).committed_end == 0
        await clock.advance(0.001)
        await until(ack.done)
        assert ack.result().base_offset == 0
        assert store.partition("t", 0).committed_end == 1
        await store.stop()

    run(main)
