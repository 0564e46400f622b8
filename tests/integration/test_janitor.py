"""The janitor on a two-broker cluster: a broker killed with kill -9 leaves a stream
whose data the survivor adopted; once the survivor's segment objects hold all of it,
the dead stream is deleted from the bucket and every record stays readable, also
after the survivor restarts (docs/segments.md, "The janitor")."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import admin, topic_name
from tests.integration.test_retention import PASS, wait_for

pytestmark = pytest.mark.integration
PARTITIONS = 16  # rendezvous hashing: both brokers lead some (all on one: 2 in 65536)
RECORDS = 200


def led_by(boot: str, topic: str) -> set[int]:
    """The nodes that lead the topic's partitions, as Metadata says now."""
    client = AdminClient({"bootstrap.servers": boot})
    try:
        md = client.list_topics(topic, timeout=10)
    except KafkaException:
        return set()  # asked again: the cluster is moving
    return {p.leader for p in md.topics[topic].partitions.values()}


def streams(bucket: Path) -> set[str]:
    root = bucket / "streams"
    return {p.name for p in root.iterdir() if any(p.rglob("*.*"))} if root.exists() else set()


def read_all(bootstrap: str, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    try:
        consumer.assign([KafkaTopicPartition(topic, p) for p in range(PARTITIONS)])
        out: list[bytes] = []

        def more() -> bool:
            out.extend(r.value for rs in consumer.poll(timeout_ms=500).values() for r in rs)
            return len(out) >= RECORDS

        wait_for(f"{RECORDS} records", more)
        return out
    finally:
        consumer.close()


def test_a_dead_brokers_stream_is_collected_and_no_record_is_lost(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    bucket = tmp_path / "bucket"
    args = [
        "--object-store",
        f"file://{bucket}",
        "--durability",
        "object",
        "--session-timeout-ms",
        "3000",
        "--log-segment-delete-delay-ms",
        "0",
        *PASS,
    ]
    one = BrokerProcess(tmp_path / "n1", node_id=1, args=args).start()
    brokers.append(one)
    two = BrokerProcess(tmp_path / "n2", node_id=2, args=args).start()
    brokers.append(two)
    boot = f"{one.bootstrap},{two.bootstrap}"
    topic = topic_name("janitor2")
    client = admin(one)  # alive until the future completes
    topics = client.create_topics(
        [NewTopic(topic, PARTITIONS, 1, config={"segment.ms": "1"})], operation_timeout=10
    )
    topics[topic].result(timeout=30)
    wait_for("both brokers lead", lambda: led_by(boot, topic) == {1, 2})
    producer = Producer({"bootstrap.servers": boot, "enable.idempotence": True})
    values = [f"v{i}".encode() for i in range(RECORDS)]
    for i, v in enumerate(values):
        producer.produce(topic, value=v, partition=i % PARTITIONS)
    assert producer.flush(60) == 0
    before = streams(bucket)
    assert len(before) == 2

    two.kill()  # its partitions' data is in its stream: node 1 adopts them
    wait_for(
        "node 1 leads every partition",
        lambda: led_by(one.bootstrap, topic) == {1},
    )
    dead = before - streams_of_node(bucket, 1)
    assert len(dead) == 1  # it existed (before); it may be collected already
    wait_for("the dead stream is collected", lambda: not (streams(bucket) & dead))
    assert sorted(read_all(one.bootstrap, topic)) == sorted(values)

    one.stop()
    one = BrokerProcess(tmp_path / "n1", node_id=1, port=one.port, args=args).start()
    brokers.append(one)
    assert sorted(read_all(one.bootstrap, topic)) == sorted(values)


def streams_of_node(bucket: Path, node: int) -> set[str]:
    return {s for s in streams(bucket) if s.endswith(f"-n{node}")}
