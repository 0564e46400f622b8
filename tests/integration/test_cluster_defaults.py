"""The cluster-wide defaults of topic configs (Kafka's `kafka-configs.sh --entity-type
brokers --entity-default`) on real brokers of one bucket: set through one broker, a
second broker describes them (confluent-kafka and kafka-python) for a topic without an
override, enforces the retention they imply on the partitions it leads, and a
restarted broker still has them; `tidelog inspect` predicts the next pass with them.

No client the tests use can name the default entity (`ConfigResource(BROKER, "")`):
confluent-kafka refuses it (`Invalid ConfigResource(4,)`), kafka-python, aiokafka,
kafkajs and @platformatic/kafka need a broker id. So the change itself is sent as
Kafka's Java AdminClient sends it, over TCP with `RawClient`; everything it does is
checked with the real clients (docs/topics.md, "Cluster-wide defaults")."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import ConfigResource, ConfigSource, NewTopic, ResourceType
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KafkaConfigResource
from kafka.admin import ConfigResourceType

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tests.integration.test_alter_configs import described
from tests.integration.test_clients import admin, topic_name
from tests.integration.test_delete_records import earliest_one
from tests.integration.test_inspect_cli import inspect_json
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.messages import build, request_module

pytestmark = pytest.mark.integration
DEADLINE_S = 120  # generous: a busy machine; the condition ends the wait
HOUR_MS = 3_600_000
BROKER, SET = 4, 0
DYNAMIC_TOPIC_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG = 1, 3
CLUSTER_DEFAULTS = {"log.retention.ms": "600000", "log.roll.ms": "100"}


def wait_until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def alter_cluster_default(
    broker: BrokerProcess, name: str, configs: dict[str, str]
) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v1 SET on the BROKER resource `name`, as Kafka's
    AdminClient sends it; the resource's (error code, message)."""
    m = request_module(44, 1)
    entries = tuple(
        build(m, "AlterableConfig", name=k, config_operation=SET, value=v)
        for k, v in configs.items()
    )
    resource = build(
        m, "AlterConfigsResource", resource_type=BROKER, resource_name=name, configs=entries
    )
    request = build(m, "IncrementalAlterConfigsRequest", resources=(resource,), validate_only=False)
    with RawClient(broker.bootstrap) as c:
        (answer,) = c.request(request).responses
    return int(answer.error_code), answer.error_message


def confluent_configs(broker: BrokerProcess, kind: ResourceType, name: str) -> dict[str, Any]:
    client = admin(broker)
    (future,) = client.describe_configs([ConfigResource(kind, name)]).values()
    try:
        return dict(future.result(timeout=30))
    except KafkaException:
        return {}


def kafka_python_configs(broker: BrokerProcess, kind: ConfigResourceType, name: str) -> Any:
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        result = kp.describe_configs([KafkaConfigResource(kind, name)], config_filter="all")
        return result[kind.name.lower()][name]
    finally:
        kp.close()


def produce_old(bootstrap: str, topic: str, count: int) -> None:
    """`count` records an hour old, one batch each, to partition 0."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    old = int(time.time() * 1000) - HOUR_MS
    for i in range(count):
        producer.produce(topic, value=b"old%d" % i, partition=0, timestamp=old)
        producer.flush(60)
    assert producer.flush(60) == 0


def test_a_cluster_default_set_through_one_broker_is_described_and_enforced_by_another(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    args = [
        "--object-store",
        f"file://{tmp_path / 'bucket'}",
        "--log-retention-check-interval-ms",
        "100",
    ]
    one = BrokerProcess(tmp_path / "one", node_id=1, args=args).start()
    brokers.append(one)
    two = BrokerProcess(tmp_path / "two", node_id=2, args=args).start()
    brokers.append(two)
    plain, own = topic_name("defaulted"), topic_name("overridden")
    client = admin(one)  # alive until the futures complete
    futures = client.create_topics(
        [NewTopic(plain, 1, 1), NewTopic(own, 1, 1, config={"retention.ms": "604800000"})],
        operation_timeout=10,
    )
    for future in futures.values():
        future.result(timeout=30)

    # A per-broker resource and a config that is not dynamic are refused; nothing changes.
    code, message = alter_cluster_default(one, "1", {"log.retention.ms": "1"})
    assert code == ErrorCode.invalid_request and "configs=log.retention.ms" in (message or "")
    code, message = alter_cluster_default(one, "", {"num.partitions": "9"})
    assert code == ErrorCode.invalid_request and "configs=num.partitions" in (message or "")
    code, message = alter_cluster_default(one, "", {"log.retention.ms": "soon"})
    assert code == ErrorCode.invalid_request and "config=log.retention.ms" in (message or "")
    assert described(two, plain)["retention.ms"] == ("604800000", 5)

    assert alter_cluster_default(one, "", CLUSTER_DEFAULTS) == (ErrorCode.none, None)

    # The second broker describes it, with confluent-kafka, for itself and for the topic
    # without an override (source and synonyms as Kafka's); it folds within a tick.
    def two_describes_the_default() -> bool:
        # Asked of the second broker itself: a broker resource goes to that broker.
        entry = confluent_configs(two, ResourceType.BROKER, "2").get("log.retention.ms")
        return entry is not None and entry.value == "600000"

    wait_until("the second broker to describe the default", two_describes_the_default)
    assert described(two, plain)["retention.ms"] == ("600000", DYNAMIC_DEFAULT_BROKER_CONFIG)
    entry = confluent_configs(two, ResourceType.TOPIC, plain)["retention.ms"]
    assert entry.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    # confluent-kafka keys synonyms by name: Kafka's two (the cluster default, then the
    # default, both log.retention.ms) show as the last one; the unit tests pin both.
    assert list(entry.synonyms) == ["log.retention.ms"]
    overridden = confluent_configs(two, ResourceType.TOPIC, own)["retention.ms"]
    assert (overridden.value, overridden.source) == (
        "604800000",
        ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
    )
    mine = confluent_configs(two, ResourceType.BROKER, "2")["log.retention.ms"]
    assert (mine.value, mine.source, mine.is_read_only) == (
        "600000",
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value,
        False,
    )
    # ... and with kafka-python, which names the source.
    result = kafka_python_configs(two, ConfigResourceType.BROKER, "2")
    assert result["log.roll.ms"]["value"] == "100"
    assert result["log.roll.ms"]["config_source"] == "DYNAMIC_DEFAULT_BROKER_CONFIG"
    topic_result = kafka_python_configs(two, ConfigResourceType.TOPIC, plain)
    assert topic_result["segment.ms"]["value"] == "100"
    assert topic_result["segment.ms"]["config_source"] == "DYNAMIC_DEFAULT_BROKER_CONFIG"

    # With the first broker gone, the second leads every partition; what it enforces
    # it learned from the bucket: rolls at log.roll.ms, old records go at log.retention.ms.
    one.stop()
    produce_old(two.bootstrap, plain, 5)
    wait_until(
        "the default retention to move the log start",
        lambda: earliest_one(two.bootstrap, plain) == 5,
    )

    # A broker started again on the bucket has the defaults from the metadata log.
    again = BrokerProcess(tmp_path / "one", node_id=1, port=one.port, args=args).start()
    brokers.append(again)
    assert described(again, plain)["retention.ms"] == ("600000", DYNAMIC_DEFAULT_BROKER_CONFIG)
    assert described(again, own)["retention.ms"] == ("604800000", DYNAMIC_TOPIC_CONFIG)


def test_inspect_predicts_the_next_pass_with_the_cluster_defaults(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    bucket = f"file://{tmp_path / 'bucket'}"
    no_pass = ["--object-store", bucket, "--log-retention-check-interval-ms", "3600000"]
    broker = BrokerProcess(tmp_path / "data", args=no_pass).start()
    brokers.append(broker)
    plain, own = topic_name("inspect-defaulted"), topic_name("inspect-overridden")
    client = admin(broker)  # alive until the futures complete
    futures = client.create_topics(
        [NewTopic(plain, 1, 1), NewTopic(own, 1, 1, config={"retention.ms": "604800000"})],
        operation_timeout=10,
    )
    for future in futures.values():
        future.result(timeout=30)
    produce_old(broker.bootstrap, plain, 3)
    produce_old(broker.bootstrap, own, 3)
    assert alter_cluster_default(broker, "", {"log.retention.ms": "600000"}) == (0, None)
    assert broker.stop() == 0

    report = inspect_json("--object-store", bucket)
    parts: dict[str, dict[str, Any]] = {p["topic"]: p for p in report["partitions"]}
    # Every record is an hour old: past the cluster default, not past the override.
    assert parts[plain]["next_pass"]["retention_log_start"] == 3
    assert parts[own]["next_pass"]["retention_log_start"] == 0
