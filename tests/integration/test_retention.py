"""Retention by time and by size on a real broker, with confluent-kafka and kafka-python:
the log start moves, consumers reset to it, segment objects are written and deleted
(docs/segments.md). Time is never waited for: old records carry old timestamps."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import admin, topic_name
from tests.integration.test_delete_records import earliest_one, first_read
from tests.integration.test_txn_durability import broker_args

pytestmark = pytest.mark.integration
DEADLINE_S = 120  # generous: a busy machine; the condition ends the wait
HOUR_MS = 3_600_000
PASS = ["--log-retention-check-interval-ms", "100"]


def create(broker: BrokerProcess, topic: str, configs: dict[str, str]) -> None:
    client = admin(broker)
    futures = client.create_topics([NewTopic(topic, 1, 1, config=configs)], operation_timeout=10)
    futures[topic].result(timeout=30)


def produce(bootstrap: str, topic: str, values: list[bytes], timestamp_ms: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for v in values:
        producer.produce(topic, value=v, partition=0, timestamp=timestamp_ms)
        producer.flush(60)  # one batch each
    assert producer.flush(60) == 0


def segment_objects(tmp_path: Path) -> list[Path]:
    root = tmp_path / "bucket" / "segments"
    return sorted(p for p in root.rglob("*.tls")) if root.exists() else []


def wait_for(what: str, condition: object) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def kafka_python_values(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    try:
        tp = KafkaTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)  # below the log start: the reset policy applies
        out: list[bytes] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(out) < count:
            assert time.monotonic() < deadline, f"read only {out}"
            for records in consumer.poll(timeout_ms=1000).values():
                out += [r.value for r in records]
        return out
    finally:
        consumer.close()


def test_retention_ms_deletes_old_records_and_keeps_new_ones(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    args = broker_args(tmp_path, "wal") + PASS
    broker = BrokerProcess(tmp_path / "data", args=args).start()
    brokers.append(broker)
    topic = topic_name("ret-time")
    create(broker, topic, {"retention.ms": "600000", "segment.ms": "100"})
    old = int(time.time() * 1000) - HOUR_MS
    produce(broker.bootstrap, topic, [f"old{i}".encode() for i in range(5)], old)
    wait_for("the old records expire", lambda: earliest_one(broker.bootstrap, topic) == 5)

    produce(broker.bootstrap, topic, [b"new0", b"new1"])
    wait_for("the new records roll into a segment object", lambda: segment_objects(tmp_path))
    assert first_read(broker.bootstrap, topic, 0) == 5
    assert kafka_python_values(broker.bootstrap, topic, 2) == [b"new0", b"new1"]

    broker.kill()  # what the restarted broker reads comes from the segment object
    broker = BrokerProcess(tmp_path / "data", port=broker.port, args=args).start()
    brokers.append(broker)
    assert earliest_one(broker.bootstrap, topic) == 5
    assert kafka_python_values(broker.bootstrap, topic, 2) == [b"new0", b"new1"]


def segment_bases(tmp_path: Path) -> set[int]:
    """The base offsets of the segment objects in the bucket: a name is
    `<base, 20 digits>-<created ms>-<nonce>.tls` (storage/paths.py)."""
    return {int(p.name.split("-")[0]) for p in segment_objects(tmp_path)}


def test_retention_bytes_keeps_the_newest_segment_and_deletes_the_rest(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    args = broker_args(tmp_path, "object") + PASS
    broker = BrokerProcess(tmp_path / "data", args=args).start()
    brokers.append(broker)
    topic = topic_name("ret-size")
    configs = {"retention.bytes": "1", "segment.ms": "1", "file.delete.delay.ms": "0"}
    create(broker, topic, configs)
    for i in range(3):
        produce(broker.bootstrap, topic, [f"v{i}".encode()])
        # Its own segment before the next record comes: a pass that found two records
        # would roll them into one segment, and the older would never be alone.
        wait_for(f"record {i} rolls alone", lambda n=i: n in segment_bases(tmp_path))
        wait_for(
            f"record {i} is the only one left",
            lambda n=i: earliest_one(broker.bootstrap, topic) == n,
        )
    wait_for("one segment object left", lambda: len(segment_objects(tmp_path)) == 1)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name("g")})
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), 30) == (2, 3)
    finally:
        consumer.close()
    assert kafka_python_values(broker.bootstrap, topic, 1) == [b"v2"]


def commit_objects(tmp_path: Path) -> int:
    return sum(1 for _ in (tmp_path / "bucket" / "streams").glob("*/log/*.tlc"))


def commits_written(tmp_path: Path) -> int:
    """Commits the broker's streams hold or held: the highest position + 1 of each."""
    streams = (tmp_path / "bucket" / "streams").glob("*")
    return sum(1 + max(int(p.stem) for p in s.glob("log/*.tlc")) for s in streams)


def test_the_janitor_deletes_what_no_index_names_and_every_record_stays_readable(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    args = broker_args(tmp_path, "object") + PASS + ["--log-segment-delete-delay-ms", "0"]
    broker = BrokerProcess(tmp_path / "data", args=args).start()
    brokers.append(broker)
    topic, doomed = topic_name("janitor"), topic_name("janitor-doomed")
    create(broker, topic, {"segment.ms": "1"})
    create(broker, doomed, {"segment.ms": "1"})
    produce(broker.bootstrap, doomed, [b"gone"])
    wait_for("the doomed topic rolls a segment", lambda: segment_objects(tmp_path))
    doomed_segments = segment_objects(tmp_path)  # the other topic has none yet
    values: list[bytes] = []
    while commits_written(tmp_path) < 600:  # two stream snapshots (every 256) lie behind
        more = [f"v{len(values) + i}".encode() for i in range(100)]
        produce(broker.bootstrap, topic, more)  # object mode: a commit every few records
        values += more
    written = commits_written(tmp_path)
    client = admin(broker)
    client.delete_topics([doomed], operation_timeout=30)[doomed].result(timeout=30)
    wait_for("the janitor deletes commits", lambda: commit_objects(tmp_path) < written - 200)
    wait_for(
        "the deleted topic's segments go", lambda: not any(p.exists() for p in doomed_segments)
    )

    broker.kill()
    broker = BrokerProcess(tmp_path / "data", port=broker.port, args=args).start()
    brokers.append(broker)
    assert kafka_python_values(broker.bootstrap, topic, len(values)) == values
