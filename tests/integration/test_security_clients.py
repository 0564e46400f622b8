"""Five real clients over SASL_SSL (SCRAM-SHA-512 and PLAIN), mTLS, and the failures.

One broker with a listener of each kind (tests/integration/security_setup.py) and users
written into its bucket as salted SCRAM credentials. Each client produces records over
SASL_SSL and reads them back over SASL_SSL (kafkajs reads through confluent-kafka, as in
test_kafkajs.py: its consumer needs a group). Then what must not work: a wrong password
and an unknown user (SASL_AUTHENTICATION_FAILED, connection closed), a request before
authentication, an oversized frame before authentication, a plaintext client on a TLS
port and a TLS client on a plaintext port; after each, the broker still serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from cryptography import x509
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest

from tests.integration.raw_client import RawClient
from tests.integration.security_setup import Certs, SecureBroker, add_user, make_certs
from tests.integration.test_clients import topic_name
from tests.integration.test_kafkajs import JS_DIR, node_modules
from tidelog.protocol.codec import encode_request

pytestmark = pytest.mark.integration
__all__ = ["node_modules"]  # the kafkajs install fixture, shared

PASSWORD = "s3cret-pw"
MECHANISMS = ("SCRAM-SHA-512", "PLAIN")
COUNT = 5


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[SecureBroker]:
    proc = SecureBroker(tmp_path_factory.mktemp("secure") / "data", certs)
    add_user(proc.objects, "alice", PASSWORD)
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def values(prefix: str) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(COUNT)]


def confluent_read(broker: SecureBroker, topic: str, mechanism: str) -> list[bytes]:
    consumer = Consumer(
        broker.client_config(
            "SASL_SSL",
            mechanism,
            "alice",
            PASSWORD,
            **{"group.id": "unused", "enable.auto.commit": False},
        )
    )
    got: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        for _ in range(300):
            if len(got) >= COUNT:
                break
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
    finally:
        consumer.close()
    return got


def assert_still_serves(broker: SecureBroker) -> None:
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=20)
    assert [b.port for b in metadata.brokers.values()] == [broker.ports["PLAINTEXT"]]


# -- five clients ----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_over_sasl_ssl(broker: SecureBroker, mechanism: str) -> None:
    topic = topic_name("sec-ck")
    producer = Producer(broker.client_config("SASL_SSL", mechanism, "alice", PASSWORD))
    for value in values("ck"):
        producer.produce(topic, value, partition=0)
    assert producer.flush(30) == 0
    assert confluent_read(broker, topic, mechanism) == values("ck")
    # Metadata names the brokers on the listener the client came in on.
    metadata = AdminClient(
        broker.client_config("SASL_SSL", mechanism, "alice", PASSWORD)
    ).list_topics(timeout=20)
    assert [b.port for b in metadata.brokers.values()] == [broker.ports["SASL_SSL"]]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_over_sasl_ssl(broker: SecureBroker, mechanism: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTopicPartition

    topic = topic_name("sec-kp")
    common: dict[str, Any] = {
        "bootstrap_servers": broker.address("SASL_SSL"),
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(broker.certs.ca),
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
    }
    producer = KafkaProducer(**common)
    for value in values("kp"):
        producer.send(topic, value, partition=0).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(**common, enable_auto_commit=False, consumer_timeout_ms=20_000)
    consumer.assign([KTopicPartition(topic, 0)])
    consumer.seek(KTopicPartition(topic, 0), 0)
    got = []
    for message in consumer:
        got.append(message.value)
        if len(got) == COUNT:
            break
    consumer.close()
    assert got == values("kp")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_aiokafka_over_sasl_ssl(broker: SecureBroker, mechanism: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka import TopicPartition as ATopicPartition
    from aiokafka.helpers import create_ssl_context

    topic = topic_name("sec-aio")

    async def run() -> list[bytes]:
        common: dict[str, Any] = {
            "bootstrap_servers": broker.address("SASL_SSL"),
            "security_protocol": "SASL_SSL",
            "ssl_context": create_ssl_context(cafile=str(broker.certs.ca)),
            "sasl_mechanism": mechanism,
            "sasl_plain_username": "alice",
            "sasl_plain_password": PASSWORD,
        }
        producer = AIOKafkaProducer(**common)
        await producer.start()
        try:
            for value in values("aio"):
                await producer.send_and_wait(topic, value, partition=0)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(**common, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = ATopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            got: list[bytes] = []
            while len(got) < COUNT:
                batch = await asyncio.wait_for(consumer.getmany(tp, timeout_ms=1000), 60)
                got += [m.value for m in batch.get(tp, [])]
            return got
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == values("aio")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafkajs_over_sasl_ssl(node_modules: Path, broker: SecureBroker, mechanism: str) -> None:
    topic = topic_name("sec-kjs")
    out = run_secure_js(node_modules, broker, mechanism, "alice", PASSWORD, topic)
    assert out == {"produced": COUNT, "brokers": [broker.ports["SASL_SSL"]]}
    assert confluent_read(broker, topic, mechanism) == [b"kjs-%d" % i for i in range(COUNT)]


def run_secure_js(
    modules: Path, broker: SecureBroker, mechanism: str, user: str, password: str, topic: str
) -> dict[str, Any]:
    env = {**os.environ, "NODE_PATH": str(modules), "KAFKAJS_NO_PARTITIONER_WARNING": "1"}
    done = subprocess.run(
        [
            "node", str(JS_DIR / "secure.js"), broker.address("SASL_SSL"),
            mechanism.lower(), user, password, str(broker.certs.ca), topic, str(COUNT),
        ],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"stderr:\n{done.stderr}\nbroker:\n{broker.output()[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kcat_over_sasl_ssl(broker: SecureBroker, mechanism: str) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is not on PATH: `make kcat` installs it (make test does)")
    topic = topic_name("sec-kcat")
    options = [
        "-b", broker.address("SASL_SSL"),
        "-X", "security.protocol=SASL_SSL",
        "-X", f"sasl.mechanisms={mechanism}",
        "-X", "sasl.username=alice",
        "-X", f"sasl.password={PASSWORD}",
        "-X", f"ssl.ca.location={broker.certs.ca}",
    ]  # fmt: skip
    lines = "".join(f"kcat-{i}\n" for i in range(COUNT))
    produced = subprocess.run(
        [kcat, *options, "-P", "-t", topic, "-p", "0"],
        input=lines, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(
        [kcat, *options, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", str(COUNT)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.splitlines() == [f"kcat-{i}" for i in range(COUNT)]


def test_confluent_kafka_with_a_client_certificate(broker: SecureBroker) -> None:
    topic = topic_name("sec-mtls")
    config = broker.client_config(
        "SSL",
        **{
            "ssl.certificate.location": str(broker.certs.client_cert),
            "ssl.key.location": str(broker.certs.client_key),
        },
    )
    producer = Producer(config)
    for value in values("mtls"):
        producer.produce(topic, value, partition=0)
    assert producer.flush(30) == 0
    subject = x509.load_pem_x509_certificate(broker.certs.client_cert.read_bytes()).subject
    principal = f"principal=User:{subject.rfc4514_string()}"  # CN=alice,OU=...,O=acme
    assert principal.startswith("principal=User:CN=alice,")
    assert f"listener=SSL mechanism=TLS {principal}\n" in wait_for_log(broker, principal)


def wait_for_log(broker: SecureBroker, text: str) -> str:
    for _ in range(600):
        output = broker.output()
        if text in output:
            return output
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in the broker log\n{broker.output()[-3000:]}")


# -- what must fail, and leave the broker serving -------------------------------------


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong-password"), ("mallory", PASSWORD)])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_bad_credentials_fail_authentication(
    broker: SecureBroker, mechanism: str, user: str, password: str
) -> None:
    errors: list[KafkaError] = []
    producer = Producer(
        broker.client_config("SASL_SSL", mechanism, user, password, error_cb=errors.append)
    )
    producer.produce(topic_name("never"), b"x")
    for _ in range(300):  # until librdkafka reports what the broker said
        producer.poll(0.1)
        if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
            break
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert any("Authentication failed: invalid credentials" in e.str() for e in errors)
    producer.purge()
    assert_still_serves(broker)


def tls_socket(broker: SecureBroker, protocol: str) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(broker.certs.ca))
    raw = socket.create_connection(("127.0.0.1", broker.ports[protocol]), timeout=20)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the broker sends until it closes; a socket timeout (20 s) fails."""
    got = bytearray()
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    return bytes(got)


def test_a_request_before_authentication_closes_the_connection(broker: SecureBroker) -> None:
    with tls_socket(broker, "SASL_SSL") as sock:
        sock.sendall(
            b"".join(
                encode_request(
                    1,
                    MetadataRequest(
                        topics=None,
                        allow_auto_topic_creation=False,
                        include_topic_authorized_operations=False,
                    ),
                    "early",
                )
            )
        )
        assert read_until_closed(sock) == b""  # closed, nothing answered
    assert "request before SASL authentication" in wait_for_log(broker, "before SASL")
    assert_still_serves(broker)


def test_api_versions_is_served_before_authentication(broker: SecureBroker) -> None:
    with RawClient(broker.address("SASL_PLAINTEXT")) as client:
        answer = client.request(
            ApiVersionsRequest(client_software_name="t", client_software_version="1")
        )
    keys = {k.api_key for k in answer.api_keys}
    assert {17, 36} <= keys


def test_a_large_frame_before_authentication_closes_the_connection(broker: SecureBroker) -> None:
    # 1 MiB announced, which --max-request-bytes allows once authenticated (Kafka's
    # sasl.server.max.receive.size is 512 KiB before).
    address = ("127.0.0.1", broker.ports["SASL_PLAINTEXT"])
    with socket.create_connection(address, timeout=20) as sock:
        sock.sendall(struct.pack(">i", 1 << 20) + b"\0" * 16)
        assert read_until_closed(sock) == b""  # had the limit been 100 MiB: a timeout
    assert_still_serves(broker)


def test_a_plaintext_client_on_a_tls_port_is_closed(broker: SecureBroker) -> None:
    with socket.create_connection(("127.0.0.1", broker.ports["SSL"]), timeout=20) as sock:
        request = ApiVersionsRequest(client_software_name="t", client_software_version="1")
        sock.sendall(b"".join(encode_request(1, request, "plain-on-tls")))
        answer = read_until_closed(sock)
    assert answer[:1] in (b"", b"\x15")  # nothing, or a TLS alert record: no Kafka answer
    assert_still_serves(broker)


def test_a_tls_client_on_a_plaintext_port_fails_its_handshake(broker: SecureBroker) -> None:
    with (
        pytest.raises((ssl.SSLError, ConnectionError, TimeoutError)),
        tls_socket(broker, "PLAINTEXT"),
    ):
        pass
    assert_still_serves(broker)


def test_every_corpus_request_before_authentication_is_refused_unanswered(
    broker: SecureBroker,
) -> None:
    # Every request frame real clients send (tests/fuzz/corpus.py), each on a fresh
    # unauthenticated SASL connection: all but the exchange close without an answer.
    from tests.fuzz.corpus import load_corpus

    answered: list[str] = []
    for frame in load_corpus():
        if frame.api_key in (17, 18, 36):
            continue
        address = ("127.0.0.1", broker.ports["SASL_PLAINTEXT"])
        with socket.create_connection(address, timeout=20) as sock:
            sock.sendall(struct.pack(">i", len(frame.payload)) + frame.payload)
            if read_until_closed(sock):
                answered.append(frame.name)
    assert answered == []
    assert_still_serves(broker)
