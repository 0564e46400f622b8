"""DeleteRecords with the admin clients of confluent-kafka and kafka-python on a real
broker: the log start moves, a consumer from offset 0 resets to it, and it survives a
kill -9 and restart in both durability modes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaAdminClient
from kafka import TopicPartition as KafkaTopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import admin, create_topic, topic_name
from tests.integration.test_txn_durability import broker_args

pytestmark = pytest.mark.integration
RECORDS = 10
DEADLINE_S = 120  # generous: a busy machine; the condition ends the wait


def produce(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(RECORDS):
        producer.produce(topic, value=f"v{i}".encode(), partition=i % 2)
    assert producer.flush(60) == 0


def earliest(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "dr-watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[0] for p in (0, 1)}
    finally:
        consumer.close()


def earliest_one(bootstrap: str, topic: str, partition: int = 0) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "dr-watermarks"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), 30)[0])
    finally:
        consumer.close()


def first_read(bootstrap: str, topic: str, partition: int) -> int:
    """The first offset a consumer asking for offset 0 gets (auto.offset.reset)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": topic_name("dr-reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert time.monotonic() < deadline, "the consumer never reset to the log start"
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                return int(msg.offset())
    finally:
        consumer.close()


@pytest.mark.parametrize("durability", ["wal", "object"])
def test_delete_records_moves_the_log_start_across_a_kill_9(
    tmp_path: Path, durability: str, brokers: list[BrokerProcess]
) -> None:
    args = broker_args(tmp_path, durability)
    broker = BrokerProcess(tmp_path / "data", args=args).start()
    brokers.append(broker)
    topic = topic_name("dr")
    create_topic(broker, topic, partitions=2)
    produce(broker.bootstrap, topic)  # 5 records in each partition

    client = admin(broker)
    futures = client.delete_records([TopicPartition(topic, 0, 3)], request_timeout=30)
    deleted = futures[TopicPartition(topic, 0, 3)].result(timeout=30)
    assert deleted.low_watermark == 3
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        answer = kp.delete_records({KafkaTopicPartition(topic, 1): 5})
        assert [v["low_watermark"] for v in answer.values()] == [5]
    finally:
        kp.close()
    assert earliest(broker.bootstrap, topic) == {0: 3, 1: 5}
    assert first_read(broker.bootstrap, topic, 0) == 3

    broker.kill()
    broker = BrokerProcess(tmp_path / "data", port=broker.port, args=args).start()
    brokers.append(broker)
    assert earliest(broker.bootstrap, topic) == {0: 3, 1: 5}
    assert first_read(broker.bootstrap, topic, 0) == 3
    produce(broker.bootstrap, topic)
    assert first_read(broker.bootstrap, topic, 1) == 5  # the new records, from the start
