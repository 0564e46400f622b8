"""`--audit-log`: one JSON line per authentication and per changed resource, through a
real broker.

alice authenticates over SASL_SSL and changes things with confluent-kafka's admin
client and a consumer; mallory fails to authenticate. Each line names the principal,
the client's address and id, the API, the resource and the outcome.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from kafka import KafkaAdminClient
from kafka import TopicPartition as KTopicPartition
from kafka.admin import ConfigResource as KConfigResource

from tests.integration.security_setup import Certs, SecureBroker, add_user, make_certs
from tests.integration.test_clients import topic_name

pytestmark = pytest.mark.integration
PASSWORD = "alice-pw"


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SecureBroker, Path]]:
    root = tmp_path_factory.mktemp("audit")
    certs: Certs = make_certs(root / "certs")
    audit = root / "audit.jsonl"
    proc = SecureBroker(root / "data", certs, args=["--audit-log", str(audit)])
    add_user(proc.objects, "alice", PASSWORD)
    with proc:
        yield proc, audit


def lines(audit: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in audit.read_text().splitlines()]


def wait_for_line(audit: Path, **want: Any) -> dict[str, Any]:
    for _ in range(600):
        for line in lines(audit):
            if all(line.get(k) == v for k, v in want.items()):
                return line
        time.sleep(0.1)
    raise AssertionError(f"no audit line with {want}:\n{audit.read_text()}")


def test_authentications_are_audited(audited: tuple[SecureBroker, Path]) -> None:
    broker, audit = audited
    errors: list[KafkaError] = []
    producer = Producer(
        broker.client_config(
            "SASL_SSL", "SCRAM-SHA-512", "mallory", "guess", error_cb=errors.append
        )
    )
    producer.produce("never", b"x")
    line = None
    for _ in range(300):
        producer.poll(0.1)
        if errors:
            line = wait_for_line(audit, event="authentication", principal="User:mallory")
            break
    producer.purge()
    assert line is not None, errors
    assert (line["outcome"], line["error"], line["mechanism"], line["listener"]) == (
        "failure", "SASL_AUTHENTICATION_FAILED", "SCRAM-SHA-512", "SASL_SSL"
    )  # fmt: skip
    assert line["client_address"] == "127.0.0.1" and "guess" not in audit.read_text()
    AdminClient(broker.client_config("SASL_SSL", "PLAIN", "alice", PASSWORD)).list_topics(
        timeout=20
    )
    ok = wait_for_line(audit, event="authentication", principal="User:alice", mechanism="PLAIN")
    assert ok["outcome"] == "success" and PASSWORD not in audit.read_text()


def test_every_mutating_admin_call_is_audited(audited: tuple[SecureBroker, Path]) -> None:
    broker, audit = audited
    config = broker.client_config(
        "SASL_SSL", "SCRAM-SHA-512", "alice", PASSWORD, **{"client.id": "audit-admin"}
    )
    admin = AdminClient(config)
    topic = topic_name("audited")
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    admin.create_partitions([NewPartitions(topic, 2)])[topic].result(30)
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
    group = topic_name("audited-group")
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    consumer.close()
    admin.delete_consumer_groups([group])[group].result(30)
    upsert = UserScramCredentialUpsertion(
        "bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"bob-pw"
    )
    admin.alter_user_scram_credentials([upsert])["bob"].result(30)
    producer = Producer({**config, "transactional.id": "audit-txn"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"paid", partition=0)
    txn_group = topic_name("audited-txn-group")
    metadata = Consumer({**config, "group.id": txn_group}).consumer_group_metadata()
    producer.send_offsets_to_transaction([TopicPartition(topic, 0, 1)], metadata, 30)
    producer.commit_transaction(30)
    admin.delete_records([TopicPartition(topic, 0, 1)])[TopicPartition(topic, 0, 1)].result(30)
    offsets_group = topic_name("audited-offsets")
    consumer = Consumer({**config, "group.id": offsets_group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    consumer.close()
    kafka_admin = KafkaAdminClient(
        bootstrap_servers=broker.address("SASL_SSL"),
        security_protocol="SASL_SSL",
        ssl_cafile=str(broker.certs.ca),
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="alice",
        sasl_plain_password=PASSWORD,
        client_id="audit-admin",
    )
    kafka_admin.delete_group_offsets(offsets_group, [KTopicPartition(topic, 0)])
    whole = KConfigResource("TOPIC", topic, configs={"retention.ms": "7200000"})
    kafka_admin.alter_configs([whole], incremental=False)  # AlterConfigs: the whole set
    kafka_admin.close()
    binding = AclBinding(
        ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:bob", "*",
        AclOperation.READ, AclPermissionType.ALLOW,
    )  # fmt: skip
    for future in admin.create_acls([binding]).values():
        future.result(30)
    matching = AclBindingFilter(
        ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:bob", "*",
        AclOperation.READ, AclPermissionType.ALLOW,
    )  # fmt: skip
    for future in admin.delete_acls([matching]).values():
        future.result(30)
    admin.delete_topics([topic])[topic].result(30)

    expected = [
        ("CreateAcls", "TOPIC", topic),
        ("DeleteAcls", "TOPIC", topic),
        ("TxnOffsetCommit", "GROUP", txn_group),
        ("DeleteRecords", "TOPIC", topic),
        ("AlterConfigs", "TOPIC", topic),
        ("OffsetDelete", "GROUP", offsets_group),
        ("CreateTopics", "TOPIC", topic),
        ("CreatePartitions", "TOPIC", topic),
        ("IncrementalAlterConfigs", "TOPIC", topic),
        ("OffsetCommit", "GROUP", group),
        ("DeleteGroups", "GROUP", group),
        ("AlterUserScramCredentials", "USER", "bob"),
        ("DeleteTopics", "TOPIC", topic),
    ]
    for api, kind, name in expected:
        line = wait_for_line(audit, event="request", api=api, resource=name)
        assert (line["resource_type"], line["principal"], line["outcome"]) == (
            kind, "User:alice", "success"
        ), line  # fmt: skip
        assert line["client_address"] == "127.0.0.1"
        assert line["client_id"] == "audit-admin"
    assert "bob-pw" not in audit.read_text()
