"""Compaction on a real broker (docs/compaction.md): a compacted topic written by
confluent-kafka keeps the latest value of every key at its offset, tombstones go after
delete.retention.ms, and kafka-python reads the result, also after kill -9."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import topic_name
from tests.integration.test_retention import PASS, create, wait_for
from tests.integration.test_txn_durability import broker_args

pytestmark = pytest.mark.integration
KEYS = 100
VERSIONS = 3

Read = list[tuple[int, bytes | None, bytes | None]]


def read_all(bootstrap: str, topic: str) -> Read:
    """(offset, key, value) of every record from the start to the high watermark."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    try:
        tp = KafkaTopicPartition(topic, 0)
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]
        out: Read = []
        deadline = time.monotonic() + 120
        while consumer.position(tp) < end:
            assert time.monotonic() < deadline, f"read to {consumer.position(tp)} of {end}"
            for records in consumer.poll(timeout_ms=500).values():
                out += [(r.offset, r.key, r.value) for r in records]
        return out
    finally:
        consumer.close()


def latest_per_key(records: Read) -> dict[bytes | None, bytes | None]:
    return {k: v for _, k, v in records}


def test_a_compacted_topic_keeps_the_latest_value_of_every_key(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    args = broker_args(tmp_path, "wal") + PASS
    broker = BrokerProcess(tmp_path / "data", args=args).start()
    brokers.append(broker)
    topic = topic_name("compacted")
    configs = {
        "cleanup.policy": "compact",
        "segment.ms": "1",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "0",
    }
    create(broker, topic, configs)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for version in range(VERSIONS):
        for k in range(KEYS):
            producer.produce(topic, key=f"k{k}".encode(), value=f"v{version}".encode(), partition=0)
        assert producer.flush(60) == 0
    for k in range(0, KEYS, 10):  # every tenth key deleted
        producer.produce(topic, key=f"k{k}".encode(), value=None, partition=0)
    assert producer.flush(60) == 0
    everything = read_all(broker.bootstrap, topic)
    expected = {k: v for k, v in latest_per_key(everything).items() if v is not None}
    assert len(expected) == KEYS - KEYS // 10

    # New data after it, so that what was written is no longer the newest (never cleaned).
    producer.produce(topic, key=b"later", value=b"x", partition=0)
    assert producer.flush(60) == 0
    expected[b"later"] = b"x"

    def compacted() -> bool:
        got = read_all(broker.bootstrap, topic)
        return {k: v for _, k, v in got} == expected and len(got) == len(expected)

    wait_for("the topic compacts to one record per live key", compacted)
    got = read_all(broker.bootstrap, topic)
    offsets = {k: o for o, k, _ in everything}
    assert all(offsets[k] == o for o, k, _ in got if k != b"later")  # offsets unchanged

    broker.kill()
    broker = BrokerProcess(tmp_path / "data", port=broker.port, args=args).start()
    brokers.append(broker)
    assert read_all(broker.bootstrap, topic) == got
