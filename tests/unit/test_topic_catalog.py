"""The topic catalog over the in-memory object store: what CreateTopics and
CreatePartitions may add, checked before anything is allocated or committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from protocol.errors import ErrorCode
from storage.errors import StoreError
from storage.log_store import LogStore, StoreConfig
from storage.memory_store import MemoryObjectStore

NOW = 1_700_000_000_000


def make(tmp: Path, mem: MemoryObjectStore, **kw: object) -> LogStore:
    config = StoreConfig(data_dir=tmp, flush_interval_ms=3_600_000, **kw)  # type: ignore[arg-type]
    return LogStore(config, mem, lambda: NOW)


def test_two_brokers_creating_at_once_cannot_pass_the_cluster_cap_together(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        mem = MemoryObjectStore()
        one = make(tmp_path / "one", mem, node_id=1, max_partitions=10)
        two = make(tmp_path / "two", mem, node_id=2, max_partitions=10)
        await one.start()
        await two.start()
        await two.create_topic("first", 6)
        # `one` has not folded that yet: its own check passes, the commit's must not.
        assert one.topic("first") is None
        with pytest.raises(StoreError) as refused:
            await one.create_topic("second", 6)
        assert refused.value.code == ErrorCode.policy_violation
        assert "max_partitions=10" in str(refused.value)
        assert one.topic("first") is not None and one.topic("second") is None
        with pytest.raises(StoreError) as grown:
            await one.create_partitions("first", 11)
        assert grown.value.code == ErrorCode.policy_violation
        await one.create_partitions("first", 10)  # exactly the cap
        await two.stop()
        await one.stop()

    asyncio.run(main())
