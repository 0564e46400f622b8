"""Real consumer groups (subscribe) against the real `tidelog serve` process.

confluent-kafka (librdkafka), kafka-python and aiokafka join groups through JoinGroup,
SyncGroup, Heartbeat and LeaveGroup: every partition goes to exactly one member, every
record is consumed once per generation, and a member that leaves hands its partitions
to the others. Offsets are not committed here (enable.auto.commit off, reset to
earliest), so each generation reads every partition from the start.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from tests.integration.broker_process import BrokerProcess
from tests.integration.group_member import GroupMember, poll_until
from tests.integration.test_clients import create_topic, topic_name

pytestmark = pytest.mark.integration

PARTITIONS = 6
PER_PARTITION = 10
DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("groups") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def produce(broker: BrokerProcess, topic: str, tag: str) -> set[tuple[int, bytes]]:
    """PER_PARTITION records into every partition; returns (partition, value) pairs."""
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    sent = set()
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            value = f"{tag}-{p}-{i}".encode()
            producer.produce(topic, value=value, partition=p)
            sent.add((p, value))
    assert producer.flush(30) == 0
    return sent


def partitioned(members: list[GroupMember]) -> bool:
    """Every partition is assigned to exactly one member, and every member has some."""
    owned = [p for m in members for p in m.assigned]
    return all(m.assigned for m in members) and sorted(owned) == list(range(PARTITIONS))


def consumed(members: list[GroupMember], expected: set[tuple[int, bytes]]) -> bool:
    return {(p, v) for m in members for p, _, v in m.records} >= expected


def assert_exactly_once(members: list[GroupMember], expected: set[tuple[int, bytes]]) -> None:
    got = [(p, v) for m in members for p, _, v in m.records]
    assert sorted(got) == sorted(expected), "a record was consumed twice or not at all"
    for m in members:
        assert {p for p, _, _ in m.records} <= m.assigned, f"{m.name} read a foreign partition"


def test_librdkafka_group_splits_partitions_and_survives_a_leave(broker: BrokerProcess) -> None:
    topic = topic_name("group")
    create_topic(broker, topic, partitions=PARTITIONS)
    group = f"g-{uuid.uuid4().hex[:8]}"
    members = [GroupMember(broker.bootstrap, group, topic, f"member-{i}") for i in range(3)]
    try:
        poll_until(members, lambda: partitioned(members), "three members to share six partitions")
        assert sorted(len(m.assigned) for m in members) == [2, 2, 2]
        first = produce(broker, topic, "first")
        poll_until(members, lambda: consumed(members, first), "the first batch")
        assert_exactly_once(members, first)

        leaver, stayers = members[0], members[1:]
        gone = set(leaver.assigned)
        leaver.consumer.close()  # LeaveGroup: the others rebalance at once
        members = stayers
        poll_until(stayers, lambda: partitioned(stayers), "two members to take over")
        assert gone <= {p for m in stayers for p in m.assigned}
        second = produce(broker, topic, "second")
        everything = first | second  # no commits: the new generation re-reads from 0
        poll_until(stayers, lambda: consumed(stayers, everything), "both batches")
        assert_exactly_once(stayers, everything)
    finally:
        for m in members:
            m.consumer.close()
    assert "handler failed" not in broker.output()


def test_kafka_python_group_consumer_consumes(broker: BrokerProcess) -> None:
    from kafka import KafkaConsumer

    topic = topic_name("kp-group")
    create_topic(broker, topic, partitions=PARTITIONS)
    expected = produce(broker, topic, "kp")
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=f"kp-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=200,
    )
    try:
        got: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < len(expected) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got += [(r.partition, r.value) for r in records]
        assert sorted(got) == sorted(expected)
        assert {tp.partition for tp in consumer.assignment()} == set(range(PARTITIONS))
    finally:
        consumer.close()


def test_aiokafka_group_consumer_consumes(broker: BrokerProcess) -> None:
    from aiokafka import AIOKafkaConsumer

    topic = topic_name("aio-group")
    create_topic(broker, topic, partitions=PARTITIONS)
    expected = produce(broker, topic, "aio")

    async def main() -> tuple[list[tuple[int, bytes]], set[int]]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=f"aio-{uuid.uuid4().hex[:8]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=200,
        )
        await consumer.start()
        try:
            got: list[tuple[int, bytes]] = []
            deadline = time.monotonic() + DEADLINE_S
            while len(got) < len(expected) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    got += [(r.partition, r.value) for r in records if r.value is not None]
            return got, {tp.partition for tp in consumer.assignment()}
        finally:
            await consumer.stop()

    got, assigned = asyncio.run(main())
    assert sorted(got) == sorted(expected)
    assert assigned == set(range(PARTITIONS))
