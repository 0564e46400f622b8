"""LogStore over the in-memory object store: durability, recovery, fencing, outages."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch, decode_records
from tidelog.storage import paths
from tidelog.storage.errors import StoreError
from tidelog.storage.log_store import LogStore, StoreConfig
from tidelog.storage.memory_store import MemoryObjectStore

T = TypeVar("T")
NOW = 1_700_000_000_000


def clock() -> int:
    return NOW


def batch(values: list[bytes], *, ts: int = NOW, pid: int = -1, seq: int = -1) -> bytes:
    recs = [Record(i, ts + i, f"k{i}".encode(), v) for i, v in enumerate(values)]
    return build_batch(
        recs, producer_id=pid, producer_epoch=0 if pid >= 0 else -1, base_sequence=seq
    )


def make(tmp: Path, mem: MemoryObjectStore, **kw: object) -> LogStore:
    config = StoreConfig(data_dir=tmp, flush_interval_ms=3_600_000, **kw)  # type: ignore[arg-type]
    return LogStore(config, mem, clock)


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(fn())  # type: ignore[arg-type]


async def read_values(store: LogStore, topic: str, partition: int = 0) -> list[bytes | None]:
    out: list[bytes | None] = []
    offset = store.partition(topic, partition).log_start
    while offset < store.partition(topic, partition).high_watermark:
        res = await store.read(topic, partition, offset, 1 << 20)
        recs = [r for r in decode_records(b"".join(res.parts)) if r.offset >= offset]
        out += [r.value for r in recs]
        offset = recs[-1].offset + 1
    return out


def test_appended_batches_get_dense_offsets_and_read_back(tmp_path: Path) -> None:
    async def main() -> None:
        store = make(tmp_path, MemoryObjectStore())
        await store.start()
        await store.create_topic("orders", 2)
        r1 = await store.append("orders", 1, batch([b"a", b"b"]))
        r2 = await store.append("orders", 1, batch([b"c"]))
        assert (r1.base_offset, r2.base_offset) == (0, 2)
        assert await read_values(store, "orders", 1) == [b"a", b"b", b"c"]
        await store.stop()

    run(main)


def test_wal_records_survive_a_crash_before_upload(tmp_path: Path) -> None:
    mem = MemoryObjectStore()

    async def crash() -> None:
        store = make(tmp_path, mem)
        await store.start()
        await store.create_topic("payments", 1)
        await store.append("payments", 0, batch([b"one", b"two"]))
        # Crash: no flush, no stop. Only the WAL holds the batch.
        assert store.wal is not None
        await store.wal.close()
        await store.flusher.stop()
        await store.membership.stop()
        store.release_data_dir()  # as the kernel does when the process dies

    async def recover() -> None:
        store = make(tmp_path, mem, node_id=2)
        await store.start()
        assert await read_values(store, "payments") == [b"one", b"two"]
        assert store.partition("payments", 0).committed_end == 2  # uploaded at start-up
        r = await store.append("payments", 0, batch([b"three"]))
        assert r.base_offset == 2
        await store.stop()

    run(crash)
    run(recover)


def test_object_mode_acks_only_after_upload_and_needs_no_local_state(tmp_path: Path) -> None:
    mem = MemoryObjectStore()

    async def produce() -> None:
        store = make(tmp_path / "a", mem, durability="object")
        await store.start()
        await store.create_topic("t", 1)
        pending = store.append_nowait("t", 0, batch([b"x"]))
        task = asyncio.ensure_future(pending.durable)
        await asyncio.sleep(0)
        assert not task.done()  # not in the bucket yet
        await store.flush_once()
        await task
        await store.stop()

    async def replace() -> None:
        store = make(tmp_path / "b", mem, durability="object", node_id=9)
        await store.start()
        assert await read_values(store, "t") == [b"x"]
        await store.stop()

    run(produce)
    run(replace)


def test_a_replaced_broker_is_fenced_and_stops_acking(tmp_path: Path) -> None:
    mem = MemoryObjectStore()

    async def main() -> None:
        old = make(tmp_path / "old", mem, session_timeout_ms=600)
        await old.start()
        await old.create_topic("t", 1)
        # The replacement seals old's stream, then waits out its lease before serving.
        new = make(tmp_path / "new", mem, node_id=2, replace_nodes=(1,), session_timeout_ms=600)
        await new.start()
        # In the WAL, but never acknowledged: old's lease ran out and cannot be renewed
        # (its uploads are refused), so it finds out it was fenced instead.
        with pytest.raises(StoreError) as err:
            await old.append("t", 0, batch([b"zombie"]))
        assert err.value.code == ErrorCode.not_leader_or_follower
        assert old.fenced
        with pytest.raises(StoreError) as err:
            await old.append("t", 0, batch([b"later"]))
        assert err.value.code == ErrorCode.not_leader_or_follower
        assert new.partition("t", 0).committed_end == 0
        await old.stop()
        await new.stop()

    run(main)


def test_retried_idempotent_batch_is_not_stored_twice_even_after_restart(tmp_path: Path) -> None:
    mem = MemoryObjectStore()
    first = batch([b"p1"], pid=5000, seq=0)

    async def before() -> None:
        store = make(tmp_path, mem)
        await store.start()
        await store.create_topic("t", 1)
        assert (await store.append("t", 0, first)).base_offset == 0
        await store.stop()

    async def after() -> None:
        store = make(tmp_path, mem, node_id=3)
        await store.start()
        again = await store.append("t", 0, first)
        assert again.duplicate and again.base_offset == 0
        with pytest.raises(StoreError) as err:
            await store.append("t", 0, batch([b"gap"], pid=5000, seq=5))
        assert err.value.code == ErrorCode.out_of_order_sequence_number
        assert await read_values(store, "t") == [b"p1"]
        await store.stop()

    run(before)
    run(after)


def test_bad_crc_is_corrupt_message_and_stores_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        store = make(tmp_path, MemoryObjectStore())
        await store.start()
        await store.create_topic("t", 1)
        bad = bytearray(batch([b"v"]))
        bad[-1] ^= 0xFF
        with pytest.raises(StoreError) as err:
            await store.append("t", 0, bytes(bad))
        assert err.value.code == ErrorCode.corrupt_message
        assert store.partition("t", 0).next_offset == 0
        await store.stop()

    run(main)


def test_outage_keeps_wal_mode_acking_until_the_backlog_is_full(tmp_path: Path) -> None:
    mem = MemoryObjectStore()

    async def main() -> None:
        store = make(tmp_path, mem, max_backlog_bytes=400)
        await store.start()
        await store.create_topic("t", 1)
        mem.unavailable = True
        await store.append("t", 0, batch([b"x" * 100]))
        await store.append("t", 0, batch([b"y" * 100]))
        assert await store.flush_once() is None
        await store.append("t", 0, batch([b"z" * 100]))
        with pytest.raises(StoreError) as err:
            await store.append("t", 0, batch([b"refused"]))
        assert err.value.code == ErrorCode.kafka_storage_error and err.value.code.retriable
        mem.unavailable = False
        assert await store.flush_once() is not None
        assert store.partition("t", 0).committed_end == 3
        await store.append("t", 0, batch([b"accepted again"]))
        await store.stop()

    run(main)


def test_upload_whose_answer_was_lost_is_not_committed_twice(tmp_path: Path) -> None:
    mem = MemoryObjectStore()

    async def main() -> None:
        store = make(tmp_path, mem)
        await store.start()
        await store.create_topic("t", 1)
        await store.append("t", 0, batch([b"a"]))
        mem.lose_answers = 1
        assert await store.flush_once() is None  # landed, but we were told it failed
        await store.append("t", 0, batch([b"b"]))
        assert await store.flush_once() is not None
        part = store.partition("t", 0)
        assert part.committed_end == 2
        assert [(c.base_offset, c.end_offset) for c in part.state.chunks] == [(0, 1), (1, 2)]
        assert await read_values(store, "t") == [b"a", b"b"]
        await store.stop()

    run(main)


def test_committed_offsets_survive_replacement_and_snapshots(tmp_path: Path) -> None:
    mem = MemoryObjectStore()

    async def before() -> None:
        store = make(tmp_path / "a", mem, snapshot_every=2)
        await store.start()
        await store.create_topic("t", 2)
        await store.commit_offsets("projection", [("t", 0, 41, 0, "m"), ("t", 1, 7, -1, None)])
        await store.commit_offsets("projection", [("t", 0, 42, 0, None)])
        await store.commit_offsets("doomed", [("t", 0, 1, -1, None)])
        await store.delete_group("doomed")
        await store.commit_offsets("trimmed", [("t", 0, 3, -1, None), ("t", 1, 4, -1, None)])
        await store.delete_offsets("trimmed", [("t", 0)])
        await store.stop()

    async def after() -> None:
        store = make(tmp_path / "b", mem, node_id=5)
        stats = await store.start()
        assert stats.snapshot_seq >= 0  # folded from a snapshot, then the log tail
        offsets = store.committed_offsets("projection")
        assert {k: v.offset for k, v in offsets.items()} == {("t", 0): 42, ("t", 1): 7}
        assert offsets[("t", 0)].metadata is None and offsets[("t", 0)].commit_timestamp == NOW
        assert store.groups_with_offsets() == ["projection", "trimmed"]
        assert list(store.committed_offsets("trimmed")) == [("t", 1)]
        await store.stop()

    run(before)
    run(after)


def test_a_corrupted_chunk_in_the_bucket_is_refused_not_served(tmp_path: Path) -> None:
    mem = MemoryObjectStore()

    async def main() -> None:
        store = make(tmp_path, mem, tail_cache_bytes=0)  # reads must go to the bucket
        await store.start()
        await store.create_topic("t", 1)
        await store.append("t", 0, batch([b"precious"]))
        await store.flush_once()
        (ref,) = store.partition("t", 0).state.chunks
        assert await read_values(store, "t") == [b"precious"]
        key = paths.stream_commit_key(ref.stream, ref.commit_seq)
        damaged = bytearray(mem.objects[key])
        damaged[ref.position + ref.length - 1] ^= 0x01
        mem.objects[key] = bytes(damaged)
        fresh = make(tmp_path / "fresh", mem, tail_cache_bytes=0, node_id=2)
        await store.stop()
        await fresh.start()
        with pytest.raises(StoreError) as err:
            await fresh.read("t", 0, 0, 1 << 20)
        assert err.value.code == ErrorCode.kafka_storage_error
        await fresh.stop()

    run(main)


def test_stop_right_after_a_poke_ends_the_membership_loop(tmp_path: Path) -> None:
    """A poke wakes the membership loop's wait in the same turn as stop() cancels it;
    the stop must still end the loop (Python 3.11's wait_for swallowed that cancel,
    and the broker hung on SIGTERM)."""

    async def main() -> None:
        store = make(tmp_path, MemoryObjectStore())
        await store.start()
        for _ in range(3):
            loop_task = store.membership._task
            assert loop_task is not None
            store.membership.poke()
            stopping = asyncio.ensure_future(store.membership.stop())
            await asyncio.wait({stopping}, timeout=10)  # waits; never cancels the stop
            assert stopping.done(), "membership.stop() hung after a poke"
            assert loop_task.done()
            store.membership.run()
        await store.stop()

    run(main)


def _fill(store: LogStore, topic: str, per_partition: list[int], size: int) -> tuple[int, Any]:
    """Append `per_partition[p]` one-record batches of about `size` bytes: their length,
    and an awaitable for all of them being durable."""
    length = 0
    pending = []
    for p, count in enumerate(per_partition):
        for i in range(count):
            data = batch([bytes([p, i % 256]) * (size // 2)])
            length = len(data)
            pending.append(store.append_nowait(topic, p, data).durable)
    return length, asyncio.gather(*pending)


async def _cut_by_hand(tmp: Path) -> LogStore:
    """An object-mode store with topic "t" (3 partitions) whose flush_bytes is never
    reached, so only a test's own take_chunks calls cut commits (until it flushes)."""
    store = make(tmp, MemoryObjectStore(), durability="object", flush_bytes=1 << 30)
    await store.start()
    await store.create_topic("t", 3)
    return store


async def _upload_and_stop(store: LogStore, *durable: Any) -> None:
    """Undo take_chunks calls made by hand, then upload everything through the pipeline."""
    store.backlog.rewind()
    await store.flush_once()
    await asyncio.gather(*durable)
    await store.stop()


def test_a_commit_holds_at_most_flush_bytes_or_one_bigger_batch(tmp_path: Path) -> None:
    async def main() -> None:
        store = await _cut_by_hand(tmp_path)
        one, filled = _fill(store, "t", [10, 10, 10], 1000)
        taken: dict[int, list[tuple[int, int]]] = {0: [], 1: [], 2: []}
        budget = 3 * one + one // 2  # room for three batches, not four
        while True:
            chunks, data = store.backlog.take_chunks(budget)
            if not chunks:
                break
            assert sum(len(d) for d in data) <= budget
            for c in chunks:
                taken[c.partition].append((c.base_offset, c.end_offset))
        for ranges in taken.values():  # every batch exactly once, in order
            assert ranges[0][0] == 0 and ranges[-1][1] == 10
            assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # dense, in order
        _, big = _fill(store, "t", [1, 0, 0], 4000)  # bigger than the budget: goes alone
        chunks, data = store.backlog.take_chunks(one)
        assert [(c.partition, c.base_offset, c.end_offset) for c in chunks] == [(0, 10, 11)]
        await _upload_and_stop(store, filled, big)

    run(main)


def test_a_busy_partition_cannot_keep_the_others_out_of_commits(tmp_path: Path) -> None:
    async def main() -> None:
        store = await _cut_by_hand(tmp_path)
        one, filled = _fill(store, "t", [20, 1, 1], 1000)
        more = []
        last_in = {0: 0, 1: 0, 2: 0}  # turn in which each partition last got into a commit
        for turn in range(1, 9):  # every partition has data waiting on every turn
            for c in store.backlog.take_chunks(2 * one)[0]:  # room for two batches only
                last_in[c.partition] = turn
            assert all(turn - last < 3 for last in last_in.values()), (turn, last_in)
            more.append(_fill(store, "t", [0, 1, 1], 1000)[1])
        await _upload_and_stop(store, filled, *more)

    run(main)


def test_small_commits_carry_everything_to_a_replacement_in_order(tmp_path: Path) -> None:
    mem = MemoryObjectStore()
    values = {p: [f"p{p}-{i}-".encode() * 100 for i in range(40)] for p in range(3)}

    async def produce() -> None:
        store = make(tmp_path / "a", mem, durability="object", flush_bytes=8 * 1024)
        await store.start()
        await store.create_topic("t", 3)
        batches = [(p, batch([v])) for p, vs in values.items() for v in vs]
        pending = [store.append_nowait("t", p, b) for p, b in batches]
        await store.flush_once()
        await asyncio.gather(*(a.durable for a in pending))
        total = sum(len(b) for _, b in batches)
        assert store.flusher.commits > total // (8 * 1024)  # cut into many small commits
        await store.stop()

    async def replace() -> None:
        store = make(tmp_path / "b", mem, durability="object", node_id=9)
        await store.start()
        for p, vs in values.items():
            assert await read_values(store, "t", p) == vs
        await store.stop()

    run(produce)
    run(replace)


def test_a_produce_the_wal_could_not_write_leaves_the_partition_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.full_disk import FullDisk

    disk = FullDisk(monkeypatch)
    mem = MemoryObjectStore()
    failed = batch([b"failed"], pid=5000, seq=1)

    async def full() -> None:
        store = make(tmp_path, mem, wal_retry_ms=0)
        await store.start()
        await store.create_topic("t", 1)
        await store.append("t", 0, batch([b"acked"], pid=5000, seq=0))
        disk.full = True
        with pytest.raises(StoreError) as err:
            await store.append("t", 0, failed)
        assert err.value.code == ErrorCode.kafka_storage_error
        assert store.partition("t", 0).next_offset == 1  # its offset is free again
        # While the WAL cannot write, produce is answered at once, nothing is stored.
        with pytest.raises(StoreError) as err:
            store.append_nowait("t", 0, batch([b"refused"], pid=5000, seq=1))
        assert err.value.code == ErrorCode.kafka_storage_error
        assert store.partition("t", 0).next_offset == 1
        disk.full = False
        assert store.wal is not None
        await store.wal.wait_writable()
        # The client's retry is a new append at the freed offset, not a "duplicate" of
        # a batch that was never stored (whose ack would wait forever).
        again = await store.append("t", 0, failed)
        assert (again.base_offset, again.duplicate) == (1, False)
        assert await read_values(store, "t") == [b"acked", b"failed"]
        # Crash: only the WAL holds these two.
        await store.wal.close()
        await store.flusher.stop()
        await store.membership.stop()
        store.release_data_dir()

    async def replay() -> None:
        store = make(tmp_path, mem)
        await store.start()
        assert await read_values(store, "t") == [b"acked", b"failed"]
        await store.stop()

    run(full)
    run(replay)
