"""Leader epochs across a partition move, with real consumers (KIP-320).

Two brokers on one bucket; a consumer (confluent-kafka, kafka-python) reads a
partition, its leader stops (SIGTERM: the survivor adopts the partition for a new
tenure), and the consumer carries on at the survivor. Metadata's leader epoch grew,
the survivor's OffsetForLeaderEpoch says the old epoch ended where the consumer stood
(so its position validates: no truncation), and the consumer reads what comes after
exactly once: nothing lost, nothing twice (docs/leader-epochs.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tests.integration.test_clients import create_topic, topic_name
from tidelog.protocol.messages import build, request_module

pytestmark = pytest.mark.integration

DEADLINE_S = 45.0
FIRST, SECOND = 10, 10


def _metadata_response(bootstrap: str, topics: tuple[str, ...]) -> Any:
    m = request_module(3, 12)
    request = build(
        m,
        "MetadataRequest",
        topics=tuple(build(m, "MetadataRequestTopic", name=t, topic_id=None) for t in topics),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    with RawClient(bootstrap) as c:
        return c.request(request)


def _metadata(bootstrap: str, topic: str) -> tuple[int, int]:
    """(leader node, leader epoch) of partition 0, as this broker's Metadata says."""
    (p,) = _metadata_response(bootstrap, (topic,)).topics[0].partitions
    return p.leader_id, p.leader_epoch


def _wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


def _end_of_epoch(bootstrap: str, topic: str, current: int, epoch: int) -> tuple[int, int, int]:
    m = request_module(23, 4)
    part = build(
        m,
        "OffsetForLeaderPartition",
        partition=0,
        current_leader_epoch=current,
        leader_epoch=epoch,
    )
    request = build(
        m,
        "OffsetForLeaderEpochRequest",
        replica_id=-1,
        topics=(build(m, "OffsetForLeaderTopic", topic=topic, partitions=(part,)),),
    )
    with RawClient(bootstrap) as c:
        (p,) = c.request(request).topics[0].partitions
    return p.error_code, p.leader_epoch, p.end_offset


def _produce(bootstrap: str, topic: str, values: list[str]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for v in values:
        producer.produce(topic, value=v.encode(), partition=0)
    assert producer.flush(30) == 0


class _Confluent:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.c = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
        )
        self.c.assign([TopicPartition(topic, 0, 0)])

    def poll(self) -> list[tuple[int, str, int]]:
        msg = self.c.poll(0.2)
        if msg is None or msg.error():
            return []
        return [(msg.offset(), msg.value().decode(), msg.leader_epoch())]

    def close(self) -> None:
        self.c.close()


class _KafkaPython:
    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer
        from kafka import TopicPartition as KTopicPartition

        self.c = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
        tp = KTopicPartition(topic, 0)
        self.c.assign([tp])
        self.c.seek(tp, 0)

    def poll(self) -> list[tuple[int, str, int]]:
        got = self.c.poll(timeout_ms=200)
        return [(r.offset, r.value.decode(), r.leader_epoch) for rs in got.values() for r in rs]

    def close(self) -> None:
        self.c.close()  # its leaked sockets: tests/integration/conftest.py


CLIENTS: dict[str, Callable[[str, str], Any]] = {
    "confluent-kafka": _Confluent,
    "kafka-python": _KafkaPython,
}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[BrokerProcess]]:
    args = ["--object-store", f"file://{tmp_path / 'bucket'}", "--durability", "object"]
    started = [BrokerProcess(tmp_path / f"n{n}", node_id=n, args=args).start() for n in (1, 2)]
    yield started
    for b in started:
        if b.proc is not None and b.proc.poll() is None:
            b.kill()
        print(f"--- node {b.node_id}\n{b.output()[-4000:]}")


def _read_until(consumer: Any, got: list[tuple[int, str, int]], count: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"read {len(got)} of {count} records: {got[-3:]}")
        got.extend(consumer.poll())


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_consumer_carries_on_across_a_partition_move_with_a_larger_epoch(
    cluster: list[BrokerProcess], client: str
) -> None:
    topic = topic_name("epochs")
    boot = ",".join(b.bootstrap for b in cluster)
    # Both brokers know each other first, so the topic is created at its preferred
    # owner and stays there until we move it.
    _wait(
        lambda: all(len(_metadata_response(b.bootstrap, ()).brokers) == 2 for b in cluster),
        "both brokers to see each other",
    )
    create_topic(cluster[0], topic)
    _produce(boot, topic, [f"a{i}" for i in range(FIRST)])
    leader, before = _metadata(cluster[0].bootstrap, topic)
    assert before >= 0
    consumer = CLIENTS[client](boot, topic)
    try:
        got: list[tuple[int, str, int]] = []
        _read_until(consumer, got, FIRST)
        old = next(b for b in cluster if b.node_id == leader)
        survivor = next(b for b in cluster if b.node_id != leader)
        assert old.stop() == 0  # hands its partitions over to the survivor at once
        _wait(
            lambda: _end_of_epoch(survivor.bootstrap, topic, -1, before)[0] == 0,
            "the survivor to lead the partition",
        )
        moved_to, after = _metadata(survivor.bootstrap, topic)
        assert moved_to == survivor.node_id and after > before
        # The old epoch ended where the consumer stands: its position validates.
        assert _end_of_epoch(survivor.bootstrap, topic, after, before) == (0, before, FIRST)
        _produce(survivor.bootstrap, topic, [f"b{i}" for i in range(SECOND)])
        _read_until(consumer, got, FIRST + SECOND)
        # Every record once, in order, each with the epoch of the leader that wrote it.
        assert got == [(i, f"a{i}", before) for i in range(FIRST)] + [
            (FIRST + i, f"b{i}", after) for i in range(SECOND)
        ]
        # Nothing more: no record comes twice.
        assert consumer.poll() == [] and consumer.poll() == []
    finally:
        consumer.close()


def test_records_replayed_from_the_wal_keep_the_epoch_that_acknowledged_them(
    tmp_path: Path,
) -> None:
    """kill -9 with records only in the WAL: the restart adopts at the committed end,
    replays them, and its new epoch starts after them, not at the committed end."""
    topic = topic_name("replayed")
    args = [
        "--durability",
        "wal",
        "--object-store",
        f"file://{tmp_path / 'bucket'}",
        "--flush-interval-ms",
        "3600000",  # nothing reaches the bucket but the topic: the records stay in the WAL
    ]
    first = BrokerProcess(tmp_path / "data", args=args).start()
    try:
        create_topic(first, topic)
        _produce(first.bootstrap, topic, [f"a{i}" for i in range(5)])
        _, before = _metadata(first.bootstrap, topic)
    finally:
        first.kill()
    with BrokerProcess(tmp_path / "data", args=args) as second:
        _wait(
            lambda: _end_of_epoch(second.bootstrap, topic, -1, before)[0] == 0,
            "the restarted broker to lead the partition",
        )
        _, after = _metadata(second.bootstrap, topic)
        assert after > before
        assert _end_of_epoch(second.bootstrap, topic, after, before) == (0, before, 5)
        assert _end_of_epoch(second.bootstrap, topic, after, after) == (0, after, 5)
        consumer = _Confluent(second.bootstrap, topic)
        try:
            got: list[tuple[int, str, int]] = []
            _read_until(consumer, got, 5)
            assert got == [(i, f"a{i}", before) for i in range(5)]
        finally:
            consumer.close()
