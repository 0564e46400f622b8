"""KIP-467 on a real broker: a record without a key sent to a compacted topic is refused
with INVALID_RECORD and per-record errors, and stores nothing; keyed records, and
keyless ones to a topic that is not compacted, are stored (librdkafka's 0011 expects
this). Checked with confluent-kafka, kafka-python and a raw Produce v9."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer
from kafka.errors import InvalidRecordError

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tests.integration.test_produce_errors import produce
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch

pytestmark = pytest.mark.integration
TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("compacted-keys") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def new_topic(broker: BrokerProcess, policy: str) -> str:
    name = f"kip467-{uuid.uuid4().hex[:8]}"
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = NewTopic(name, 1, 1, config={"cleanup.policy": policy})
    client.create_topics([topic], operation_timeout=10)[name].result(30)
    return name


def high_watermark(broker: BrokerProcess, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "kip467-marks"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), 30)[1])
    finally:
        consumer.close()


def confluent_send(broker: BrokerProcess, topic: str, key: bytes | None) -> KafkaError | None:
    errors: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    producer.produce(topic, key=key, value=b"v", on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(60) == 0
    return errors[0]


@pytest.mark.parametrize("policy", ["compact", "compact,delete"])
def test_confluent_keyless_record_to_a_compacted_topic_is_refused(
    broker: BrokerProcess, policy: str
) -> None:
    topic = new_topic(broker, policy)
    error = confluent_send(broker, topic, None)
    assert error is not None and error.code() == KafkaError.INVALID_RECORD
    assert high_watermark(broker, topic) == 0
    assert confluent_send(broker, topic, b"key") is None
    assert high_watermark(broker, topic) == 1


def test_confluent_keyless_record_to_a_delete_topic_is_stored(broker: BrokerProcess) -> None:
    topic = new_topic(broker, "delete")
    assert confluent_send(broker, topic, None) is None
    assert high_watermark(broker, topic) == 1


def test_kafka_python_keyless_record_to_a_compacted_topic_is_refused(
    broker: BrokerProcess,
) -> None:
    topic = new_topic(broker, "compact")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, retries=0)
    try:
        with pytest.raises(InvalidRecordError):
            producer.send(topic, value=b"v").get(timeout=60)
        producer.send(topic, key=b"k", value=b"v").get(timeout=60)
    finally:
        producer.close()
    assert high_watermark(broker, topic) == 1


def test_produce_v9_names_each_keyless_record_and_stores_none(broker: BrokerProcess) -> None:
    topic = new_topic(broker, "compact")
    records = [Record(0, TS, b"k", b"a"), Record(1, TS, None, b"b"), Record(2, TS, None, b"c")]
    with RawClient(broker.bootstrap) as client:
        response = client.request(produce([(topic, 0, build_batch(records))]))
    (part,) = response.responses[0].partition_responses
    assert ErrorCode(part.error_code) == ErrorCode.invalid_record
    assert [e.batch_index for e in part.record_errors] == [1, 2]
    assert all(
        e.batch_index_error_message is not None
        and e.batch_index_error_message.startswith(
            "Compacted topic cannot accept message without key"
        )
        for e in part.record_errors
    )
    assert part.error_message is not None
    assert high_watermark(broker, topic) == 0
