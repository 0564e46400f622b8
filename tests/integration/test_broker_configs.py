"""Kafka's per-broker dynamic configs on a broker's own id (librdkafka's 0081 sets
`sasl.kerberos.min.time.before.relogin` on BROKER "1"): confluent-kafka's
IncrementalAlterConfigs and AlterConfigs succeed, DescribeConfigs reports the value as
DYNAMIC_BROKER_CONFIG, a restarted broker still has it (metadata log), and a name
outside the set is still refused (docs/topics.md, "Per-broker configs")."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_alter_configs import alter_error, legacy_alter
from tests.integration.test_clients import admin

pytestmark = pytest.mark.integration
RELOGIN = "sasl.kerberos.min.time.before.relogin"
INVALID_REQUEST = 42


def _set(name: str, value: str) -> ConfigResource:
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    return ConfigResource(ResourceType.BROKER, "1", incremental_configs=[entry])


def _described(broker: BrokerProcess) -> dict[str, tuple[str, ConfigSource]]:
    client = admin(broker)
    (future,) = client.describe_configs([ConfigResource(ResourceType.BROKER, "1")]).values()
    entries = future.result(timeout=30)
    return {k: (e.value, ConfigSource(e.source)) for k, e in entries.items()}


def test_a_per_broker_config_is_accepted_described_and_kept_across_a_restart(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    args = ["--object-store", f"file://{tmp_path / 'bucket'}"]
    one = BrokerProcess(tmp_path / "one", node_id=1, args=args).start()
    brokers.append(one)
    client = admin(one)
    assert alter_error(client.incremental_alter_configs([_set(RELOGIN, "58000")])) is None
    assert _described(one)[RELOGIN] == ("58000", ConfigSource.DYNAMIC_BROKER_CONFIG)

    legacy = ConfigResource(ResourceType.BROKER, "1", set_config={RELOGIN: "59000"})
    assert alter_error(legacy_alter(client, [legacy])) is None
    assert _described(one)[RELOGIN] == ("59000", ConfigSource.DYNAMIC_BROKER_CONFIG)

    # A name outside the set, or a bad value, is refused, and nothing changes.
    assert alter_error(client.incremental_alter_configs([_set("num.partitions", "3")])) == (
        INVALID_REQUEST
    )
    assert alter_error(client.incremental_alter_configs([_set(RELOGIN, "soon")])) == (
        INVALID_REQUEST
    )
    assert _described(one)[RELOGIN] == ("59000", ConfigSource.DYNAMIC_BROKER_CONFIG)

    one.stop()
    again = BrokerProcess(tmp_path / "one", node_id=1, port=one.port, args=args).start()
    brokers.append(again)
    assert _described(again)[RELOGIN] == ("59000", ConfigSource.DYNAMIC_BROKER_CONFIG)
