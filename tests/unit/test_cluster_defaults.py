"""The cluster's dynamic defaults of topic configs (Kafka's `--entity-default` broker
configs): which names, their checks, the metadata op and snapshot, the value a topic
has in force (override, cluster default, default), and what AlterConfigs,
IncrementalAlterConfigs and DescribeConfigs answer on the BROKER resource "" and on a
broker's own id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.node_harness import NodeHarness, request, run_node
from tests.unit.test_handlers_configs import _alter, _answers, _incremental
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.cluster_defaults import (
    DYNAMIC_DEFAULTS,
    apply_incremental_defaults,
    check_cluster_defaults,
    defaults_in_force,
)
from tidelog.storage.commit_format import CommitHeader
from tidelog.storage.errors import StoreError
from tidelog.storage.meta_state import MetaState
from tidelog.storage.topic_config import ConfigChange, ConfigOp, effective

DESCRIBE_CONFIGS = 32
TOPIC, BROKER = 2, 4
SET, DELETE, APPEND = 0, 1, 2
DYNAMIC_TOPIC_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = (
    1,
    3,
    4,
    5,
)


def test_the_dynamic_names_are_kafkas_broker_synonyms_less_the_static_ones() -> None:
    assert DYNAMIC_DEFAULTS["log.retention.ms"] == "retention.ms"
    assert DYNAMIC_DEFAULTS["log.cleanup.policy"] == "cleanup.policy"
    assert DYNAMIC_DEFAULTS["log.roll.ms"] == "segment.ms"
    assert DYNAMIC_DEFAULTS["log.segment.bytes"] == "segment.bytes"
    assert DYNAMIC_DEFAULTS["message.max.bytes"] == "max.message.bytes"
    assert DYNAMIC_DEFAULTS["log.cleaner.min.cleanable.ratio"] == "min.cleanable.dirty.ratio"
    assert DYNAMIC_DEFAULTS["compression.type"] == "compression.type"
    # Kafka keeps these static; the second is --log-segment-delete-delay-ms here.
    for static in ("log.message.format.version", "log.segment.delete.delay.ms"):
        assert static not in DYNAMIC_DEFAULTS
    # Only the synonym of highest priority is dynamic in Kafka, not the hours and minutes.
    assert "log.retention.hours" not in DYNAMIC_DEFAULTS
    assert "log.roll.hours" not in DYNAMIC_DEFAULTS


def _refusal(configs: dict[str, str | None]) -> StoreError:
    with pytest.raises(StoreError) as info:
        check_cluster_defaults(configs)
    return info.value


def test_unknown_and_static_names_are_refused_naming_them() -> None:
    error = _refusal({"num.partitions": "3", "log.retention.ms": "1", "no.such": "x"})
    assert error.code == ErrorCode.invalid_request
    assert "cannot update these configs dynamically" in str(error)
    assert str(error).endswith("configs=no.such,num.partitions")


def test_values_are_checked_as_the_topic_config_and_named_by_the_broker_key() -> None:
    cases: list[dict[str, str | None]] = [
        {"log.retention.ms": "-5"},
        {"log.segment.bytes": "100"},  # below Kafka 4's 1 MiB
        {"log.cleanup.policy": "sometimes"},
        {"log.cleaner.min.cleanable.ratio": "2"},
        {"message.max.bytes": None},
    ]
    for configs in cases:
        error = _refusal(configs)
        (name,) = configs
        assert error.code == ErrorCode.invalid_request, configs  # Kafka's, KAFKA-13609
        assert f"config={name} " in str(error), str(error)
    lags = {"log.cleaner.min.compaction.lag.ms": "10", "log.cleaner.max.compaction.lag.ms": "5"}
    error = _refusal(dict(lags))
    assert "config=log.cleaner.min.compaction.lag.ms" in str(error)
    ok = {"log.retention.ms": " 5000 ", "log.cleanup.policy": "compact,delete"}
    assert check_cluster_defaults(dict(ok)) == ok


def test_incremental_operations_work_on_broker_names() -> None:
    current = {"log.retention.ms": "5000"}
    changes = [
        ConfigChange("log.cleanup.policy", ConfigOp.APPEND, "compact"),
        ConfigChange("log.retention.ms", ConfigOp.DELETE, None),
        ConfigChange("message.max.bytes", ConfigOp.SET, "100"),
    ]
    assert apply_incremental_defaults(current, changes) == {
        "log.cleanup.policy": "delete,compact",  # from Kafka's default, as for a topic
        "message.max.bytes": "100",
    }
    with pytest.raises(StoreError) as info:
        apply_incremental_defaults({}, [ConfigChange("log.retention.ms", ConfigOp.APPEND, "1")])
    assert info.value.code == ErrorCode.invalid_config
    assert str(info.value).endswith("config=log.retention.ms")
    with pytest.raises(StoreError) as info:
        apply_incremental_defaults({}, [ConfigChange("broker.id", ConfigOp.SET, "1")])
    assert info.value.code == ErrorCode.invalid_request


def test_the_value_in_force_is_the_override_then_the_cluster_default_then_the_default() -> None:
    defaults = defaults_in_force({"log.retention.ms": "5000", "log.roll.ms": "never"})
    assert defaults == {"retention.ms": "5000"}  # a bad stored value is not in force
    assert effective({}, "retention.ms", defaults) == "5000"
    assert effective({"retention.ms": "7"}, "retention.ms", defaults) == "7"
    assert effective({"retention.ms": "bad"}, "retention.ms", defaults) == "5000"
    assert effective({}, "segment.ms", defaults) == "604800000"


def _commit(state: MetaState, node: int, epoch: int, *ops: dict[str, Any]) -> bool:
    """Fold one commit of `ops` written by (node, epoch), chained to the head."""
    seq = state.seq + 1
    header = CommitHeader(node, epoch, 0, ops=ops, commit_id=f"c{seq}", prev_id=state.head_id)
    return state.apply(seq, header, 0)


def test_the_op_replaces_the_set_and_a_snapshot_carries_it_as_v3() -> None:
    state = MetaState()
    join = {"op": "join", "node": 1, "host": "h", "port": 1, "durability": "wal",
            "session_timeout_ms": 6000}  # fmt: skip
    assert _commit(state, 1, -1, join)  # the member (1, 0)
    change = {"op": "cluster_configs", "configs": {"log.retention.ms": "5000"}}
    assert _commit(state, 1, 0, change)
    assert state.cluster_configs == {"log.retention.ms": "5000"}
    snapshot = state.to_snapshot()
    assert snapshot["v"] == 3  # a broker that knows only v2 must not read it as unset
    assert MetaState.from_snapshot(snapshot).cluster_configs == {"log.retention.ms": "5000"}
    assert not _commit(state, 9, 7, {"op": "cluster_configs", "configs": {}})  # not a member
    assert state.cluster_configs == {"log.retention.ms": "5000"}
    assert _commit(state, 1, 0, {"op": "cluster_configs", "configs": {}})
    assert state.cluster_configs == {}
    assert state.to_snapshot()["v"] == 2  # without defaults, what older brokers read


def _describe(kind: int, name: str, *, version: int = 4) -> Any:
    return request(
        DESCRIBE_CONFIGS,
        version,
        "DescribeConfigsRequest",
        resources=(
            request(
                DESCRIBE_CONFIGS,
                version,
                "DescribeConfigsResource",
                resource_type=kind,
                resource_name=name,
                configuration_keys=None,
            ),
        ),
        include_synonyms=True,
        include_documentation=False,
    )


async def _described(h: NodeHarness, kind: int, name: str) -> dict[str, Any]:
    (result,) = (await h.call(_describe(kind, name))).results
    assert result.error_code == ErrorCode.none, result.error_message
    return {c.name: c for c in result.configs}


def test_incremental_alter_on_the_cluster_default_changes_every_topic_without_an_override(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("plain")
        await h.node.create_topic("own", 1, {"retention.ms": "7"})
        ops = [("log.retention.ms", SET, "5000"), ("log.cleanup.policy", APPEND, "compact")]
        response = await h.call(_incremental((BROKER, "", ops)))
        assert _answers(response) == [("", ErrorCode.none)]
        assert h.node.store.meta.state.cluster_configs == {
            "log.retention.ms": "5000",
            "log.cleanup.policy": "delete,compact",
        }
        store = h.node.store
        assert store.topic_config("plain", "retention.ms") == "5000"
        assert store.topic_config("own", "retention.ms") == "7"
        assert store.topic_config("plain", "cleanup.policy") == "delete,compact"
        assert store.topic_config("plain", "segment.ms") == "604800000"
        delete = [("log.retention.ms", DELETE, None)]
        assert _answers(await h.call(_incremental((BROKER, "", delete)))) == [("", ErrorCode.none)]
        assert store.topic_config("plain", "retention.ms") == "604800000"

    run_node(tmp_path, body)


def test_alter_configs_replaces_the_whole_default_set_and_validate_only_commits_nothing(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        first = (BROKER, "", {"log.retention.ms": "5000", "message.max.bytes": "100"})
        assert _answers(await h.call(_alter(first))) == [("", ErrorCode.none)]
        second = (BROKER, "", {"log.roll.ms": "60000"})
        assert _answers(await h.call(_alter(second))) == [("", ErrorCode.none)]
        assert h.node.store.meta.state.cluster_configs == {"log.roll.ms": "60000"}
        seq = h.node.store.meta.state.seq
        dry = (BROKER, "", {"log.retention.ms": "1"})
        assert _answers(await h.call(_alter(dry, validate_only=True))) == [("", ErrorCode.none)]
        bad = (BROKER, "", [("log.retention.ms", SET, "soon")])
        response = await h.call(_incremental(bad))
        assert _answers(response) == [("", ErrorCode.invalid_request)]
        assert "config=log.retention.ms" in response.responses[0].error_message
        static = await h.call(_alter((BROKER, "", {"num.partitions": "3"})))
        assert _answers(static) == [("", ErrorCode.invalid_request)]
        assert "configs=num.partitions" in static.responses[0].error_message
        assert h.node.store.meta.state.seq == seq  # nothing committed
        assert h.node.store.meta.state.cluster_configs == {"log.roll.ms": "60000"}

    run_node(tmp_path, body)


def test_a_per_broker_resource_keeps_refusing_changes(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        response = await h.call(_incremental((BROKER, "3", [("log.retention.ms", SET, "1")])))
        assert _answers(response) == [("3", ErrorCode.invalid_request)]
        assert "per-broker" in response.responses[0].error_message
        assert response.responses[0].error_message.endswith("configs=log.retention.ms")
        assert h.node.store.meta.state.cluster_configs == {}

    run_node(tmp_path, body, node_id=3)


def test_describe_configs_reports_the_cluster_default_as_kafka_does(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        await h.node.create_topic("own", 1, {"retention.ms": "7"})
        assert await _described(h, BROKER, "") == {}  # nothing set yet
        await h.call(_incremental((BROKER, "", [("log.retention.ms", SET, "5000")])))

        topic = await _described(h, TOPIC, "t")
        retention = topic["retention.ms"]
        assert (retention.value, retention.config_source) == ("5000", DYNAMIC_DEFAULT_BROKER_CONFIG)
        assert [(s.name, s.value, s.source) for s in retention.synonyms] == [
            ("log.retention.ms", "5000", DYNAMIC_DEFAULT_BROKER_CONFIG),
            ("log.retention.ms", "604800000", DEFAULT_CONFIG),
        ]
        assert topic["segment.ms"].config_source == DEFAULT_CONFIG
        own = (await _described(h, TOPIC, "own"))["retention.ms"]
        assert (own.value, own.config_source) == ("7", DYNAMIC_TOPIC_CONFIG)
        assert [s.source for s in own.synonyms] == [
            DYNAMIC_TOPIC_CONFIG,
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            DEFAULT_CONFIG,
        ]

        cluster = await _described(h, BROKER, "")
        assert list(cluster) == ["log.retention.ms"]
        entry = cluster["log.retention.ms"]
        assert (entry.value, entry.config_source, entry.read_only) == (
            "5000",
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            False,
        )
        assert [(s.name, s.source) for s in entry.synonyms] == [
            ("log.retention.ms", DYNAMIC_DEFAULT_BROKER_CONFIG)
        ]
        broker = await _described(h, BROKER, "3")
        mine = broker["log.retention.ms"]
        assert (mine.value, mine.config_source, mine.read_only) == (
            "5000",
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            False,
        )
        assert [s.source for s in mine.synonyms] == [DYNAMIC_DEFAULT_BROKER_CONFIG, DEFAULT_CONFIG]
        unset = broker["log.roll.ms"]
        assert (unset.value, unset.config_source) == ("604800000", DEFAULT_CONFIG)
        static = broker["num.partitions"]
        assert (static.config_source, static.read_only) == (STATIC_BROKER_CONFIG, True)

    run_node(tmp_path, body, node_id=3)


def test_a_topic_change_is_checked_against_the_cluster_defaults_in_force(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        lag = [("log.cleaner.max.compaction.lag.ms", SET, "5")]
        assert _answers(await h.call(_incremental((BROKER, "", lag)))) == [("", ErrorCode.none)]
        response = await h.call(_incremental((TOPIC, "t", [("min.compaction.lag.ms", SET, "10")])))
        assert _answers(response) == [("t", ErrorCode.invalid_config)]
        assert "max_compaction_lag_ms=5" in response.responses[0].error_message
        with pytest.raises(StoreError):
            await h.node.create_topic("u", 1, {"min.compaction.lag.ms": "10"})
        fine = [("min.compaction.lag.ms", SET, "5")]
        assert _answers(await h.call(_incremental((TOPIC, "t", fine)))) == [("t", ErrorCode.none)]

    run_node(tmp_path, body)
