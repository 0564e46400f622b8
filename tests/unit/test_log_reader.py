"""The read path from the bucket: one GET per chunk, readahead, failures retried."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_log_store import batch, make, run
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import decode_records
from tidelog.storage.errors import StoreError
from tidelog.storage.log_reader import LogReader
from tidelog.storage.log_store import LogStore
from tidelog.storage.memory_store import MemoryObjectStore
from tidelog.storage.object_store import ObjectStoreUnavailable
from tidelog.storage.paths import stream_commit_key


class SlowStore(MemoryObjectStore):
    """Ranged GETs take a moment, and the ones at `fail_at` (key, position) fail once
    each (commits with headers of the same size have chunks at the same position)."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[tuple[str, int]] = []
        self.fail_at: set[tuple[str, int]] = set()

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        self.ranges.append((key, start))
        await asyncio.sleep(0.01)
        if (key, start) in self.fail_at:
            self.fail_at.discard((key, start))
            raise ObjectStoreUnavailable("switched off for this range")
        return await super().get_range(key, start, length)


async def five_chunks_read_by_a_new_broker(tmp_path: Path, mem: SlowStore) -> LogStore:
    """Partition t-0 with five committed chunks (values 0..4), served by a broker that
    has none of it in memory."""
    first = make(tmp_path / "a", mem)
    await first.start()
    await first.create_topic("t", 1)
    for i in range(5):
        await first.append("t", 0, batch([str(i).encode()]))
        await first.flush_once()
    await first.stop()
    second = make(tmp_path / "b", mem, node_id=2, tail_cache_bytes=0)
    await second.start()
    assert len(second.partition("t", 0).state.chunks) == 5
    mem.ranges.clear()
    return second


async def value_at(store: LogStore, offset: int) -> bytes | None:
    res = await store.read("t", 0, offset, 1 << 20)
    (rec,) = [r for r in decode_records(b"".join(res.parts)) if r.offset == offset]
    return rec.value


async def settle(reader: LogReader) -> None:
    while reader._loading:
        await asyncio.sleep(0.005)


def test_reading_a_chunk_reads_the_next_ones_ahead_once_each(tmp_path: Path) -> None:
    mem = SlowStore()

    async def main() -> None:
        store = await five_chunks_read_by_a_new_broker(tmp_path, mem)
        assert await value_at(store, 0) == b"0"
        await settle(store.reader)
        assert len(mem.ranges) == 5  # chunk 0, and 1..4 read ahead
        assert [await value_at(store, i) for i in range(1, 5)] == [b"1", b"2", b"3", b"4"]
        assert len(mem.ranges) == 5  # the later reads cost no GET
        assert len(set(mem.ranges)) == 5
        await store.stop()

    run(main)


def test_readers_waiting_for_one_chunk_share_one_get(tmp_path: Path) -> None:
    mem = SlowStore()

    async def main() -> None:
        store = await five_chunks_read_by_a_new_broker(tmp_path, mem)
        store.reader = LogReader(mem, chunk_cache_bytes=1 << 20, readahead_bytes=0)
        values = await asyncio.gather(*(value_at(store, 2) for _ in range(4)))
        assert values == [b"2"] * 4
        assert len(mem.ranges) == 1
        await store.stop()

    run(main)


def test_a_failed_read_ahead_is_retried_by_the_reader_who_needs_it(tmp_path: Path) -> None:
    mem = SlowStore()
    orphans: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: orphans.append(ctx))
        store = await five_chunks_read_by_a_new_broker(tmp_path, mem)
        chunks = store.partition("t", 0).state.chunks
        mem.fail_at = {(chunks[2].object_key, chunks[2].position)}
        assert await value_at(store, 0) == b"0"  # reads 1..4 ahead; 2 fails
        await settle(store.reader)
        assert await value_at(store, 2) == b"2"  # fetched again, now it works
        assert mem.ranges.count(mem.ranges[-1]) == 2
        mem.fail_at = {(chunks[4].object_key, chunks[4].position)}
        store.reader = LogReader(mem, chunk_cache_bytes=1 << 20, readahead_bytes=0)
        with pytest.raises(StoreError) as err:  # the reader's own GET failing is its error
            await value_at(store, 4)
        assert err.value.code == ErrorCode.kafka_storage_error
        await store.stop()
        gc.collect()
        await asyncio.sleep(0)

    run(main)
    assert orphans == []


def test_many_partitions_read_at_once_read_less_ahead_so_the_cache_holds_them(
    tmp_path: Path,
) -> None:
    mem = SlowStore()

    async def main() -> None:
        first = make(tmp_path / "a", mem)
        await first.start()
        await first.create_topic("t", 8)
        for _ in range(10):
            for p in range(8):
                await first.append("t", p, batch([b"x" * 1000]))
            await first.flush_once()
        await first.stop()
        store = make(tmp_path / "b", mem, node_id=2, tail_cache_bytes=0)
        await store.start()
        chunks = store.partition("t", 7).state.chunks
        # Room for four chunks per partition: half of it for what is read ahead.
        cache = 8 * 4 * chunks[0].length
        store.reader = LogReader(mem, chunk_cache_bytes=cache, readahead_bytes=1 << 20)
        for p in range(8):
            await store.read("t", p, 0, 1 << 20)
        await settle(store.reader)
        mem.ranges.clear()
        await store.read("t", 7, chunks[3].base_offset, 1 << 20)
        await settle(store.reader)
        # chunk 3, and two ahead; alone, partition 7 would have read all up to chunk 9
        want = [(stream_commit_key(c.stream, c.commit_seq), c.position) for c in chunks[3:6]]
        assert sorted(mem.ranges) == want
        await store.stop()

    run(main)
