"""AlterConfigs and IncrementalAlterConfigs with the admin clients of confluent-kafka
and kafka-python on real brokers: a change made through one broker is what a second
broker of the same bucket describes and enforces (max.message.bytes on a live topic),
`validate_only` and invalid values change nothing, and a change survives kill -9."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from kafka import KafkaAdminClient
from kafka.admin import AlterConfigOp, ConfigResourceType
from kafka.admin import ConfigResource as KafkaConfigResource

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tests.integration.test_clients import admin, create_topic, topic_name
from tidelog.protocol.messages import build, request_module

pytestmark = pytest.mark.integration
DEADLINE_S = 120  # generous: a busy machine; the condition ends the wait
DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5
DEFAULT_MAX_MESSAGE_BYTES = "1048588"


def wait_until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def described(broker: BrokerProcess, topic: str) -> dict[str, tuple[str, int]]:
    """(value, config_source) of each config, as this very broker answers (no routing)."""
    m = request_module(32, 4)
    res = build(
        m, "DescribeConfigsResource", resource_type=2, resource_name=topic, configuration_keys=None
    )
    request = build(m, "DescribeConfigsRequest", resources=(res,), include_synonyms=True)
    with RawClient(broker.bootstrap) as c:
        (result,) = c.request(request).results
    assert result.error_code == 0, result.error_message
    return {c.name: (c.value, c.config_source) for c in result.configs}


def alter_error(futures: dict[ConfigResource, Any]) -> int | None:
    """The Kafka error code the single resource was answered with, None if it succeeded."""
    (future,) = futures.values()
    try:
        future.result(timeout=30)
    except KafkaException as exc:
        return int(exc.args[0].code())
    return None


def legacy_alter(client: AdminClient, resources: list[ConfigResource], **kw: Any) -> Any:
    """confluent-kafka's AlterConfigs (the API, not the incremental one it now prefers)."""
    with pytest.warns(DeprecationWarning):
        return client.alter_configs(resources, **kw)


def produce_error(bootstrap: str, topic: str, partition: int, size: int) -> int | None:
    """Produce one keyed record of `size` bytes (the test makes the topic compacted on
    the way: KIP-467 refuses keyless ones there); its delivery's error code, if any."""
    errors: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False, "retries": 0})
    producer.produce(
        topic,
        key=b"k",
        value=b"x" * size,
        partition=partition,
        on_delivery=lambda e, _m: errors.append(e),
    )
    assert producer.flush(60) == 0
    (error,) = errors
    return None if error is None else int(error.code())


def refuses(bootstrap: str, topic: str, partition: int, size: int) -> bool:
    return produce_error(bootstrap, topic, partition, size) == int(KafkaError.MSG_SIZE_TOO_LARGE)


def takes(bootstrap: str, topic: str, partition: int, size: int) -> bool:
    return produce_error(bootstrap, topic, partition, size) is None


def test_a_change_through_one_broker_is_described_and_enforced_by_another(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    args = ["--object-store", f"file://{tmp_path / 'bucket'}"]
    one = BrokerProcess(tmp_path / "one", node_id=1, args=args).start()
    brokers.append(one)
    two = BrokerProcess(tmp_path / "two", node_id=2, args=args).start()
    brokers.append(two)
    topic = topic_name("alter")
    create_topic(one, topic, partitions=4)  # led by both brokers, most likely
    for p in range(4):
        assert produce_error(two.bootstrap, topic, p, 5000) is None

    client = admin(one)
    resource = ConfigResource(
        "topic",
        topic,
        incremental_configs=[
            ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
            ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    assert alter_error(client.incremental_alter_configs([resource])) is None

    def two_describes(expected: dict[str, tuple[str, int]]) -> bool:
        configs = described(two, topic)
        return all(configs[k] == v for k, v in expected.items())

    wait_until(
        "the second broker to describe the change",
        lambda: two_describes(
            {
                "max.message.bytes": ("2000", DYNAMIC_TOPIC_CONFIG),
                "cleanup.policy": ("delete,compact", DYNAMIC_TOPIC_CONFIG),
                "retention.ms": ("60000", DYNAMIC_TOPIC_CONFIG),
                "segment.ms": ("604800000", DEFAULT_CONFIG),
            }
        ),
    )
    # Every partition's leader, whichever broker it is, refuses what is now too large.
    for p in range(4):
        wait_until(
            f"partition {p} to refuse a 5000-byte record",
            functools.partial(refuses, two.bootstrap, topic, p, 5000),
        )
        assert produce_error(one.bootstrap, topic, p, 1000) is None

    subtract = ConfigResource(
        "topic",
        topic,
        incremental_configs=[
            ConfigEntry(
                "cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT
            ),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    assert alter_error(admin(two).incremental_alter_configs([subtract])) is None
    wait_until(
        "the first broker to describe the second change",
        lambda: (
            two_describes({"cleanup.policy": ("compact", DYNAMIC_TOPIC_CONFIG)})
            and described(one, topic)["retention.ms"] == ("604800000", DEFAULT_CONFIG)
            and described(one, topic)["cleanup.policy"] == ("compact", DYNAMIC_TOPIC_CONFIG)
        ),
    )

    # AlterConfigs replaces the whole set: max.message.bytes goes back to its default.
    replace = ConfigResource("topic", topic, set_config={"retention.ms": "120000"})
    assert alter_error(legacy_alter(client, [replace])) is None
    wait_until(
        "the second broker to describe the replaced set",
        lambda: two_describes(
            {
                "retention.ms": ("120000", DYNAMIC_TOPIC_CONFIG),
                "max.message.bytes": (DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_CONFIG),
                "cleanup.policy": ("delete", DEFAULT_CONFIG),
            }
        ),
    )
    for p in range(4):
        wait_until(
            f"partition {p} to take a 5000-byte record again",
            functools.partial(takes, one.bootstrap, topic, p, 5000),
        )


def test_validate_only_and_invalid_values_change_nothing(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    brokers.append(broker)
    topic = topic_name("alter-checks")
    create_topic(broker, topic)
    client = admin(broker)
    before = described(broker, topic)

    def incremental(name: str, value: str | None, op: AlterConfigOpType) -> ConfigResource:
        entry = ConfigEntry(name, value, incremental_operation=op)
        return ConfigResource("topic", topic, incremental_configs=[entry])

    dry = incremental("retention.ms", "1000", AlterConfigOpType.SET)
    assert alter_error(client.incremental_alter_configs([dry], validate_only=True)) is None
    legacy_dry = ConfigResource("topic", topic, set_config={"max.message.bytes": "10"})
    assert alter_error(legacy_alter(client, [legacy_dry], validate_only=True)) is None
    invalid = KafkaError.INVALID_CONFIG
    bad = ConfigResource("topic", topic, set_config={"max.message.bytes": "ten"})
    assert alter_error(legacy_alter(client, [bad])) == invalid
    for resource in (
        incremental("retention.ms", "-5", AlterConfigOpType.SET),
        incremental("no.such.config", "1", AlterConfigOpType.SET),
        incremental("retention.ms", "5", AlterConfigOpType.APPEND),
        incremental("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT),
    ):
        assert alter_error(client.incremental_alter_configs([resource])) == invalid
    unknown = ConfigResource("topic", topic_name("nope"), set_config={"retention.ms": "1"})
    assert alter_error(legacy_alter(client, [unknown])) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert described(broker, topic) == before


def test_kafka_python_alter_configs_and_a_restart_after_kill_9(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    brokers.append(broker)
    topic = topic_name("alter-kp")
    create_topic(broker, topic)
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        # AlterConfigs proper (the client fills in the other modified keys first) ...
        legacy = KafkaConfigResource(
            ConfigResourceType.TOPIC, topic, configs={"retention.ms": "30000"}
        )
        assert kp.alter_configs([legacy], incremental=False) == {"topic": {topic: "OK"}}
        # ... then IncrementalAlterConfigs, the client's default against this broker.
        incremental = KafkaConfigResource(
            ConfigResourceType.TOPIC, topic, configs={"segment.ms": (AlterConfigOp.SET, "9")}
        )
        assert kp.alter_configs([incremental]) == {"topic": {topic: "OK"}}
        on_broker = KafkaConfigResource(
            ConfigResourceType.BROKER, "1", configs={"num.partitions": "3"}
        )
        (refused,) = kp.alter_configs([on_broker], raise_on_unknown=False)["broker"].values()
        assert "InvalidRequest" in refused and "configs=num.partitions" in refused
    finally:
        kp.close()
    assert described(broker, topic)["retention.ms"] == ("30000", DYNAMIC_TOPIC_CONFIG)

    broker.kill()
    broker = BrokerProcess(tmp_path / "data", port=broker.port).start()
    brokers.append(broker)
    configs = described(broker, topic)
    assert configs["retention.ms"] == ("30000", DYNAMIC_TOPIC_CONFIG)
    assert configs["segment.ms"] == ("9", DYNAMIC_TOPIC_CONFIG)
