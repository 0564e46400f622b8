"""Authorized operations (KIP-430) through confluent-kafka's admin client: DescribeTopics
(Metadata v8+ include_topic_authorized_operations), DescribeCluster and
DescribeConsumerGroups (DescribeGroups v3+) answer the principal's operations when asked.

The broker used to answer -2**31 ("not asked") even when asked, so librdkafka saw no
operations at all: its own test 0081 failed "Expected 8 authorized operations, got 0"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kio.index import load_payload_module
from kio.static.constants import EntityType

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tests.integration.test_clients import create_topic
from tidelog.protocol.messages import build

pytestmark = pytest.mark.integration

Op = AclOperation
TOPIC_OPS = {
    Op.READ,
    Op.WRITE,
    Op.CREATE,
    Op.DESCRIBE,
    Op.DELETE,
    Op.ALTER,
    Op.DESCRIBE_CONFIGS,
    Op.ALTER_CONFIGS,
}
CLUSTER_OPS = {
    Op.CREATE,
    Op.CLUSTER_ACTION,
    Op.DESCRIBE_CONFIGS,
    Op.ALTER_CONFIGS,
    Op.IDEMPOTENT_WRITE,
    Op.ALTER,
    Op.DESCRIBE,
}
GROUP_OPS = {Op.READ, Op.DESCRIBE, Op.DELETE}


def admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def topic_ops(broker: BrokerProcess, topic: str, *, asked: bool = True) -> set[AclOperation] | None:
    client = admin(broker)  # alive until the future completes
    futures = client.describe_topics(
        TopicCollection([topic]), include_authorized_operations=asked, request_timeout=20
    )
    ops = futures[topic].result(timeout=30).authorized_operations
    return None if ops is None else set(ops)


def commit_offset(broker: BrokerProcess, group: str, topic: str) -> None:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    finally:
        consumer.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path / "data") as b:
        create_topic(b, "t")
        yield b


def test_without_an_authorizer_every_operation_is_authorized(broker: BrokerProcess) -> None:
    assert topic_ops(broker, "t") == TOPIC_OPS
    assert not topic_ops(broker, "t", asked=False)  # not asked: none reported

    client = admin(broker)  # alive until the futures complete
    cluster = client.describe_cluster(include_authorized_operations=True)
    assert set(cluster.result(timeout=30).authorized_operations) == CLUSTER_OPS

    commit_offset(broker, "g", "t")
    groups = client.describe_consumer_groups(["g"], include_authorized_operations=True)
    assert set(groups["g"].result(timeout=30).authorized_operations) == GROUP_OPS


def raw_metadata_ops(broker: BrokerProcess, *topics: str) -> dict[str, tuple[int, int]]:
    """Metadata v12 with include_topic_authorized_operations: name -> (error, bit field)."""
    m = load_payload_module(3, 12, EntityType.request)
    request = build(
        m,
        "MetadataRequest",
        topics=tuple(build(m, "MetadataRequestTopic", name=t, topic_id=None) for t in topics),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=True,
    )
    with RawClient(broker.bootstrap) as c:
        answer = c.request(request)
    return {t.name: (t.error_code, t.topic_authorized_operations) for t in answer.topics}


def bits(ops: set[AclOperation]) -> int:
    return sum(1 << op.value for op in ops)


def test_an_unknown_topic_carries_its_operations_a_denied_one_none(tmp_path: Path) -> None:
    """As Kafka: every topic the principal may describe gets its bit field, an unknown one
    included; one answered TOPIC_AUTHORIZATION_FAILED gets -2**31."""
    args = ["--authorizer", "acl", "--allow-everyone-if-no-acl-found", "true"]
    with BrokerProcess(tmp_path / "data", args=args) as b:
        create_topic(b, "hidden")
        binding = AclBinding(
            ResourceType.TOPIC,
            "hidden",
            ResourcePatternType.LITERAL,
            "User:ANONYMOUS",
            "*",
            AclOperation.DESCRIBE,
            AclPermissionType.DENY,
        )
        client = admin(b)
        for f in client.create_acls([binding]).values():
            f.result(timeout=30)
        assert raw_metadata_ops(b, "nosuch", "hidden") == {
            "nosuch": (3, bits(TOPIC_OPS)),  # UNKNOWN_TOPIC_OR_PARTITION
            "hidden": (29, -(2**31)),  # TOPIC_AUTHORIZATION_FAILED
        }


def test_with_acls_only_what_the_principal_may_do(tmp_path: Path) -> None:
    args = ["--authorizer", "acl", "--allow-everyone-if-no-acl-found", "true"]
    with BrokerProcess(tmp_path / "data", args=args) as b:
        create_topic(b, "open")
        create_topic(b, "readonly")
        binding = AclBinding(
            ResourceType.TOPIC,
            "readonly",
            ResourcePatternType.LITERAL,
            "User:ANONYMOUS",
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        )
        client = admin(b)
        for f in client.create_acls([binding]).values():
            f.result(timeout=30)
        # A topic no ACL names: everything (allow-everyone-if-no-acl-found).
        assert topic_ops(b, "open") == TOPIC_OPS
        # READ only, and the DESCRIBE that READ implies (Kafka's implication rules).
        assert topic_ops(b, "readonly") == {Op.READ, Op.DESCRIBE}
