"""Topic config values are checked as Kafka checks them.

CreateTopics (and `validate_only`) answers INVALID_CONFIG naming the key for a value of
the wrong type, out of range or not among the allowed ones, a null value and an unknown
name; every value Kafka accepts is stored and described back. A bad value a broker
without these checks already wrote into the bucket is ignored (its default applies), so
it can never make produce fail or drop the connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import ConfigResource, NewTopic

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, fetch_request
from tests.integration.test_clients import admin
from tests.integration.test_produce_errors import codes, produce
from tests.integration.topic_requests import (
    create_topic,
    create_topics,
    one_record,
    partition_counts,
    unique,
    write_topics_as_before_validation,
)
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch, decode_records

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("topic-configs") / "data") as b:
        yield b
    assert b.proc is not None and b.proc.returncode == 0, b.output()


BAD_CONFIGS = [
    ("max.message.bytes", "abc"),
    ("max.message.bytes", "-1"),
    ("max.message.bytes", "2147483648"),
    ("max.message.bytes", "1_000"),
    ("retention.ms", "-2"),
    ("retention.ms", "1.5"),
    ("retention.bytes", "lots"),
    ("segment.bytes", "1000"),
    ("segment.ms", "0"),
    ("min.insync.replicas", "0"),
    ("min.cleanable.dirty.ratio", "1.5"),
    ("cleanup.policy", "deleted"),
    ("cleanup.policy", ""),
    ("compression.type", "brotli"),
    ("message.timestamp.type", "createtime"),
    ("preallocate", "yes"),
    ("unclean.leader.election.enable", "1"),
    ("compression.gzip.level", "10"),
    ("leader.replication.throttled.replicas", "0:a"),
    ("max.message.bytes", None),
    ("no.such.config", "1"),
]


@pytest.mark.parametrize("validate_only", [False, True], ids=["create", "validate-only"])
@pytest.mark.parametrize(("key", "value"), BAD_CONFIGS, ids=[f"{k}={v}" for k, v in BAD_CONFIGS])
def test_a_bad_topic_config_value_is_invalid_config_naming_the_key(
    broker: BrokerProcess, key: str, value: str | None, validate_only: bool
) -> None:
    name = unique("cfg")
    ((code, message),) = create_topics(
        broker.bootstrap, [(name, 1, {key: value})], validate_only=validate_only
    )
    assert code == ErrorCode.invalid_config
    assert message is not None and key in message
    assert name not in partition_counts(broker.bootstrap)


def test_min_compaction_lag_above_max_is_invalid_config(broker: BrokerProcess) -> None:
    name = unique("lag")
    configs: dict[str, str | None] = {
        "min.compaction.lag.ms": "5000",
        "max.compaction.lag.ms": "1000",
    }
    ((code, message),) = create_topics(broker.bootstrap, [(name, 1, configs)])
    assert code == ErrorCode.invalid_config
    assert message is not None and "min.compaction.lag.ms" in message


GOOD_CONFIGS = {
    "cleanup.policy": "compact,delete",
    "compression.type": "zstd",
    "message.timestamp.type": "LogAppendTime",
    "retention.ms": "-1",
    "retention.bytes": "-5",
    "max.message.bytes": " 2000 ",
    "segment.bytes": "1048576",
    "segment.ms": "3600000",
    "min.insync.replicas": "2",
    "min.cleanable.dirty.ratio": "0.25",
    "preallocate": "TRUE",
    "unclean.leader.election.enable": "false",
    "compression.zstd.level": "-5",
    "follower.replication.throttled.replicas": "0:1,1:2",
    "leader.replication.throttled.replicas": "*",
    "delete.retention.ms": "0",
    "message.timestamp.after.max.ms": "9223372036854775807",
}


def test_every_value_kafka_accepts_is_stored_and_described(broker: BrokerProcess) -> None:
    name = unique("good")
    client = admin(broker)
    client.create_topics([NewTopic(name, 1, 1, config=GOOD_CONFIGS)])[name].result(30)
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    described = client.describe_configs([resource])[resource].result(30)
    for key, value in GOOD_CONFIGS.items():
        assert described[key].value == value, key
        assert not described[key].is_default, key


# Kafka 4's topic-level configs: DescribeConfigs reports each, with its default.
KAFKA_TOPIC_CONFIGS = {
    "cleanup.policy": "delete",
    "compression.gzip.level": "-1",
    "compression.lz4.level": "9",
    "compression.type": "producer",
    "compression.zstd.level": "3",
    "delete.retention.ms": "86400000",
    "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807",
    "flush.ms": "9223372036854775807",
    "follower.replication.throttled.replicas": "",
    "index.interval.bytes": "4096",
    "leader.replication.throttled.replicas": "",
    "local.retention.bytes": "-2",
    "local.retention.ms": "-2",
    "max.compaction.lag.ms": "9223372036854775807",
    "max.message.bytes": "1048588",
    "message.timestamp.after.max.ms": "3600000",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.type": "CreateTime",
    # Kafka 3.9's, gone in Kafka 4
    "message.downconversion.enable": "true",
    "message.format.version": "3.0-IV1",
    "message.timestamp.difference.max.ms": "9223372036854775807",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "preallocate": "false",
    "remote.log.copy.disable": "false",
    "remote.log.delete.on.disable": "false",
    "remote.storage.enable": "false",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.index.bytes": "10485760",
    "segment.jitter.ms": "0",
    "segment.ms": "604800000",
    "unclean.leader.election.enable": "false",
}


def test_describe_configs_reports_every_kafka_topic_config_with_its_default(
    broker: BrokerProcess,
) -> None:
    name = unique("defaults")
    assert create_topic(broker.bootstrap, name, 1)[0] == ErrorCode.none
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    client = admin(broker)  # alive until its futures complete
    described = client.describe_configs([resource])[resource].result(30)
    assert {k: v.value or "" for k, v in described.items()} == KAFKA_TOPIC_CONFIGS
    assert all(v.is_default for v in described.values())


def test_remote_storage_enable_is_refused_as_by_a_kafka_broker_without_tiered_storage(
    broker: BrokerProcess,
) -> None:
    name = unique("remote")
    ((code, message),) = create_topics(
        broker.bootstrap, [(name, 1, {"remote.storage.enable": "true"})]
    )
    assert code == ErrorCode.invalid_config
    assert message is not None and "remote.storage.enable" in message


def test_a_topic_stored_with_a_bad_config_value_takes_produce_under_the_default(
    tmp_path: Path,
) -> None:
    bucket = f"file://{tmp_path / 'bucket'}"
    write_topics_as_before_validation(
        tmp_path,
        bucket,
        {"legacy": (1, {"max.message.bytes": "abc"}), "plain": (1, {})},
    )
    with BrokerProcess(tmp_path / "data", args=["--object-store", bucket]) as b:
        # One request, both partitions: neither is dropped with the connection.
        answered = codes(
            b.bootstrap,
            produce([("plain", 0, one_record(b"p")), ("legacy", 0, one_record(b"l"))]),
        )
        assert answered == {("plain", 0): ErrorCode.none, ("legacy", 0): ErrorCode.none}
        # The default limit applies, and DescribeConfigs says so.
        big = build_batch([Record(0, 1_700_000_000_000, None, b"x" * 1_100_000)])
        assert codes(b.bootstrap, produce([("legacy", 0, big)])) == {
            ("legacy", 0): ErrorCode.message_too_large
        }
        resource = ConfigResource(ConfigResource.Type.TOPIC, "legacy")
        client = admin(b)  # alive until its futures complete
        described = client.describe_configs([resource])[resource].result(30)
        assert described["max.message.bytes"].value == "1048588"
        assert described["max.message.bytes"].is_default
        assert "Traceback" not in b.output()
        assert "config=max.message.bytes" in b.output()
    with BrokerProcess(tmp_path / "data", args=["--object-store", bucket]) as again:
        for topic, value in (("plain", b"p"), ("legacy", b"l")):
            with RawClient(again.bootstrap) as c:
                resp = c.request(fetch_request(topic, [(0, 0)]))
            records = decode_records(bytes(resp.responses[0].partitions[0].records or b""))
            assert [(r.offset, r.value) for r in records] == [(0, value)]
