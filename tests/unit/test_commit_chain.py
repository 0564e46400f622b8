"""Chained commits: concurrent uploads, orphans, gaps and recovery (memory store)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.unit.test_log_store import batch, make, read_values, run
from tidelog.protocol.errors import ErrorCode
from tidelog.storage import paths
from tidelog.storage.commit_format import Chunk, CommitHeader
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.errors import StoreError
from tidelog.storage.memory_store import MemoryObjectStore
from tidelog.storage.meta_state import MetaState
from tidelog.storage.ownership import read_stream
from tidelog.storage.stream_state import PartitionState, StreamState


def test_a_commit_that_does_not_name_the_head_is_an_orphan() -> None:
    state = MetaState()
    create = {"op": "create_topic", "name": "t", "id": "00000000-0000-0000-0000-000000000001",
              "partitions": 1}  # fmt: skip
    join = {"op": "join", "node": 1, "host": "h", "port": 1, "durability": "wal",
            "session_timeout_ms": 6000}  # fmt: skip
    first = CommitHeader(1, -1, 0, ops=(join,), commit_id="a", prev_id="")
    assert state.apply(0, first, 0)
    stale = CommitHeader(1, 0, 0, ops=(create,), commit_id="b", prev_id="not-a")
    assert not state.apply(1, stale, 0)
    assert (state.seq, state.head_id, state.topics, state.orphans) == (1, "a", {}, 1)
    good = CommitHeader(1, 0, 0, ops=(create,), commit_id="c", prev_id="a")
    assert state.apply(2, good, 0)
    assert list(state.topics) == ["t"]


def test_a_commit_by_a_broker_that_is_not_a_member_takes_no_effect() -> None:
    state = MetaState()
    join = {"op": "join", "node": 1, "host": "h", "port": 1, "durability": "wal",
            "session_timeout_ms": 6000}  # fmt: skip
    assert state.apply(0, CommitHeader(1, -1, 0, ops=(join,), commit_id="a"), 0)
    create = {"op": "create_topic", "name": "t", "id": "x", "partitions": 1}
    # node 2 never joined (or was fenced): its write chains but changes nothing
    assert not state.apply(1, CommitHeader(2, 7, 0, ops=(create,), commit_id="b", prev_id="a"), 0)
    assert state.topics == {} and state.rejected == 1
    assert state.apply(2, CommitHeader(1, 0, 0, ops=(create,), commit_id="c", prev_id="b"), 0)
    assert list(state.topics) == ["t"]


def test_uploads_overlap_and_are_acknowledged_in_order(tmp_path: Path) -> None:
    mem = MemoryObjectStore()

    async def main() -> None:
        store = make(tmp_path, mem, durability="object", flush_bytes=1)
        await store.start()
        await store.create_topic("t", 1)
        mem.gate = asyncio.Event()  # hold every upload
        acks = []
        for i in range(3):  # one at a time, so each goes into its own commit
            acks.append(asyncio.ensure_future(store.append("t", 0, batch([b"%d" % i]))))
            for _ in range(5):
                await asyncio.sleep(0)
        assert len(store.flusher.in_flight()) == 3  # three commits uploading at once
        assert not any(a.done() for a in acks)  # none acked before it landed
        mem.gate.set()
        results = await asyncio.gather(*acks)
        assert [r.base_offset for r in results] == [0, 1, 2]
        assert await read_values(store, "t") == [b"0", b"1", b"2"]
        await store.stop()

    run(main)


def test_failed_upload_with_a_later_one_landed_commits_everything_exactly_once(
    tmp_path: Path,
) -> None:
    mem = MemoryObjectStore()

    async def main() -> None:
        store = make(tmp_path, mem, durability="object", flush_bytes=1)
        await store.start()
        await store.create_topic("t", 1)
        head = store.stream.state.seq
        mem.gate = asyncio.Event()
        mem.drop_keys.add(store.stream.layout.commit_key(head + 1))  # never lands
        acks = []
        for i in range(3):  # one commit each: the 2nd and 3rd land after a gap
            acks.append(asyncio.ensure_future(store.append("t", 0, batch([b"%d" % i]))))
            for _ in range(5):
                await asyncio.sleep(0)
        assert len(store.flusher.in_flight()) == 3
        mem.gate.set()
        results = await asyncio.gather(*acks)
        assert [r.base_offset for r in results] == [0, 1, 2]
        part = store.partition("t", 0)
        assert [(c.base_offset, c.end_offset) for c in part.state.chunks][-1][1] == 3
        assert sum(c.end_offset - c.base_offset for c in part.state.chunks) == 3
        streams.append(store.stream_id)
        await store.stop()

    streams: list[str] = []

    async def replay() -> None:
        fresh = make(tmp_path / "fresh", mem, durability="object", node_id=2, replace_nodes=(1,))
        await fresh.start()
        assert await read_values(fresh, "t") == [b"0", b"1", b"2"]
        old = await read_stream(mem, streams[0], node_id=9, clock_ms=lambda: 0)
        assert old.state.orphans == 2  # the uploads after the gap count for nothing
        await fresh.stop()

    run(main)
    run(replay)


def test_a_replaced_brokers_in_flight_uploads_are_refused_or_orphaned(tmp_path: Path) -> None:
    mem = MemoryObjectStore()

    async def main() -> None:
        old = make(tmp_path / "old", mem, durability="object", flush_bytes=1)
        await old.start()
        await old.create_topic("t", 1)
        held = asyncio.Event()
        mem.gate = held
        zombie = []
        for i in range(2):  # two uploads in flight, at positions S and S+1
            zombie.append(asyncio.ensure_future(old.append("t", 0, batch([b"z%d" % i]))))
            for _ in range(5):
                await asyncio.sleep(0)
        assert len(old.flusher.in_flight()) == 2
        # The replacement loads and claims position S while the old uploads are held.
        mem.gate = None
        new = make(
            tmp_path / "new", mem, durability="object", node_id=2, flush_bytes=1, replace_nodes=(1,)
        )
        await new.start()
        held.set()  # S is refused (taken by the seal); S+1 lands, chained to S: orphan
        outcomes = await asyncio.gather(*zombie, return_exceptions=True)
        assert all(isinstance(o, StoreError) for o in outcomes), outcomes
        assert {o.code for o in outcomes if isinstance(o, StoreError)} == {
            ErrorCode.not_leader_or_follower
        }
        assert old.fenced
        sealed = await read_stream(mem, old.stream_id, node_id=9, clock_ms=lambda: 0)
        assert sealed.state.sealed_by == new.stream_id
        assert sealed.state.orphans == 1
        assert new.partition("t", 0).committed_end == 0  # nothing of the zombie's counts
        assert (await new.append("t", 0, batch([b"new"]))).base_offset == 0
        await old.stop()
        await new.stop()

    run(main)


def test_concurrent_catch_ups_fold_each_commit_once() -> None:
    mem = MemoryObjectStore()

    async def main() -> None:
        writer = CommitLog(mem, paths.META, MetaState, node_id=1, clock_ms=lambda: 0)
        join = {"op": "join", "node": 1, "host": "h", "port": 1, "durability": "wal",
                "session_timeout_ms": 6000}  # fmt: skip
        writer.epoch = await writer.append(ops=[join])
        for i in range(3):
            await writer.append(ops=[{"op": "alloc_pids", "node": 1, "count": i + 1}])
        reader = CommitLog(mem, paths.META, MetaState, node_id=2, clock_ms=lambda: 0)
        # The tick and a request may both catch up at once: neither may fold twice.
        await asyncio.gather(reader.catch_up(), reader.catch_up(), reader.catch_up())
        assert reader.state.seq == 3 and reader.state.next_producer_id == 1000 + 1 + 2 + 3

    asyncio.run(main())


def test_adopting_a_key_twice_for_one_tenure_never_resets_it() -> None:
    state = StreamState(stream=paths.stream_id(1, 0))
    adopt = PartitionState("id", "t", 0).to_json(tenure=5)
    assert state.apply(0, CommitHeader(1, 0, 0, ops=(adopt,), commit_id="a"), 0)
    chunk = Chunk("id", "t", 0, 0, 10, 0, 0, 100, 0)
    assert state.apply(1, CommitHeader(1, 0, 0, chunks=(chunk,), commit_id="b", prev_id="a"), 0)
    # A second adoption for the same assignment (two callers raced) changes nothing.
    assert state.apply(2, CommitHeader(1, 0, 0, ops=(adopt,), commit_id="c", prev_id="b"), 0)
    assert state.partitions[("t", 0)].committed_end == 10
    # A newer assignment does replace it (the key came back from another broker).
    newer = PartitionState("id", "t", 0).to_json(tenure=9)
    assert state.apply(3, CommitHeader(1, 0, 0, ops=(newer,), commit_id="d", prev_id="c"), 0)
    assert state.partitions[("t", 0)].committed_end == 0
