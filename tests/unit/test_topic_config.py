"""Topic config values are checked as Kafka's broker checks them (type, range, allowed
values), and what is refused names the key. Pure: no store, no sockets."""

from __future__ import annotations

import pytest

from tidelog.protocol.errors import ErrorCode
from tidelog.storage.errors import StoreError
from tidelog.storage.topic_config import (
    DEFAULT_TOPIC_CONFIGS,
    effective,
    valid_overrides,
    validate_topic_configs,
)


def test_every_default_is_a_valid_value_of_its_config() -> None:
    assert validate_topic_configs(DEFAULT_TOPIC_CONFIGS) == DEFAULT_TOPIC_CONFIGS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max.message.bytes", "+7"),
        ("max.message.bytes", " 0 "),
        ("max.message.bytes", "2147483647"),
        ("retention.bytes", "-9223372036854775808"),
        ("min.cleanable.dirty.ratio", "1"),
        ("min.cleanable.dirty.ratio", ".25"),
        ("min.cleanable.dirty.ratio", "5e-1"),
        ("cleanup.policy", "delete , compact"),
        ("compression.gzip.level", "-1"),
        ("compression.gzip.level", "9"),
        ("preallocate", "False"),
        ("leader.replication.throttled.replicas", ""),
        ("message.format.version", "0.10.0.0"),  # librdkafka's test 0092 sets it
        ("message.format.version", "0.10.0-IV1"),
        ("message.format.version", "2.8"),
        ("message.format.version", "3.0.1"),
    ],
)
def test_values_kafka_accepts_are_accepted(name: str, value: str) -> None:
    assert validate_topic_configs({name: value}) == {name: value}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max.message.bytes", "0x10"),
        ("retention.bytes", "9223372036854775808"),
        ("min.cleanable.dirty.ratio", "nan"),
        ("min.cleanable.dirty.ratio", "inf"),
        ("min.cleanable.dirty.ratio", "-0.1"),
        ("cleanup.policy", "delete,"),
        ("compression.gzip.level", "0"),
        ("compression.type", "ZSTD"),
        ("message.timestamp.type", " LogAppendTime2"),
        ("segment.index.bytes", "3"),
        ("remote.storage.enable", "true"),
        ("message.format.version", "0.10"),  # a 0.x version needs three parts
        ("message.format.version", "3"),
    ],
)
def test_values_kafka_refuses_are_invalid_config_naming_the_key(name: str, value: str) -> None:
    with pytest.raises(StoreError) as refused:
        validate_topic_configs({name: value})
    assert refused.value.code == ErrorCode.invalid_config
    assert f"config={name}" in str(refused.value)


def test_a_stored_value_that_does_not_validate_is_as_if_never_set() -> None:
    stored = {"max.message.bytes": "abc", "retention.ms": "5", "segment.ms": None, "x.y": "1"}
    assert valid_overrides(stored) == {"retention.ms": "5"}
    assert effective(stored, "max.message.bytes") == "1048588"
    assert effective(stored, "retention.ms") == "5"
