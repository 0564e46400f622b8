"""The cleaner pass (`log.cleaner.backoff.ms`, storage/lifecycle.py): between two
retention checks it rolls and cleans compacted topics, and only those."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_lifecycle import Wall, _batch, _compacted, _keyed, _records, _run
from tidelog.storage.memory_store import MemoryObjectStore
from tidelog.storage.paths import SegmentName


def test_the_cleaner_pass_compacts_and_leaves_retention_alone(tmp_path: Path) -> None:
    mem, wall = MemoryObjectStore(), Wall()

    async def main() -> None:
        store = await _compacted(tmp_path, mem, wall, {"file.delete.delay.ms": "0"})
        await store.create_topic("d", 1, {"segment.ms": "1", "retention.ms": "1"})
        await store.append("d", 0, _batch([b"old"], wall.now))
        compacted = 0
        for round_ in range(3):
            await store.append("c", 0, _keyed(round_, wall.now))
            await store.flush_once()
            wall.now += 10
            stats = await store.lifecycle.run_cleaner_once()
            assert stats.partitions == 1  # "d" is not compacted: not looked at
            compacted += stats.compacted
        assert compacted >= 1
        assert await _records(store, "c") == [
            (4 + i, f"k{i}".encode(), b"r1") for i in range(4)
        ] + [(8 + i, f"k{i}".encode(), b"r2") for i in range(4)]
        old = store.partition("d", 0)
        assert old.log_start == 0 and not any(c.in_segment for c in old.state.chunks)
        assert store.lifecycle.passes == 0 and store.lifecycle.cleaner_passes == 3
        await store.stop()

    _run(main)


def test_a_partition_the_cleaner_saw_first_is_still_swept_by_the_full_pass(
    tmp_path: Path,
) -> None:
    mem, wall = MemoryObjectStore(), Wall()

    async def main() -> None:
        store = await _compacted(tmp_path, mem, wall, {"file.delete.delay.ms": "0"})
        part = store.partition("c", 0)
        orphan = SegmentName(part.topic_id, 0, 0, wall.now - 1, "0bad0bad").key
        await mem.put_if_absent(orphan, [b"left by a fenced owner"])
        await store.append("c", 0, _keyed(0, wall.now))
        await store.flush_once()
        wall.now += 10
        await store.lifecycle.run_cleaner_once()
        assert orphan in mem.objects  # the cleaner pass does not sweep
        await store.lifecycle.run_once()  # the first full pass over it does
        assert orphan not in mem.objects
        await store.stop()

    _run(main)
