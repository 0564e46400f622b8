"""Segments, retention and the lifecycle pass over a real LogStore (in-memory bucket)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from tidelog.protocol.records import Record, build_batch, decode_records
from tidelog.storage import paths
from tidelog.storage.log_store import LogStore, StoreConfig
from tidelog.storage.memory_store import MemoryObjectStore
from tidelog.storage.segments import Segment, retention_start, roll_plan, segments_of
from tidelog.storage.stream_state import ChunkRef, PartitionState

T = TypeVar("T")


class Wall:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


def ref(base: int, end: int, ts: int, length: int = 100, key: str | None = None) -> ChunkRef:
    if key is None:
        return ChunkRef(base, end, ts, "00000000000000000001-n1", base, 0, length, 0)
    return ChunkRef(base, end, ts, key, -1, base * 10, length, 0)


# -- the pure rules ----------------------------------------------------------------------


def test_segments_are_one_per_object_and_one_active_run() -> None:
    chunks = [ref(0, 2, 1, key="a"), ref(2, 4, 2, key="a"), ref(4, 5, 3, key="b"), ref(5, 9, 4)]
    segs = segments_of([*chunks, ref(9, 10, 5)])
    assert [(s.key, s.base_offset, s.end_offset) for s in segs] == [
        ("a", 0, 4),
        ("b", 4, 5),
        (None, 5, 10),
    ]


def test_roll_takes_a_full_segment_or_an_old_enough_run() -> None:
    active = [ref(0, 1, 1000, 400), ref(1, 2, 2000, 400), ref(2, 3, 3000, 400)]
    assert roll_plan(active, roll_bytes=800, segment_ms=10**9, now_ms=3000) == active[:2]
    assert roll_plan(active, roll_bytes=10_000, segment_ms=5000, now_ms=5999) == []
    assert roll_plan(active, roll_bytes=10_000, segment_ms=5000, now_ms=6000) == active
    big = [ref(0, 1, 1, 5000)]
    assert roll_plan(big, roll_bytes=800, segment_ms=10**9, now_ms=1) == big


def test_retention_moves_the_log_start_by_whole_segments() -> None:
    segs = [
        Segment("a", (ref(0, 10, 1000, 300, "a"),)),
        Segment("b", (ref(10, 20, 5000, 300, "b"),)),
        Segment(None, (ref(20, 30, 9000, 300),)),
    ]
    by_time = dict(retention_ms=3000, retention_bytes=-1)
    assert retention_start(segs, log_start=0, now_ms=7000, **by_time) == 10
    assert retention_start(segs, log_start=0, now_ms=8001, **by_time) == 20
    assert retention_start(segs, log_start=0, now_ms=12_001, **by_time) == 30  # active too
    by_size = dict(retention_ms=-1, retention_bytes=600)
    assert retention_start(segs, log_start=0, now_ms=0, **by_size) == 10
    assert retention_start(segs, log_start=15, now_ms=0, **by_size) == 15
    assert retention_start(segs, log_start=0, now_ms=0, retention_ms=-1, retention_bytes=-1) == 0


def test_replacing_chunks_needs_the_boundaries_it_was_built_on() -> None:
    part = PartitionState("id", "t", 0, [ref(0, 2, 1), ref(2, 4, 1), ref(4, 6, 1)], 6)
    moved = [ref(0, 2, 1, key="s"), ref(2, 4, 1, key="s")]
    assert not part.replace_chunks(1, 4, moved)  # no boundary at 1
    assert not part.replace_chunks(0, 3, moved)  # no boundary at 3
    assert part.replace_chunks(0, 4, moved)
    assert [c.in_segment for c in part.chunks] == [True, True, False]
    part.move_log_start(3)
    assert [c.base_offset for c in part.chunks] == [2, 4]  # [0, 2) left the index
    assert part.chunk_for(3) == part.chunks[0]


def test_an_offset_in_a_gap_reads_the_next_chunk() -> None:
    part = PartitionState("id", "t", 0, [ref(0, 2, 1), ref(5, 6, 1)], 6)
    assert part.chunk_for(3) == part.chunks[1]
    assert part.chunk_for(6) is None


# -- the pass over a real store ----------------------------------------------------------


def _batch(values: list[bytes], ts: int) -> bytes:
    return build_batch([Record(i, ts, f"k{i}".encode(), v) for i, v in enumerate(values)])


def _config(tmp: Path, **kw: int) -> StoreConfig:
    # A pass only when the test runs one.
    base = {"flush_interval_ms": 3_600_000, "log_retention_check_interval_ms": 10**9}
    return StoreConfig(data_dir=tmp, **{**base, **kw})  # type: ignore[arg-type]


def _make(tmp: Path, mem: MemoryObjectStore, wall: Wall) -> LogStore:
    return LogStore(_config(tmp), mem, wall)


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(fn())  # type: ignore[arg-type]


async def _values(store: LogStore, topic: str) -> list[bytes | None]:
    out: list[bytes | None] = []
    part = store.partition(topic, 0)
    offset = part.log_start
    while offset < part.high_watermark:
        res = await store.read(topic, 0, offset, 1 << 20)
        recs = [r for r in decode_records(b"".join(res.parts)) if r.offset >= offset]
        out += [r.value for r in recs]
        offset = recs[-1].offset + 1
    return out


def _segment_keys(mem: MemoryObjectStore) -> list[str]:
    return sorted(k for k in mem.objects if k.startswith(paths.SEGMENTS_PREFIX))


def test_a_pass_rolls_segments_that_survive_a_restart(tmp_path: Path) -> None:
    mem, wall = MemoryObjectStore(), Wall()

    async def main() -> None:
        store = _make(tmp_path, mem, wall)
        await store.start()
        await store.create_topic("t", 1, {"segment.ms": "1000", "retention.ms": "-1"})
        for i in range(3):
            await store.append("t", 0, _batch([f"v{i}".encode()], wall.now))
            await store.flush_once()
        store.partition("t", 0).evict_committed(0)  # the roll must read the bucket
        wall.now += 1000
        stats = await store.lifecycle.run_once()
        assert (stats.rolled, stats.failed) == (1, 0), stats.errors
        assert all(c.in_segment for c in store.partition("t", 0).state.chunks)
        assert len(_segment_keys(mem)) == 1
        await store.stop()
        again = _make(tmp_path, mem, wall)
        await again.start()
        assert all(c.in_segment for c in again.partition("t", 0).state.chunks)
        assert await _values(again, "t") == [b"v0", b"v1", b"v2"]
        await again.stop()

    _run(main)


def test_retention_moves_the_log_start_and_deletes_the_segment_after_the_delay(
    tmp_path: Path,
) -> None:
    mem, wall = MemoryObjectStore(), Wall()

    async def main() -> None:
        store = _make(tmp_path, mem, wall)
        await store.start()
        configs = {"segment.ms": "1000", "retention.ms": "5000", "file.delete.delay.ms": "2000"}
        await store.create_topic("t", 1, configs)
        await store.append("t", 0, _batch([b"old"], wall.now))
        await store.flush_once()
        wall.now += 1000
        assert (await store.lifecycle.run_once()).rolled == 1
        await store.append("t", 0, _batch([b"new"], wall.now))
        await store.flush_once()
        wall.now += 4500  # "old" is 5500 ms old, "new" 4500
        stats = await store.lifecycle.run_once()
        assert stats.retained == 1
        part = store.partition("t", 0)
        assert part.log_start == 1
        assert await _values(store, "t") == [b"new"]
        assert len(_segment_keys(mem)) == 2  # the old one waits out the delete delay
        wall.now += 2000
        stats = await store.lifecycle.run_once()
        assert stats.deleted == 1
        keys = _segment_keys(mem)
        assert len(keys) == 1 and paths.parse_segment_key(keys[0]).base_offset == 1
        await store.stop()

    _run(main)


def test_retention_by_size_keeps_at_least_retention_bytes(tmp_path: Path) -> None:
    mem, wall = MemoryObjectStore(), Wall()

    async def main() -> None:
        store = _make(tmp_path, mem, wall)
        await store.start()
        await store.create_topic("t", 1, {"segment.ms": "1", "retention.bytes": "1"})
        for _ in range(3):
            await store.append("t", 0, _batch([b"x" * 100], wall.now))
            await store.flush_once()
            wall.now += 1
            await store.lifecycle.run_once()
        part = store.partition("t", 0)
        # Each segment is bigger than retention.bytes: all but the last one go.
        assert part.log_start == 2
        assert await _values(store, "t") == [b"x" * 100]
        await store.stop()

    _run(main)


def test_a_new_owner_sweeps_segments_no_index_names(tmp_path: Path) -> None:
    mem, wall = MemoryObjectStore(), Wall()

    async def main() -> None:
        store = _make(tmp_path, mem, wall)
        await store.start()
        await store.create_topic("t", 1, {"file.delete.delay.ms": "1000"})
        await store.append("t", 0, _batch([b"a"], wall.now))
        await store.flush_once()
        topic_id = store.partition("t", 0).topic_id
        stray = paths.SegmentName(topic_id, 0, 0, wall.now, "0badf00d").key
        await mem.put(stray, b"never committed")
        first = await store.lifecycle.run_once()  # first sight: the sweep dooms it
        assert first.deleted == 0 and stray in mem.objects
        wall.now += 1000
        assert (await store.lifecycle.run_once()).deleted == 1
        assert stray not in mem.objects
        await store.stop()

    _run(main)


# -- the janitor -------------------------------------------------------------------------


def _commit_keys(mem: MemoryObjectStore) -> list[str]:
    return sorted(k for k in mem.objects if k.startswith(paths.STREAMS_PREFIX) and "/log/" in k)


def test_the_janitor_deletes_commits_no_index_names_and_the_data_stays_readable(
    tmp_path: Path,
) -> None:
    mem, wall = MemoryObjectStore(), Wall()
    config = _config(tmp_path, snapshot_every=4, log_segment_delete_delay_ms=1000)

    async def main() -> None:
        store = LogStore(config, mem, wall)
        await store.start()
        await store.create_topic("t", 2, {"segment.ms": "1"})
        for i in range(12):
            await store.append("t", i % 2, _batch([f"v{i}".encode()], wall.now))
            await store.flush_once()
        wall.now += 1
        await store.lifecycle.run_once()  # rolls both partitions into segment objects
        for _ in range(8):  # more commits, so that two snapshots lie past the rolled data
            await store.commit_now()
        janitor = store.lifecycle.janitor
        assert janitor is not None
        before = _commit_keys(mem)
        first = await janitor.run_once()
        assert first.ran and not first.skipped and first.collectable > 0
        assert first.deleted == 0  # not before the delay
        wall.now += 1000
        second = await janitor.run_once()
        assert second.deleted == first.collectable
        after = _commit_keys(mem)
        assert len(after) == len(before) - second.deleted
        await store.stop()
        again = LogStore(config, mem, wall)
        await again.start()
        for p in (0, 1):
            part = again.partition("t", p)
            got: list[bytes | None] = []
            offset = part.log_start
            while offset < part.high_watermark:
                res = await again.read("t", p, offset, 1 << 20)
                recs = [r for r in decode_records(b"".join(res.parts)) if r.offset >= offset]
                got += [r.value for r in recs]
                offset = recs[-1].offset + 1
            assert got == [f"v{i}".encode() for i in range(p, 12, 2)]
        await again.stop()

    _run(main)


def test_the_janitor_keeps_commits_an_index_still_names(tmp_path: Path) -> None:
    mem, wall = MemoryObjectStore(), Wall()
    config = _config(tmp_path, snapshot_every=4, log_segment_delete_delay_ms=0)

    async def main() -> None:
        store = LogStore(config, mem, wall)
        await store.start()
        await store.create_topic("t", 1)  # never rolls: segment.ms is a week
        for i in range(6):
            await store.append("t", 0, _batch([f"v{i}".encode()], wall.now))
            await store.flush_once()
        for _ in range(10):
            await store.commit_now()
        janitor = store.lifecycle.janitor
        assert janitor is not None
        await janitor.run_once()
        await janitor.run_once()
        named = {c.object_key for c in store.partition("t", 0).state.chunks}
        assert named and named <= set(mem.objects)
        await store.stop()

    _run(main)


# -- compaction --------------------------------------------------------------------------


async def _records(store: LogStore, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record a consumer from the log start reads, stepping over emptied batches
    and gaps as a client does (by the batches' offsets)."""
    from tidelog.protocol.batch import iter_batches

    part = store.partition(topic, 0)
    out: list[tuple[int, bytes | None, bytes | None]] = []
    offset = part.log_start
    while offset < part.high_watermark:
        res = await store.read(topic, 0, offset, 1 << 20)
        data = b"".join(res.parts)
        out += [(r.offset, r.key, r.value) for r in decode_records(data) if r.offset >= offset]
        offset = max(h.next_offset for _, h in iter_batches(data))
    return out


def _keyed(round_: int, ts: int, keys: int = 4) -> bytes:
    recs = [Record(i, ts, f"k{i}".encode(), f"r{round_}".encode()) for i in range(keys)]
    return build_batch(recs)


async def _compacted(
    tmp: Path, mem: MemoryObjectStore, wall: Wall, extra: dict[str, str]
) -> LogStore:
    """A started store with topic "c", compacted at every pass (segments roll at once,
    any dirty share cleans)."""
    store = _make(tmp, mem, wall)
    await store.start()
    configs = {"cleanup.policy": "compact", "segment.ms": "1", "min.cleanable.dirty.ratio": "0"}
    await store.create_topic("c", 1, {**configs, **extra})
    return store


def test_compaction_keeps_the_latest_value_per_key_and_every_offset(tmp_path: Path) -> None:
    mem, wall = MemoryObjectStore(), Wall()

    async def main() -> None:
        store = await _compacted(tmp_path, mem, wall, {"file.delete.delay.ms": "0"})
        compacted = 0
        for round_ in range(3):
            await store.append("c", 0, _keyed(round_, wall.now))
            await store.flush_once()
            wall.now += 1
            compacted += (await store.lifecycle.run_once()).compacted
        assert compacted >= 1
        got = await _records(store, "c")
        # r0 is superseded by r1; r2, the newest data, is never touched.
        assert got == [(4 + i, f"k{i}".encode(), b"r1") for i in range(4)] + [
            (8 + i, f"k{i}".encode(), b"r2") for i in range(4)
        ]
        part = store.partition("c", 0)
        assert part.state.cleaned_end == 8
        await store.stop()
        again = _make(tmp_path, mem, wall)  # the compacted index survives a restart
        await again.start()
        assert await _records(again, "c") == got
        await again.stop()

    _run(main)


def test_compaction_removes_tombstones_after_delete_retention(tmp_path: Path) -> None:
    mem, wall = MemoryObjectStore(), Wall()

    async def main() -> None:
        store = await _compacted(tmp_path, mem, wall, {"delete.retention.ms": "1000"})
        await store.append("c", 0, _keyed(0, wall.now, keys=2))
        await store.flush_once()
        tomb = build_batch([Record(0, wall.now, b"k0", None)])
        await store.append("c", 0, tomb)
        await store.flush_once()
        newest = build_batch([Record(0, wall.now, b"n", b"n")])
        await store.append("c", 0, newest)  # the newest data: never cleaned
        await store.flush_once()
        wall.now += 1
        await store.lifecycle.run_once()  # rolls the three
        await store.append("c", 0, build_batch([Record(0, wall.now, b"z", b"z")]))
        await store.flush_once()
        wall.now += 1
        await store.lifecycle.run_once()
        values = [(k, v) for _, k, v in await _records(store, "c")]
        assert (b"k0", None) in values  # the tombstone stays for delete.retention.ms
        assert (b"k0", b"r0") not in values
        wall.now += 1000
        await store.append("c", 0, build_batch([Record(0, wall.now, b"y", b"y")]))
        await store.flush_once()
        wall.now += 1
        await store.lifecycle.run_once()
        await store.lifecycle.run_once()
        values = [(k, v) for _, k, v in await _records(store, "c")]
        assert b"k0" not in [k for k, _ in values]
        assert (b"k1", b"r0") in values
        await store.stop()

    _run(main)
