"""The topic catalog over the in-memory object store: what CreateTopics and
CreatePartitions may add, checked before anything is allocated or committed, and what
a topic config value an older broker stored does to produce."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch
from tidelog.storage.errors import StoreError
from tidelog.storage.log_store import LogStore, StoreConfig
from tidelog.storage.memory_store import MemoryObjectStore

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


def batch(value: bytes) -> bytes:
    return build_batch([Record(0, NOW, b"k", value)])


def test_create_topic_refuses_a_bad_config_value_and_stores_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        store = make(tmp_path, MemoryObjectStore())
        await store.start()
        seq = store.meta.state.seq
        with pytest.raises(StoreError) as refused:
            await store.create_topic("t", 1, {"max.message.bytes": "abc"})
        assert refused.value.code == ErrorCode.invalid_config
        assert "config=max.message.bytes" in str(refused.value)
        assert store.topic("t") is None and store.meta.state.seq == seq
        await store.stop()

    asyncio.run(main())


def test_a_bad_config_value_an_older_broker_stored_is_ignored_by_produce(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        store = make(tmp_path, MemoryObjectStore())
        await store.start()
        # The op exactly as a broker without config checks committed it.
        op = {"op": "create_topic", "name": "old", "id": str(uuid.uuid4()), "partitions": 1}
        op["configs"] = {"max.message.bytes": "abc", "retention.ms": None}
        await store.meta.append(
            ops=lambda s: [op, store.membership.assign_new(s, [("old", 0)])],
            guard=store.membership.is_member,
        )
        await store.membership.adopt_assigned()
        result = await store.append("old", 0, batch(b"v"))
        assert result.base_offset == 0
        assert store.topic_config("old", "max.message.bytes") == "1048588"
        with pytest.raises(StoreError) as too_large:
            store.append_nowait("old", 0, batch(b"x" * 1_100_000))
        assert too_large.value.code == ErrorCode.message_too_large
        await store.stop()

    asyncio.run(main())


def _set(**configs: str) -> Callable[[Mapping[str, str]], dict[str, str]]:
    """An incremental change: these overrides set, the others kept."""
    return lambda current: {**current, **{k.replace("_", "."): v for k, v in configs.items()}}


def test_a_config_change_through_one_broker_is_in_force_on_another_once_it_folds(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        mem = MemoryObjectStore()
        one = make(tmp_path / "one", mem, node_id=1)
        two = make(tmp_path / "two", mem, node_id=2)
        await one.start()
        await two.start()
        await one.create_topic("t", 1)
        await two.refresh()
        seq = two.meta.state.seq
        # validate_only's check changes nothing, and a bad value is refused by name.
        assert one.catalog.check_topic_configs("t", _set(max_message_bytes="100")) == {
            "max.message.bytes": "100"
        }
        with pytest.raises(StoreError) as bad:
            await one.catalog.alter_topic_configs("t", _set(retention_ms="soon"))
        assert bad.value.code == ErrorCode.invalid_config
        assert "config=retention.ms" in str(bad.value)
        assert await two.refresh() == 0 and two.meta.state.seq == seq
        await one.catalog.alter_topic_configs("t", _set(max_message_bytes="100"))
        assert two.topic_config("t", "max.message.bytes") == "1048588"  # not folded yet
        assert await two.refresh() == 1
        assert two.topic_config("t", "max.message.bytes") == "100"
        leader = one if one.serves(("t", 0)) else two
        with pytest.raises(StoreError) as too_large:
            leader.append_nowait("t", 0, batch(b"x" * 200))
        assert too_large.value.code == ErrorCode.message_too_large
        await two.stop()
        await one.stop()

    asyncio.run(main())


def test_two_brokers_changing_configs_at_once_both_take_effect(tmp_path: Path) -> None:
    async def main() -> None:
        mem = MemoryObjectStore()
        one = make(tmp_path / "one", mem, node_id=1)
        two = make(tmp_path / "two", mem, node_id=2)
        await one.start()
        await two.start()
        await one.create_topic("t", 1, {"segment.ms": "60000"})
        await two.refresh()
        await one.catalog.alter_topic_configs("t", _set(retention_ms="1000"))
        # `two` has not folded that: its change is rebuilt on it when the commit
        # position turns out taken, instead of overwriting it.
        configs = await two.catalog.alter_topic_configs("t", _set(max_message_bytes="100"))
        expected = {"segment.ms": "60000", "retention.ms": "1000", "max.message.bytes": "100"}
        assert configs == expected
        await one.refresh()
        assert one.topic("t").configs == expected  # type: ignore[union-attr]
        await two.stop()
        await one.stop()

    asyncio.run(main())


def test_a_config_change_never_alters_a_topic_deleted_and_created_again(tmp_path: Path) -> None:
    async def main() -> None:
        mem = MemoryObjectStore()
        one = make(tmp_path / "one", mem, node_id=1)
        two = make(tmp_path / "two", mem, node_id=2)
        await one.start()
        await two.start()
        await one.create_topic("t", 1)
        await two.refresh()
        await two.delete_topic("t")
        await two.create_topic("t", 1, {"retention.ms": "5"})
        with pytest.raises(StoreError) as gone:  # `one` checked it against the old id
            await one.catalog.alter_topic_configs("t", _set(retention_ms="1000"))
        assert gone.value.code == ErrorCode.unknown_topic_or_partition
        assert one.topic("t").configs == {"retention.ms": "5"}  # type: ignore[union-attr]
        await two.stop()
        await one.stop()

    asyncio.run(main())
