"""ListOffsets v8-9 through kafka-python's admin client on a real broker: earliest-local
(-4) and latest-tiered (-5) are answered as Kafka answers them without tiered storage
(docs/protocol.md, "ListOffsets v8-9")."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer
from kafka import KafkaAdminClient
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import OffsetSpec

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic, topic_name

pytestmark = pytest.mark.integration


def test_earliest_local_is_the_log_start_and_latest_tiered_is_unknown(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    brokers.append(broker)
    topic = topic_name("tiers")
    create_topic(broker, topic, partitions=1)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(5):
        producer.produce(topic, value=b"v%d" % i, partition=0)
    assert producer.flush(60) == 0
    tp = KafkaTopicPartition(topic, 0)
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        kp.delete_records({tp: 2})
        # kafka-python sends v8 for EARLIEST_LOCAL and v9 for LATEST_TIERED (its
        # min_version_for_timestamp); a broker without them refuses the request.
        answers = {
            spec: kp.list_partition_offsets({tp: spec})[tp]
            for spec in (
                OffsetSpec.EARLIEST,
                OffsetSpec.EARLIEST_LOCAL,
                OffsetSpec.LATEST,
                OffsetSpec.LATEST_TIERED,
            )
        }
    finally:
        kp.close()
    assert {spec: a.offset for spec, a in answers.items()} == {
        OffsetSpec.EARLIEST: 2,
        OffsetSpec.EARLIEST_LOCAL: 2,  # one tier: local is everything
        OffsetSpec.LATEST: 5,
        OffsetSpec.LATEST_TIERED: -1,  # nothing tiered
    }
    assert answers[OffsetSpec.LATEST_TIERED].leader_epoch is None  # -1 on the wire
    assert answers[OffsetSpec.EARLIEST_LOCAL].leader_epoch is not None
