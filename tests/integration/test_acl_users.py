"""ACLs for authenticated principals: SASL users and a client certificate.

One broker with `--authorizer acl --super-users User:admin`. admin (SCRAM over SASL_SSL)
creates topics and ACLs through confluent-kafka's admin client; then alice may write
`pay` but not read it with a group, bob may read it through groups named `bob-*` but not
write it, Metadata shows each only what they may describe, and the mTLS principal
`User:CN=alice,...` gets exactly what its ACL names while an anonymous TLS client gets
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from cryptography import x509

from tests.integration.security_setup import SecureBroker, add_user, make_certs

pytestmark = pytest.mark.integration
PASSWORDS = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw"}


def as_user(broker: SecureBroker, user: str, **extra: Any) -> dict[str, Any]:
    return broker.client_config("SASL_SSL", "SCRAM-SHA-512", user, PASSWORDS[user], **extra)


def allow(
    principal: str,
    rtype: ResourceType,
    name: str,
    op: AclOperation,
    pattern: ResourcePatternType = ResourcePatternType.LITERAL,
) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, "*", op, AclPermissionType.ALLOW)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    root = tmp_path_factory.mktemp("acl-users")
    certs = make_certs(root / "certs")
    proc = SecureBroker(
        root / "data", certs, args=["--authorizer", "acl", "--super-users", "User:admin"]
    )
    for user, password in PASSWORDS.items():
        add_user(proc.objects, user, password)
    subject = x509.load_pem_x509_certificate(certs.client_cert.read_bytes()).subject
    cert_principal = f"User:{subject.rfc4514_string()}"
    with proc:
        admin = AdminClient(as_user(proc, "admin"))
        for topic in ("pay", "secret"):
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        bindings = [
            allow("User:alice", ResourceType.TOPIC, "pay", AclOperation.WRITE),
            allow("User:bob", ResourceType.TOPIC, "pay", AclOperation.READ),
            allow(
                "User:bob",
                ResourceType.GROUP,
                "bob-",
                AclOperation.READ,
                ResourcePatternType.PREFIXED,
            ),
            allow(cert_principal, ResourceType.TOPIC, "pay", AclOperation.WRITE),
        ]
        for future in admin.create_acls(bindings).values():
            future.result(30)
        yield proc


def produce_error(config: dict[str, Any], topic: str) -> KafkaError | None:
    errors: list[KafkaError | None] = []
    producer = Producer({**config, "message.timeout.ms": 20000})
    producer.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    assert len(errors) == 1
    return errors[0]


def consume_error(config: dict[str, Any], group: str) -> KafkaError | None:
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe(["pay"])
        for _ in range(300):
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            error = msg.error()
            if error is None:
                return None
            if error.code() != KafkaError._PARTITION_EOF:
                return error
        raise AssertionError("neither a record nor an error")
    finally:
        consumer.close()


def test_alice_writes_pay_but_reads_nothing(broker: SecureBroker) -> None:
    assert produce_error(as_user(broker, "alice"), "pay") is None
    error = consume_error(as_user(broker, "alice"), "alice-group")
    assert error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_bob_reads_pay_through_his_groups_but_cannot_write(broker: SecureBroker) -> None:
    assert produce_error(as_user(broker, "alice"), "pay") is None  # something to read
    error = produce_error(as_user(broker, "bob"), "pay")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert consume_error(as_user(broker, "bob"), "bob-ledger") is None
    error = consume_error(as_user(broker, "bob"), "ledger")
    assert error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_metadata_shows_each_principal_what_it_may_describe(broker: SecureBroker) -> None:
    def listed(user: str) -> set[str]:
        return set(AdminClient(as_user(broker, user)).list_topics(timeout=20).topics)

    assert {"pay", "secret"} <= listed("admin")
    assert listed("alice") == {"pay"} and listed("bob") == {"pay"}  # WRITE/READ imply DESCRIBE


def test_a_client_certificate_is_the_principal_its_acl_names(broker: SecureBroker) -> None:
    with_cert = broker.client_config(
        "SSL",
        **{
            "ssl.certificate.location": str(broker.certs.client_cert),
            "ssl.key.location": str(broker.certs.client_key),
        },
    )
    assert produce_error(with_cert, "pay") is None
    error = produce_error(with_cert, "secret")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    anonymous = produce_error(broker.client_config("SSL"), "pay")
    assert anonymous is not None and anonymous.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_only_a_super_user_may_create_acls(broker: SecureBroker) -> None:
    admin = AdminClient(as_user(broker, "alice"))
    binding = allow("User:alice", ResourceType.TOPIC, "secret", AclOperation.READ)
    with pytest.raises(KafkaException) as caught:
        for future in admin.create_acls([binding]).values():
            future.result(30)
    assert caught.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
