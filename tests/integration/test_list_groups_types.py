"""ListGroups v5 (KIP-848's group types) through confluent-kafka's admin client: each
listed group says it is CLASSIC, and a types filter lists the groups of those types.

Before v5 was offered librdkafka could not send a types filter at all, and listed every
group's type as UNKNOWN: its own suite's 0081, run as Kafka 3.8 or later, failed
"Expected the Consumer Group Type to be set by the Broker"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path / "data") as b:
        create_topic(b, "t")
        consumer = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g"})
        try:
            consumer.commit(offsets=[TopicPartition("t", 0, 1)], asynchronous=False)
        finally:
            consumer.close()
        yield b


def listed(broker: BrokerProcess, **kwargs: object) -> dict[str, ConsumerGroupType]:
    client = AdminClient({"bootstrap.servers": broker.bootstrap})  # alive until done
    result = client.list_consumer_groups(request_timeout=20, **kwargs).result(timeout=30)
    assert not result.errors
    return {g.group_id: g.type for g in result.valid}


def test_every_group_is_listed_as_classic(broker: BrokerProcess) -> None:
    assert listed(broker) == {"g": ConsumerGroupType.CLASSIC}


def test_a_types_filter_lists_the_groups_of_those_types(broker: BrokerProcess) -> None:
    assert listed(broker, types={ConsumerGroupType.CLASSIC}) == {"g": ConsumerGroupType.CLASSIC}
    assert listed(broker, types={ConsumerGroupType.CONSUMER}) == {}
