"""Garbage collection racing a slow reader and a second broker, on every object store.

A reader that resolved an offset to a chunk of a segment object just before compaction
replaced that segment still reads it: the object stays `file.delete.delay.ms` after it
left the index (docs/segments.md). After the delay the pass deletes it, and only it: a
second broker that adopts the partition from the same bucket reads every record the
compacted log holds, and every object its index names is still in the bucket. Run on the
local store, moto and SeaweedFS (the contract tests' fresh stores), with a wall clock the
test moves, so the delay passes without waiting.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.test_object_store_contract import BACKENDS, fresh_store
from tests.unit.test_lifecycle import Wall, _keyed, _records
from tidelog.storage.errors import StoreError
from tidelog.storage.log_store import LogStore, StoreConfig
from tidelog.storage.object_store import ObjectNotFound, ObjectStore
from tidelog.storage.paths import SEGMENTS_PREFIX

pytestmark = pytest.mark.integration

DELAY_MS = 5000
TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.ms": "1",
    "min.cleanable.dirty.ratio": "0",
    "file.delete.delay.ms": str(DELAY_MS),
}


@pytest.fixture(scope="module")
def shared_buckets() -> dict[str, str]:
    return {}


@pytest.fixture(params=BACKENDS)
def bucket(
    request: pytest.FixtureRequest, tmp_path: Path, shared_buckets: dict[str, str]
) -> ObjectStore:
    return fresh_store(request, request.param, tmp_path, shared_buckets)


def _config(data_dir: Path, node_id: int) -> StoreConfig:
    # Passes run only when the test runs them.
    return StoreConfig(
        data_dir=data_dir,
        node_id=node_id,
        flush_interval_ms=3_600_000,
        log_retention_check_interval_ms=10**9,
        log_cleaner_backoff_ms=10**9,
    )


async def _segments(bucket: ObjectStore) -> set[str]:
    return {info.key for info in await bucket.list(SEGMENTS_PREFIX)}


def test_gc_waits_for_a_slow_reader_and_keeps_what_a_second_broker_reads(
    bucket: ObjectStore, tmp_path: Path
) -> None:
    wall = Wall()

    async def main() -> None:
        first = LogStore(_config(tmp_path / "one", 1), bucket, wall)
        await first.start()
        await first.create_topic("c", 1, TOPIC_CONFIGS)
        for round_ in range(2):
            await first.append("c", 0, _keyed(round_, wall.now))
            await first.flush_once()
            wall.now += 10
            await first.lifecycle.run_once()  # rolls each round into a segment object
        part = first.partition("c", 0)
        slow = part.state.chunk_for(0)  # a fetch resolved offset 0, then stalled
        assert slow is not None and slow.in_segment
        await first.append("c", 0, _keyed(2, wall.now))  # newer data: round 0 is cleanable
        await first.flush_once()
        wall.now += 10
        stats = await first.lifecycle.run_once()
        assert stats.compacted >= 1
        assert all(c.object_key != slow.object_key for c in part.state.chunks)
        # Out of the index, still in the bucket: the stalled fetch reads it.
        assert slow.object_key in await _segments(bucket)
        assert len(await first.reader.load(slow)) == slow.length

        wall.now += DELAY_MS
        assert (await first.lifecycle.run_once()).deleted >= 1
        assert slow.object_key not in await _segments(bucket)
        with pytest.raises((ObjectNotFound, StoreError)):  # too slow by a delay: gone
            await first.reader.load(slow)
        expected = await _records(first, "c")  # a new fetch resolves again and reads on
        assert [k for _, k, _ in expected].count(b"k0") == 2  # rounds 1 and 2
        await first.stop()

        second = LogStore(_config(tmp_path / "two", 2), bucket, wall)
        await second.start()
        assert await _records(second, "c") == expected
        named = {c.object_key for c in second.partition("c", 0).state.chunks if c.in_segment}
        assert named and named <= await _segments(bucket)
        await second.stop()

    asyncio.run(main())
