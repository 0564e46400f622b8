"""DescribeLogDirs (35) on a real node: one log dir, the object store, holding the
partitions this broker leads with their bytes; CLUSTER DESCRIBE required."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.unit.node_harness import NodeHarness, batch, request, run_node, serve_config
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.store_url import store_location

DESCRIBE_LOG_DIRS, PRODUCE = 35, 0


def _describe(v: int, topics: dict[str, tuple[int, ...]] | None) -> Any:
    wanted = (
        None
        if topics is None
        else tuple(
            request(DESCRIBE_LOG_DIRS, v, "DescribableLogDirTopic", topic=t, partitions=parts)
            for t, parts in topics.items()
        )
    )
    return request(DESCRIBE_LOG_DIRS, v, "DescribeLogDirsRequest", topics=wanted)


def _produce(topic: str, partition: int, records: bytes) -> Any:
    part = request(PRODUCE, 9, "PartitionProduceData", index=partition, records=records)
    return request(
        PRODUCE,
        9,
        "ProduceRequest",
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(seconds=30),
        topic_data=(request(PRODUCE, 9, "TopicProduceData", name=topic, partition_data=(part,)),),
    )


def _sizes(response: Any) -> dict[tuple[str, int], tuple[int, int, bool]]:
    (result,) = response.results
    assert result.error_code == ErrorCode.none
    return {
        (t.name, p.partition_index): (p.partition_size, p.offset_lag, p.is_future_key)
        for t in result.topics
        for p in t.partitions
    }


@pytest.mark.parametrize("durability", ["object", "wal"])
def test_each_led_partition_is_listed_with_its_bytes_in_the_object_store_dir(
    tmp_path: Path, durability: str
) -> None:
    first, second = batch(b"a", b"b"), batch(b"c" * 100)

    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 2)
        await h.create_topic("u", 1)
        await h.call(_produce("t", 0, first))
        await h.call(_produce("t", 0, second))
        for v in range(1, 6):
            every = await h.call(_describe(v, None))
            assert _sizes(every) == {
                ("t", 0): (len(first) + len(second), 0, False),
                ("t", 1): (0, 0, False),
                ("u", 0): (0, 0, False),
            }
            (result,) = every.results
            assert result.log_dir == (tmp_path / "objects").resolve().as_uri()
            assert (getattr(result, "total_bytes", -1), getattr(result, "usable_bytes", -1)) == (
                -1,
                -1,
            )
            # Unknown topics and partitions are left out, as Kafka leaves out replicas
            # it does not hold; a partition asked twice is listed once.
            some = await h.call(_describe(v, {"t": (0, 0, 7), "nope": (0,)}))
            assert _sizes(some) == {("t", 0): (len(first) + len(second), 0, False)}

    run_node(tmp_path, body, durability=durability)


def test_without_cluster_describe_no_dir_is_listed(tmp_path: Path) -> None:
    # `--authorizer acl` with no ACLs: nobody (bar super users) may describe the cluster.
    security = dataclasses.replace(serve_config(tmp_path).security, authorizer="acl")

    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        for v in range(1, 6):
            answer = await h.call(_describe(v, None))
            assert answer.results == ()
            expected = ErrorCode.cluster_authorization_failed if v >= 3 else ErrorCode.none
            assert getattr(answer, "error_code", ErrorCode.none) == expected

    run_node(tmp_path, body, security=security)


def test_the_log_dir_is_named_after_the_store_it_opens(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    assert store_location(None, default_root=root) == root.resolve().as_uri()
    assert store_location(f"file://{tmp_path}/b", default_root=root) == (
        (tmp_path / "b").resolve().as_uri()
    )
    assert store_location("s3://bucket/prefix/", default_root=root) == "s3://bucket/prefix"
    assert store_location("fault+s3://bucket?switch=/tmp/x", default_root=root) == "s3://bucket"
