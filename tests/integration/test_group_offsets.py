"""Committed group offsets and group administration, with real clients and the real broker.

Covers OffsetCommit/OffsetFetch from librdkafka without a subscription (assign + commit,
Kafka's "simple" consumer), their durability across `kill -9` and replacement by a
broker with a new node id and an empty data dir, and the admin APIs of kafka-python
and confluent-kafka (list, describe, list offsets, alter offsets, delete groups).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import admin, create_topic, topic_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("group-offsets") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def group_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def simple_consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )


def commit(bootstrap: str, group: str, offsets: list[TopicPartition]) -> None:
    consumer = simple_consumer(bootstrap, group)
    try:
        result = consumer.commit(offsets=offsets, asynchronous=False)
        assert result is not None
        assert [tp.error for tp in result] == [None] * len(offsets)
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = simple_consumer(bootstrap, group)
    try:
        wanted = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(wanted, timeout=10)}
    finally:
        consumer.close()


def test_librdkafka_commits_without_subscribing_and_reads_it_back(
    broker: BrokerProcess,
) -> None:
    topic, group = topic_name("commit"), group_name("simple")
    create_topic(broker, topic, partitions=3)
    commit(
        broker.bootstrap,
        group,
        [TopicPartition(topic, 0, 5), TopicPartition(topic, 2, 42, metadata="why")],
    )
    # -1001 is librdkafka's OFFSET_INVALID: nothing committed for partition 1.
    assert committed(broker.bootstrap, group, topic, 3) == {0: 5, 1: -1001, 2: 42}
    commit(broker.bootstrap, group, [TopicPartition(topic, 0, 6)])
    assert committed(broker.bootstrap, group, topic, 3) == {0: 6, 1: -1001, 2: 42}


def test_commit_to_an_unknown_topic_is_refused_for_that_partition_only(
    broker: BrokerProcess,
) -> None:
    topic, group = topic_name("known"), group_name("mixed")
    create_topic(broker, topic)
    consumer = simple_consumer(broker.bootstrap, group)
    try:
        with pytest.raises(KafkaException) as info:
            consumer.commit(
                offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 9, 3)],
                asynchronous=False,
            )
        assert "UNKNOWN_TOPIC_OR_PART" in str(info.value)
    finally:
        consumer.close()
    assert committed(broker.bootstrap, group, topic, 1) == {0: 3}


def test_committed_offsets_survive_kill_9_and_a_replacement_broker(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'bucket'}"
    args = ["--durability", "object", "--object-store", store]
    topic, group = "durable-offsets", group_name("durable")
    first = BrokerProcess(tmp_path / "a", args=args).start()
    try:
        create_topic(first, topic, partitions=2)
        commit(first.bootstrap, group, [TopicPartition(topic, 0, 11), TopicPartition(topic, 1, 7)])
    finally:
        first.kill()
    with BrokerProcess(tmp_path / "fresh", node_id=9, args=args) as second:
        assert committed(second.bootstrap, group, topic, 2) == {0: 11, 1: 7}


def test_kafka_python_admin_lists_describes_fetches_and_deletes_groups(
    broker: BrokerProcess,
) -> None:
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient

    topic, group = topic_name("admin"), group_name("kp")
    create_topic(broker, topic, partitions=2)
    commit(broker.bootstrap, group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)])
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        listed = {g["group_id"]: g for g in client.list_groups()}
        assert listed[group]["protocol_type"] == ""
        empty = {g["group_id"] for g in client.list_groups(states_filter=["Empty"])}
        assert group in empty
        described = client.describe_groups([group])[group]
        assert (described["group_state"], described["members"], described["error"]) == (
            "Empty",
            [],
            None,
        )
        offsets = client.list_group_offsets(group)[group]
        assert {tp.partition: o.offset for tp, o in offsets.items()} == {0: 3, 1: 4}
        assert all(tp.topic == topic for tp in offsets)
        deleted = client.delete_group_offsets(group, [KTopicPartition(topic, 1)])
        assert {tp.partition: e.__name__ for tp, e in deleted.items()} == {1: "NoError"}
        offsets = client.list_group_offsets(group)[group]
        assert {tp.partition: o.offset for tp, o in offsets.items()} == {0: 3}
        assert client.delete_groups([group]) == {group: "OK"}
        assert client.delete_groups([group]) == {group: "GroupIdNotFoundError"}
        assert group not in {g["group_id"] for g in client.list_groups()}
        after = client.list_group_offsets({group: [KTopicPartition(topic, 0)]})[group]
        assert after[KTopicPartition(topic, 0)].offset == -1
    finally:
        client.close()


def test_confluent_admin_alters_and_lists_group_offsets(broker: BrokerProcess) -> None:
    topic, group = topic_name("alter"), group_name("ck")
    create_topic(broker, topic, partitions=2)
    client = admin(broker)
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 8), TopicPartition(topic, 1, 9)]
    )
    altered = client.alter_consumer_group_offsets([request])[group].result(timeout=20)
    assert [(tp.partition, tp.offset, tp.error) for tp in altered.topic_partitions] == [
        (0, 8, None),
        (1, 9, None),
    ]
    listed = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    result = listed[group].result(timeout=20)
    assert sorted((tp.partition, tp.offset) for tp in result.topic_partitions) == [(0, 8), (1, 9)]


def test_a_group_with_live_members_refuses_simple_commits_and_deletion(
    broker: BrokerProcess,
) -> None:
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient

    topic, group = topic_name("live"), group_name("live")
    create_topic(broker, topic)
    member = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        member.subscribe([topic])
        deadline = time.monotonic() + 15
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(0.2)
        assert member.assignment(), "consumer never got an assignment"
        outsider = simple_consumer(broker.bootstrap, group)
        try:
            with pytest.raises(KafkaException) as info:
                outsider.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
            assert "UNKNOWN_MEMBER_ID" in str(info.value)
        finally:
            outsider.close()
        member.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
        assert client.delete_groups([group]) == {group: "NonEmptyGroupError"}
        deleted = client.delete_group_offsets(group, [KTopicPartition(topic, 0)])
        assert {tp.partition: e.__name__ for tp, e in deleted.items()} == {
            0: "GroupSubscribedToTopicError"
        }
        assert committed(broker.bootstrap, group, topic, 1) == {0: 2}
        assert client.describe_groups([group])[group]["group_state"] == "Stable"
    finally:
        member.close()
        client.close()


def test_lag_from_committed_offsets_and_watermarks_while_the_member_is_live(
    broker: BrokerProcess,
) -> None:
    """The broker's view of lag: the high watermark minus the group's committed offset.

    A subscribed member reads part of each partition and commits what it processed
    (generation-stamped commits); an admin client and a watermark query then see, per
    partition, exactly the records it has not processed yet.
    """
    topic, group = topic_name("lag"), group_name("lag")
    sizes, processed = {0: 10, 1: 7, 2: 4}, {0: 6, 1: 2, 2: 0}
    create_topic(broker, topic, partitions=len(sizes))
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for p, size in sizes.items():
        for i in range(size):
            producer.produce(topic, value=b"%d-%d" % (p, i), partition=p)
    assert producer.flush(30) == 0
    member = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 200,
        }
    )
    client = admin(broker)
    try:
        member.subscribe([topic])
        seen: dict[int, int] = dict.fromkeys(sizes, 0)
        deadline = time.monotonic() + 20
        while seen != sizes:
            assert time.monotonic() < deadline, f"read only {seen} of {sizes}"
            msg = member.poll(0.1)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            seen[msg.partition()] += 1
            if msg.offset() < processed[msg.partition()]:
                member.commit(message=msg, asynchronous=False)
        listed = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
        result = listed[group].result(timeout=20)
        stored = {tp.partition: tp.offset for tp in result.topic_partitions}
        assert stored == {p: n for p, n in processed.items() if n}  # nothing for partition 2
        lag: dict[int, int] = {}
        for p in sizes:
            low, high = member.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assert (low, high) == (0, sizes[p])
            lag[p] = high - stored.get(p, low)
        assert lag == {0: 4, 1: 5, 2: 4}
        assert lag == {p: sizes[p] - processed[p] for p in sizes}
    finally:
        member.close()
