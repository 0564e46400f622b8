"""Kafka's internal topic names are not user topics.

tidelog keeps group coordination under `__consumer_offsets` keys itself (its group
slots), and `__transaction_state` is Kafka's: CreateTopics, Metadata auto-create and
Produce refuse both with INVALID_TOPIC_EXCEPTION (a producer once auto-created
`__consumer_offsets` and was answered NOT_LEADER_OR_FOLLOWER forever), committed group
offsets keep working, and such a topic already in the bucket takes no produce (and a
`__consumer_offsets` one cannot be deleted: its partitions share the group slots' keys).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, produce_request
from tests.integration.test_clients import admin
from tests.integration.topic_requests import (
    create_partitions,
    create_topic,
    metadata,
    one_record,
    partition_counts,
    unique,
    write_topics_as_before_validation,
)
from tidelog.protocol.errors import ErrorCode

pytestmark = pytest.mark.integration

INTERNAL = ["__consumer_offsets", "__transaction_state"]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("internal-topics") / "data") as b:
        yield b
    assert b.proc is not None and b.proc.returncode == 0, b.output()


@pytest.mark.parametrize("validate_only", [False, True], ids=["create", "validate-only"])
@pytest.mark.parametrize("name", INTERNAL)
def test_kafka_internal_topic_names_are_refused_by_create_topics(
    broker: BrokerProcess, name: str, validate_only: bool
) -> None:
    code, message = create_topic(broker.bootstrap, name, 1, validate_only=validate_only)
    assert code == ErrorCode.invalid_topic_exception
    assert message is not None and name in message
    assert name not in partition_counts(broker.bootstrap)


@pytest.mark.parametrize("name", INTERNAL)
def test_metadata_never_auto_creates_kafka_internal_topics(
    broker: BrokerProcess, name: str
) -> None:
    for auto_create in (True, False):
        (topic,) = metadata(broker.bootstrap, [name], auto_create=auto_create).topics
        assert topic.error_code == ErrorCode.invalid_topic_exception
    assert name not in partition_counts(broker.bootstrap)


def test_producing_to_consumer_offsets_fails_at_once_and_group_offsets_keep_working(
    broker: BrokerProcess,
) -> None:
    errors: list[KafkaError] = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 15000})
    producer.produce("__consumer_offsets", b"v", on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(30) == 0
    assert [e.code() for e in errors] == [KafkaError.TOPIC_EXCEPTION]
    # The name stays the group slots': committed offsets still round-trip.
    data = unique("data")
    assert create_topic(broker.bootstrap, data, 1)[0] == ErrorCode.none
    group = unique("group")
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(data, 0, 42)], asynchronous=False)
        (got,) = consumer.committed([TopicPartition(data, 0)], timeout=10)
        assert got.offset == 42
    finally:
        consumer.close()


def test_a_consumer_offsets_topic_already_in_the_bucket_takes_no_produce_nor_delete(
    tmp_path: Path,
) -> None:
    bucket = f"file://{tmp_path / 'bucket'}"
    write_topics_as_before_validation(tmp_path, bucket, {"__consumer_offsets": (16, {})})
    with BrokerProcess(tmp_path / "data", args=["--object-store", bucket]) as b:
        with RawClient(b.bootstrap) as c:
            resp = c.request(produce_request("__consumer_offsets", 3, one_record(b"x")))
        code = resp.responses[0].partition_responses[0].error_code
        assert code == ErrorCode.invalid_topic_exception
        (topic,) = metadata(b.bootstrap, ["__consumer_offsets"]).topics
        assert topic.is_internal
        assert create_partitions(b.bootstrap, [("__consumer_offsets", 20)])[0][0] == (
            ErrorCode.invalid_topic_exception
        )
        client = admin(b)  # alive until its futures complete
        deleted = client.delete_topics(["__consumer_offsets"])["__consumer_offsets"]
        assert deleted.exception(30).args[0].code() == KafkaError.TOPIC_EXCEPTION
        data = unique("data")
        assert create_topic(b.bootstrap, data, 1)[0] == ErrorCode.none
        consumer = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique("g")})
        try:
            consumer.commit(offsets=[TopicPartition(data, 0, 7)], asynchronous=False)
            (got,) = consumer.committed([TopicPartition(data, 0)], timeout=10)
            assert got.offset == 7
        finally:
            consumer.close()
