"""kill -9 at any moment loses no acknowledged record and duplicates none.

A librdkafka producer (idempotent, acks=all) writes unique values while the broker is
killed with SIGKILL; a new broker process then serves every acknowledged value
exactly once and in order: restarted on the same data dir (wal mode), or with an
empty data dir and a new node id (object mode, everything comes from the bucket).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic

pytestmark = pytest.mark.integration

PARTITIONS = 3


class AckedLoad:
    """Produces unique values until stopped; remembers which were acknowledged."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
        self.topic = topic
        self.partitions = partitions
        self.acked: dict[int, list[int]] = {p: [] for p in range(partitions)}
        self._stop = threading.Event()
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "message.timeout.ms": 4000,
                "reconnect.backoff.max.ms": 200,
            }
        )
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err: object, msg: object) -> None:
        if err is None:
            self.acked[msg.partition()].append(int(msg.value()))  # type: ignore[attr-defined]

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                self._producer.produce(
                    self.topic,
                    value=str(i).encode(),
                    partition=i % self.partitions,
                    on_delivery=self._on_delivery,
                )
                i += 1
            except BufferError:
                pass
            self._producer.poll(0.0005 if i % 50 else 0.002)
        self._producer.flush(10)

    def start(self) -> AckedLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def total(self) -> int:
        return sum(len(v) for v in self.acked.values())


def read_partition(bootstrap: str, topic: str, partition: int) -> list[int]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "verify", "enable.auto.commit": False}
    )
    try:
        tp = TopicPartition(topic, partition, 0)
        high = _high_watermark(consumer, tp)
        consumer.assign([tp])
        values: list[int] = []
        deadline = time.monotonic() + 60
        last_offset = -1
        while last_offset + 1 < high and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            offset, value = msg.offset(), msg.value()
            assert offset == last_offset + 1 and value is not None, "offsets must be dense"
            last_offset = offset
            values.append(int(value))
        assert last_offset + 1 == high, f"read {last_offset + 1} of {high}"
        return values
    finally:
        consumer.close()


_MOVING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)


def _high_watermark(consumer: Consumer, tp: TopicPartition) -> int:
    """The high watermark, retried while the partition is between leaders (a cluster
    moving it answers NOT_LEADER_OR_FOLLOWER until the new owner has it)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            return int(high)
        except KafkaException as exc:
            moving = exc.args[0].code() in _MOVING
            if not (moving or exc.args[0].retriable()) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def assert_nothing_acked_lost_or_duplicated(load: AckedLoad, bootstrap: str) -> None:
    for p in range(load.partitions):
        stored = read_partition(bootstrap, load.topic, p)
        assert len(stored) == len(set(stored)), f"duplicates in partition {p}"
        assert stored == sorted(stored), f"order broken in partition {p}"
        missing = set(load.acked[p]) - set(stored)
        assert not missing, f"acknowledged records lost in partition {p}: {sorted(missing)[:10]}"


def _kill_under_load(broker: BrokerProcess, topic: str, seconds: float) -> AckedLoad:
    create_topic(broker, topic, partitions=PARTITIONS)
    load = AckedLoad(broker.bootstrap, topic).start()
    deadline = time.monotonic() + 30
    while load.total() < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(seconds)
    broker.kill()
    load.stop()
    assert load.total() >= 2000, "the load never got going"
    return load


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_kill_9_in_wal_mode_then_restart_on_the_same_data_dir(tmp_path: Path, delay: float) -> None:
    first = BrokerProcess(tmp_path / "data").start()
    load = _kill_under_load(first, "crash-wal", delay)
    with BrokerProcess(tmp_path / "data", port=first.port, node_id=1) as second:
        assert_nothing_acked_lost_or_duplicated(load, second.bootstrap)


def test_kill_9_in_wal_mode_then_replace_with_the_wal_handed_over(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'bucket'}"
    first = BrokerProcess(tmp_path / "a", args=["--object-store", store]).start()
    load = _kill_under_load(first, "handover", 0.2)
    # A new node id on a new "machine": the data dir (WAL volume) is moved over.
    (tmp_path / "a").rename(tmp_path / "b")
    with BrokerProcess(tmp_path / "b", node_id=2, args=["--object-store", store]) as second:
        assert_nothing_acked_lost_or_duplicated(load, second.bootstrap)
        assert "wal_batches_replayed=" in second.output()


def test_kill_9_in_object_mode_then_replace_with_an_empty_data_dir(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'bucket'}"
    args = ["--durability", "object", "--object-store", store]
    first = BrokerProcess(tmp_path / "a", args=args).start()
    load = _kill_under_load(first, "crash-object", 0.2)
    with BrokerProcess(tmp_path / "fresh", node_id=7, args=[*args, "--replace", "1"]) as second:
        assert_nothing_acked_lost_or_duplicated(load, second.bootstrap)
