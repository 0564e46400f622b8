"""Real Kafka clients against the real `tidelog serve` process over TCP.

confluent-kafka (librdkafka), kafka-python and aiokafka each produce (keys, headers,
every compression, idempotent or not, every acks level) and read back by offset;
admin calls create, describe and delete topics; offsets are listed by time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

from tests.integration.broker_process import BrokerProcess

pytestmark = pytest.mark.integration

COMPRESSIONS = ["none", "gzip", "snappy", "lz4", "zstd"]

# librdkafka group settings for fast, deterministic group tests.
FAST_GROUP = {
    "session.timeout.ms": 6000,  # the broker's minimum
    "heartbeat.interval.ms": 200,  # members notice a rebalance within 200 ms
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "enable.partition.eof": False,
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("clients") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def topic_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create_topic(broker: BrokerProcess, name: str, partitions: int = 1, rf: int = 1) -> None:
    client = admin(broker)  # keep it alive until the future completes
    futures = client.create_topics([NewTopic(name, partitions, rf)], operation_timeout=10)
    futures[name].result(timeout=30)


def consume_all(
    broker: BrokerProcess, topic: str, partition: int, count: int, offset: int = 0
) -> list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes]] | None]]:
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.partition.eof": False,
            "group.id": "unused-assign-only",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        out: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes]] | None]] = []
        deadline = time.monotonic() + 30
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            out.append((msg.offset(), msg.key(), msg.value(), msg.headers()))
        return out
    finally:
        consumer.close()


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("idempotent", [True, False])
def test_librdkafka_produces_and_reads_back(
    broker: BrokerProcess, compression: str, idempotent: bool
) -> None:
    topic = topic_name(f"rdk-{compression}")
    create_topic(broker, topic, partitions=3)
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "compression.type": compression,
            "enable.idempotence": idempotent,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    delivered: list[tuple[int, int]] = []

    def on_delivery(err: object, msg: object) -> None:
        assert err is None, err
        delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    for i in range(200):
        producer.produce(
            topic,
            key=f"payment-{i % 7}".encode(),
            value=f"value-{i}".encode() * 3,
            partition=1,
            headers=[("trace", f"t{i}".encode())],
            on_delivery=on_delivery,
        )
    assert producer.flush(30) == 0
    assert sorted(o for _, o in delivered) == list(range(200))
    got = consume_all(broker, topic, 1, 200)
    assert [g[0] for g in got] == list(range(200))
    assert got[17][1] == b"payment-3"
    assert got[17][2] == b"value-17" * 3
    assert got[17][3] == [("trace", b"t17")]


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_librdkafka_every_acks_level_stores_the_records(broker: BrokerProcess, acks: str) -> None:
    topic = topic_name(f"acks{acks}")
    create_topic(broker, topic)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "acks": acks, "enable.idempotence": False}
    )
    for i in range(50):
        producer.produce(topic, value=str(i).encode())
    assert producer.flush(30) == 0
    got = consume_all(broker, topic, 0, 50)
    assert [g[2] for g in got] == [str(i).encode() for i in range(50)]


def test_librdkafka_lists_offsets_by_time(broker: BrokerProcess) -> None:
    topic = topic_name("times")
    create_topic(broker, topic)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    base = 1_700_000_000_000
    for i in range(10):
        producer.produce(topic, value=b"v", timestamp=base + i * 1000)
        producer.flush(10)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused-times"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (low, high) == (0, 10)
        (found,) = consumer.offsets_for_times([TopicPartition(topic, 0, base + 4500)], timeout=10)
        assert found.offset == 5
        (past,) = consumer.offsets_for_times([TopicPartition(topic, 0, base + 99_000)], timeout=10)
        assert past.offset == -1
    finally:
        consumer.close()


def test_admin_creates_describes_grows_and_deletes_topics(broker: BrokerProcess) -> None:
    client = admin(broker)
    name = topic_name("admin")
    # Replication factor 3 is accepted: the object store is the replication.
    client.create_topics(
        [NewTopic(name, 2, 3, config={"retention.ms": "3600000"})], operation_timeout=10
    )[name].result(30)
    dup = client.create_topics([NewTopic(name, 2, 1)])[name]
    with pytest.raises(KafkaException) as exc:
        dup.result(30)
    assert exc.value.args[0].name() == "TOPIC_ALREADY_EXISTS"
    meta = client.list_topics(timeout=10)
    assert len(meta.topics[name].partitions) == 2
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    configs = client.describe_configs([resource])[resource].result(30)
    assert configs["retention.ms"].value == "3600000"
    assert configs["max.message.bytes"].value == "1048588"
    client.create_partitions([NewPartitions(name, 4)])[name].result(30)
    assert len(client.list_topics(timeout=10).topics[name].partitions) == 4
    client.delete_topics([name], operation_timeout=10)[name].result(30)
    assert name not in client.list_topics(timeout=10).topics


def test_invalid_topic_name_is_refused(broker: BrokerProcess) -> None:
    bad = "no spaces allowed"
    client = admin(broker)
    fut = client.create_topics([NewTopic(bad, 1, 1)])[bad]
    with pytest.raises(KafkaException) as exc:
        fut.result(30)
    assert (
        exc.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    )  # Kafka's INVALID_TOPIC_EXCEPTION (17)


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd", None])
def test_kafka_python_produces_and_reads_back(
    broker: BrokerProcess, compression: str | None
) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTopicPartition

    topic = topic_name(f"kp-{compression}")
    create_topic(broker, topic)
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, compression_type=compression, acks="all"
    )
    for i in range(100):
        producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"%d" % i)])
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    try:
        tp = KTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got: list[tuple[int, bytes, bytes, list[tuple[str, bytes]]]] = []
        deadline = time.monotonic() + 30
        while len(got) < 100 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += [(r.offset, r.key, r.value, r.headers) for r in records]
        assert [g[0] for g in got] == list(range(100))
        assert got[42][1:] == (b"k42", b"v42", [("h", b"42")])
        assert consumer.end_offsets([tp])[tp] == 100
        assert consumer.beginning_offsets([tp])[tp] == 0
    finally:
        consumer.close()


def test_kafka_python_admin_round_trip(broker: BrokerProcess) -> None:
    from kafka.admin import ConfigResource as KConfigResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic

    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        name = topic_name("kpadmin")
        client.create_topics([KNewTopic(name, 3, 3)])
        assert name in client.list_topics()
        described = client.describe_configs([KConfigResource(ConfigResourceType.TOPIC, name)])
        assert described
        client.delete_topics([name])
        assert name not in client.list_topics()
    finally:
        client.close()


def test_aiokafka_produces_and_reads_back(broker: BrokerProcess) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as ATopicPartition

    topic = topic_name("aio")
    create_topic(broker, topic, partitions=2)

    async def main() -> list[tuple[int, bytes | None]]:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, enable_idempotence=True, compression_type="gzip"
        )
        await producer.start()
        try:
            for i in range(100):
                await producer.send(topic, value=b"a%d" % i, key=b"k", partition=1)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = ATopicPartition(topic, 1)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            out: list[tuple[int, bytes | None]] = []
            while len(out) < 100:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
                for records in batch.values():
                    out += [(r.offset, r.value) for r in records]
            return out
        finally:
            await consumer.stop()

    got = asyncio.run(main())
    assert [o for o, _ in got] == list(range(100))
    assert got[99][1] == b"a99"


def test_records_survive_a_clean_restart(tmp_path: Path) -> None:
    proc = BrokerProcess(tmp_path / "data")
    topic = topic_name("restart")
    with proc:
        create_topic(proc, topic)
        producer = Producer({"bootstrap.servers": proc.bootstrap})
        for i in range(20):
            producer.produce(topic, value=str(i).encode())
        assert producer.flush(30) == 0
    assert proc.proc is not None and proc.proc.returncode == 0
    with BrokerProcess(tmp_path / "data", port=proc.port) as again:
        got = consume_all(again, topic, 0, 20)
        assert [g[2] for g in got] == [str(i).encode() for i in range(20)]


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_librdkafka_batches_are_stored_compressed_as_sent(
    broker: BrokerProcess, compression: str
) -> None:
    """librdkafka silently falls back to no compression for lz4 unless the broker
    advertises FindCoordinator; batches must arrive (and stay) compressed."""
    from tests.integration.raw_client import fetch_records
    from tidelog.protocol.batch import Compression, iter_batches

    topic = topic_name(f"codec-{compression}")
    create_topic(broker, topic)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": compression})
    for i in range(50):
        producer.produce(topic, value=b"compressible " * 20 + str(i).encode())
    assert producer.flush(30) == 0
    records = fetch_records(broker.bootstrap, topic, 0, 0)
    codecs = {h.compression for _, h in iter_batches(records)}
    assert codecs == {Compression[compression.upper()]}
