"""AlterConfigs, IncrementalAlterConfigs and DescribeConfigs' sources and synonyms on a
real node: what clients are told, and that the topic's overrides changed (or not)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.unit.node_harness import NodeHarness, request, run_node
from tidelog.protocol.errors import ErrorCode

DESCRIBE_CONFIGS, ALTER_CONFIGS, INCREMENTAL = 32, 33, 44
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5

Resource = tuple[int, str, dict[str, Any]]


def _alter(*resources: Resource, version: int = 2, validate_only: bool = False) -> Any:
    return request(
        ALTER_CONFIGS,
        version,
        "AlterConfigsRequest",
        resources=tuple(
            request(
                ALTER_CONFIGS,
                version,
                "AlterConfigsResource",
                resource_type=kind,
                resource_name=name,
                configs=tuple(
                    request(ALTER_CONFIGS, version, "AlterableConfig", name=k, value=v)
                    for k, v in configs.items()
                ),
            )
            for kind, name, configs in resources
        ),
        validate_only=validate_only,
    )


IncrementalResource = tuple[int, str, Sequence[tuple[str, int, str | None]]]


def _incremental(
    *resources: IncrementalResource, version: int = 1, validate_only: bool = False
) -> Any:
    return request(
        INCREMENTAL,
        version,
        "IncrementalAlterConfigsRequest",
        resources=tuple(
            request(
                INCREMENTAL,
                version,
                "AlterConfigsResource",
                resource_type=kind,
                resource_name=name,
                configs=tuple(
                    request(
                        INCREMENTAL,
                        version,
                        "AlterableConfig",
                        name=k,
                        config_operation=op,
                        value=v,
                    )
                    for k, op, v in ops
                ),
            )
            for kind, name, ops in resources
        ),
        validate_only=validate_only,
    )


def _answers(response: Any) -> list[tuple[str, ErrorCode]]:
    return [(r.resource_name, r.error_code) for r in response.responses]


def _configs(h: NodeHarness, topic: str) -> dict[str, str]:
    state = h.node.topic(topic)
    assert state is not None
    return state.configs


@pytest.mark.parametrize("version", [0, 1, 2])
def test_alter_configs_replaces_the_whole_override_set(tmp_path: Path, version: int) -> None:
    async def body(h: NodeHarness) -> None:
        await h.node.create_topic("t", 1, {"retention.ms": "1000", "segment.ms": "60000"})
        response = await h.call(_alter((TOPIC, "t", {"max.message.bytes": "100"}), version=version))
        assert _answers(response) == [("t", ErrorCode.none)]
        assert _configs(h, "t") == {"max.message.bytes": "100"}

    run_node(tmp_path, body)


def test_validate_only_checks_and_changes_nothing(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.node.create_topic("t", 1, {"retention.ms": "1000"})
        seq = h.node.store.meta.state.seq
        good = (TOPIC, "t", {"max.message.bytes": "100"})
        bad = (TOPIC, "t", [("retention.ms", SET, "never")])
        assert _answers(await h.call(_alter(good, validate_only=True))) == [("t", ErrorCode.none)]
        response = await h.call(_incremental(bad, validate_only=True))
        assert _answers(response) == [("t", ErrorCode.invalid_config)]
        assert "config=retention.ms" in response.responses[0].error_message
        assert _configs(h, "t") == {"retention.ms": "1000"}
        assert h.node.store.meta.state.seq == seq  # nothing committed

    run_node(tmp_path, body)


def test_invalid_values_unknown_keys_and_topics_are_refused_per_resource(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("a")
        await h.create_topic("b")
        response = await h.call(
            _alter(
                (TOPIC, "a", {"max.message.bytes": "-1"}),
                (TOPIC, "b", {"no.such.config": "1"}),
                (TOPIC, "nope", {}),
                (TOPIC, "__consumer_offsets", {"retention.ms": "1"}),
                (TOPIC, "__transaction_state", {"retention.ms": "1"}),
            )
        )
        assert _answers(response) == [
            ("a", ErrorCode.invalid_config),
            ("b", ErrorCode.invalid_config),
            ("nope", ErrorCode.unknown_topic_or_partition),
            ("__consumer_offsets", ErrorCode.invalid_topic_exception),
            ("__transaction_state", ErrorCode.invalid_topic_exception),
        ]
        messages = [r.error_message for r in response.responses]
        assert "config=max.message.bytes" in messages[0]
        assert "config=no.such.config" in messages[1]
        assert _configs(h, "a") == {} and _configs(h, "b") == {}

    run_node(tmp_path, body)


def test_incremental_alter_configs_applies_each_operation(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.node.create_topic("t", 1, {"retention.ms": "1000", "segment.ms": "60000"})
        ops = [
            ("max.message.bytes", SET, "100"),
            ("retention.ms", DELETE, None),
            ("cleanup.policy", APPEND, "compact"),
        ]
        assert _answers(await h.call(_incremental((TOPIC, "t", ops)))) == [("t", ErrorCode.none)]
        assert _configs(h, "t") == {
            "segment.ms": "60000",
            "max.message.bytes": "100",
            "cleanup.policy": "delete,compact",
        }
        subtract = [("cleanup.policy", SUBTRACT, "delete")]
        response = await h.call(_incremental((TOPIC, "t", subtract), version=0))
        assert _answers(response) == [("t", ErrorCode.none)]
        assert _configs(h, "t")["cleanup.policy"] == "compact"

    run_node(tmp_path, body)


def test_incremental_alter_configs_refuses_what_kafka_refuses(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.node.create_topic("t", 1, {"retention.ms": "1000"})
        cases: list[tuple[list[tuple[str, int, str | None]], ErrorCode]] = [
            ([("retention.ms", APPEND, "5")], ErrorCode.invalid_config),
            ([("cleanup.policy", SUBTRACT, "delete")], ErrorCode.invalid_config),  # empty list
            ([("retention.ms", SET, None)], ErrorCode.invalid_request),
            ([("retention.ms", SET, "1"), ("retention.ms", DELETE, None)],
             ErrorCode.invalid_request),
            ([("retention.ms", 9, "1")], ErrorCode.invalid_request),
            ([("min.compaction.lag.ms", SET, "10"), ("max.compaction.lag.ms", SET, "5")],
             ErrorCode.invalid_config),
        ]  # fmt: skip
        for ops, code in cases:
            response = await h.call(_incremental((TOPIC, "t", ops)))
            assert _answers(response) == [("t", code)], ops
            assert ops[0][0] in response.responses[0].error_message
        assert _configs(h, "t") == {"retention.ms": "1000"}

    run_node(tmp_path, body)


def test_broker_and_logger_resources_are_refused_naming_the_keys(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        response = await h.call(
            _incremental(
                (BROKER, "3", [("log.retention.ms", SET, "1")]),
                (BROKER, "", []),
                (BROKER, "9", [("num.partitions", SET, "2")]),
                (BROKER_LOGGER, "3", [("kafka.server", SET, "DEBUG")]),
                (16, "x", []),
                (TOPIC, "t", [("retention.ms", SET, "7")]),
            )
        )
        assert _answers(response) == [
            ("3", ErrorCode.invalid_request),
            ("", ErrorCode.none),
            ("9", ErrorCode.invalid_request),
            ("3", ErrorCode.invalid_request),
            ("x", ErrorCode.invalid_request),
            ("t", ErrorCode.none),  # the other resources do not stop it
        ]
        assert "configs=log.retention.ms" in response.responses[0].error_message
        assert "loggers=kafka.server" in response.responses[3].error_message
        legacy = await h.call(_alter((BROKER, "3", {"num.partitions": "2"})))
        assert _answers(legacy) == [("3", ErrorCode.invalid_request)]
        assert "configs=num.partitions" in legacy.responses[0].error_message
        assert _configs(h, "t") == {"retention.ms": "7"}

    run_node(tmp_path, body, node_id=3)


def test_a_resource_named_twice_in_one_request_is_refused_each_time(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        one = (TOPIC, "t", {"retention.ms": "1"})
        response = await h.call(_alter(one, one))
        assert _answers(response) == [("t", ErrorCode.invalid_request)] * 2
        assert _configs(h, "t") == {}

    run_node(tmp_path, body)


def _describe(name: str, *, synonyms: bool, version: int = 4) -> Any:
    return request(
        DESCRIBE_CONFIGS,
        version,
        "DescribeConfigsRequest",
        resources=(
            request(
                DESCRIBE_CONFIGS,
                version,
                "DescribeConfigsResource",
                resource_type=TOPIC,
                resource_name=name,
                configuration_keys=None,
            ),
        ),
        include_synonyms=synonyms,
        include_documentation=True,
    )


def test_describe_configs_reports_sources_and_kafkas_synonyms(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        await h.call(_incremental((TOPIC, "t", [("retention.ms", SET, "5000")])))
        (result,) = (await h.call(_describe("t", synonyms=True))).results
        configs = {c.name: c for c in result.configs}
        retention, segment = configs["retention.ms"], configs["segment.bytes"]
        assert (retention.value, retention.config_source) == ("5000", DYNAMIC_TOPIC_CONFIG)
        assert [(s.name, s.value, s.source) for s in retention.synonyms] == [
            ("retention.ms", "5000", DYNAMIC_TOPIC_CONFIG),
            ("log.retention.ms", "604800000", DEFAULT_CONFIG),
        ]
        assert segment.config_source == DEFAULT_CONFIG
        assert [(s.name, s.source) for s in segment.synonyms] == [
            ("log.segment.bytes", DEFAULT_CONFIG)
        ]
        assert [s.name for s in configs["max.message.bytes"].synonyms] == ["message.max.bytes"]
        assert [s.name for s in configs["cleanup.policy"].synonyms] == ["log.cleanup.policy"]
        assert configs["remote.storage.enable"].synonyms == ()  # Kafka has no broker default
        assert retention.documentation
        (plain,) = (await h.call(_describe("t", synonyms=False, version=1))).results
        assert all(c.synonyms == () for c in plain.configs)

    run_node(tmp_path, body)
