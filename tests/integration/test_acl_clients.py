"""ACLs through real clients: kafka-python's and confluent-kafka's admin ACL calls, and a
producer refused by a DENY, on one broker with `--authorizer acl
--allow-everyone-if-no-acl-found true` (so the admin calls themselves, on a cluster no
ACL names, are allowed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KpResourceType

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic

pytestmark = pytest.mark.integration

ANON = "User:ANONYMOUS"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    args = ["--authorizer", "acl", "--allow-everyone-if-no-acl-found", "true"]
    with BrokerProcess(tmp_path / "data", args=args) as b:
        create_topic(b, "open")
        create_topic(b, "locked")
        yield b


def produce_error(broker: BrokerProcess, topic: str) -> KafkaError | None:
    errors: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 10000})
    producer.produce(topic, b"v", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(30)
    assert len(errors) == 1
    return errors[0]


def test_kafka_python_and_confluent_manage_acls_that_the_broker_enforces(
    broker: BrokerProcess,
) -> None:
    assert produce_error(broker, "locked") is None  # no ACL names it: allowed
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        deny = ACL(
            principal=ANON,
            host="*",
            operation=ACLOperation.WRITE,
            permission_type=ACLPermissionType.DENY,
            resource_pattern=ResourcePattern(
                KpResourceType.TOPIC, "locked", ACLResourcePatternType.LITERAL
            ),
        )
        created = kp.create_acls([deny])
        assert len(created["succeeded"]) == 1 and not created["failed"], created
        err = produce_error(broker, "locked")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert produce_error(broker, "open") is None

        acls, error = kp.describe_acls(
            ACLFilter(
                principal=None,
                host=None,
                operation=ACLOperation.ANY,
                permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(
                    KpResourceType.TOPIC, "locked", ACLResourcePatternType.MATCH
                ),
            )
        )
        assert error.errno == 0
        assert [(a.principal, a.operation, a.permission_type) for a in acls] == [
            (ANON, ACLOperation.WRITE, ACLPermissionType.DENY)
        ]
    finally:
        kp.close()

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    every = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    (listed,) = admin.describe_acls(every).result(timeout=30)
    assert (listed.name, listed.operation, listed.permission_type) == (
        "locked",
        AclOperation.WRITE,
        AclPermissionType.DENY,
    )
    extra = AclBinding(
        ResourceType.TOPIC,
        "lock",
        ResourcePatternType.PREFIXED,
        "User:*",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    for future in admin.create_acls([extra]).values():
        future.result(timeout=30)
    deleted = admin.delete_acls([every])[every].result(timeout=30)
    assert sorted(b.name for b in deleted) == ["lock", "locked"]
    assert admin.describe_acls(every).result(timeout=30) == []
    assert produce_error(broker, "locked") is None  # the DENY is gone
