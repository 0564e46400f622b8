"""Brokers reach each other on a secured inter-broker listener.

Two brokers on one bucket whose inter-broker listener is SASL_SSL: transaction markers
and verification go broker to broker (broker/peer_client.py), over TLS, logged in as
`User:tidelog-broker` with a password derived from the secret the first broker put in
the security document. A transaction spanning partitions led by both brokers commits
and reads back under read_committed, and each broker's log shows the other logging in;
with `--authorizer acl` too, where only the brokers' own principal (a super user) may
send markers, the clients having every ACL they need but CLUSTER_ACTION.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tests.integration.security_setup import SecureBroker, add_user, make_certs
from tests.integration.test_cluster import wait_until
from tests.integration.test_txn_durability import find_coordinator

pytestmark = pytest.mark.integration
PARTITIONS = 4
TOPIC, TXN_ID = "ledger-secure", "secure-txn"
ADMIN_PASSWORD = "admin-pw"


@pytest.fixture(params=["off", "acl"])
def two_brokers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[list[SecureBroker]]:
    certs = make_certs(tmp_path / "certs")
    args = [
        "--object-store", f"file://{tmp_path / 'bucket'}",
        "--inter-broker-listener-name", "SASL_SSL",
        "--authorizer", request.param, "--super-users", "User:admin",
    ]  # fmt: skip
    add_user(tmp_path / "bucket", "admin", ADMIN_PASSWORD)
    brokers = [SecureBroker(tmp_path / f"node{n}", certs, args=args, node_id=n) for n in (1, 2)]
    for broker in brokers:
        broker.start()
    if request.param == "acl":
        # The clients here are anonymous (PLAINTEXT): all they need, but not
        # CLUSTER_ACTION, which the brokers' markers to each other need.
        admin = AdminClient(
            brokers[0].client_config("SASL_SSL", "SCRAM-SHA-512", "admin", ADMIN_PASSWORD)
        )
        grants = [(ResourceType.TOPIC, TOPIC), (ResourceType.TRANSACTIONAL_ID, TXN_ID)]
        bindings = [
            AclBinding(rtype, name, ResourcePatternType.LITERAL, "User:ANONYMOUS", "*",
                       AclOperation.ALL, AclPermissionType.ALLOW)
            for rtype, name in grants
        ]  # fmt: skip
        for future in admin.create_acls(bindings).values():
            future.result(30)
        for broker in brokers:  # each has read the ACLs (it polls the bucket)
            find_coordinator(broker.bootstrap, TXN_ID, key_type=1)
    yield brokers
    for broker in brokers:
        broker.kill()
        print(f"--- node {broker.node_id}\n{broker.output()[-6000:]}")


def leaders(broker: SecureBroker, topic: str) -> set[int]:
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(topic, timeout=10)
    return {p.leader for p in metadata.topics[topic].partitions.values()}


def test_a_transaction_across_two_brokers_commits_over_sasl_ssl(
    two_brokers: list[SecureBroker],
) -> None:
    first, second = two_brokers
    boot = f"{first.bootstrap},{second.bootstrap}"
    topic = TOPIC
    admin = AdminClient(first.client_config("SASL_SSL", "SCRAM-SHA-512", "admin", ADMIN_PASSWORD))
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    wait_until("partitions led by both brokers", lambda: leaders(first, topic) == {1, 2}, 60)
    secret = json.loads((first.data_dir.parent / "bucket" / "security" / "state.json").read_text())
    assert isinstance(secret.get("broker_secret"), str)
    producer = Producer({"bootstrap.servers": boot, "transactional.id": TXN_ID})
    producer.init_transactions(30)
    producer.begin_transaction()
    for p in range(PARTITIONS):
        producer.produce(topic, b"v%d" % p, partition=p)
    producer.commit_transaction(60)
    consumer = Consumer(
        {
            "bootstrap.servers": boot,
            "group.id": "unused",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got: set[bytes] = set()
    for _ in range(600):
        msg = consumer.poll(0.1)
        if msg is not None and msg.error() is None:
            got.add(msg.value())
        if len(got) == PARTITIONS:
            break
    consumer.close()
    assert got == {b"v%d" % p for p in range(PARTITIONS)}
    logins = [
        b.output().count("listener=SASL_SSL mechanism=SCRAM-SHA-512 principal=User:tidelog-broker")
        for b in two_brokers
    ]
    assert sum(logins) >= 1, logins
