"""Kafka's per-broker dynamic configs on a broker's own id (storage/broker_configs.py):
which names, their checks, SET/DELETE, the metadata op and snapshot, and what
AlterConfigs, IncrementalAlterConfigs and DescribeConfigs answer on BROKER "<id>"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.node_harness import NodeHarness, run_node
from tests.unit.test_cluster_defaults import _described
from tests.unit.test_handlers_configs import _alter, _answers, _incremental
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.broker_configs import (
    apply_incremental_broker,
    broker_configs_in_force,
    check_broker_configs,
)
from tidelog.storage.errors import StoreError
from tidelog.storage.meta_state import MetaState
from tidelog.storage.topic_config import ConfigChange, ConfigOp

BROKER, SET, DELETE, APPEND = 4, 0, 1, 2
DYNAMIC_BROKER_CONFIG = 2
RELOGIN = "sasl.kerberos.min.time.before.relogin"


def test_the_named_configs_are_checked_by_type() -> None:
    given = {RELOGIN: "58000", "num.io.threads": "8", "sasl.kerberos.kinit.cmd": "/bin/kinit"}
    assert check_broker_configs(given) == given
    for name, value in [
        (RELOGIN, "soon"),
        ("num.io.threads", "0"),
        ("num.network.threads", "2147483648"),
        ("sasl.kerberos.ticket.renew.jitter", "x"),
        (RELOGIN, None),
    ]:
        with pytest.raises(StoreError) as info:
            check_broker_configs({name: value})
        assert info.value.code == ErrorCode.invalid_request
        assert f"config={name}" in str(info.value)
    with pytest.raises(StoreError) as info:
        check_broker_configs({"num.partitions": "3", RELOGIN: "1"})
    assert info.value.code == ErrorCode.invalid_request
    assert str(info.value).endswith("configs=num.partitions")
    assert broker_configs_in_force({RELOGIN: "x", "num.io.threads": "4", "other": "1"}) == {
        "num.io.threads": "4"
    }


def test_incremental_sets_and_deletes_and_refuses_append() -> None:
    current = {RELOGIN: "1", "num.io.threads": "4"}
    changes = [
        ConfigChange(RELOGIN, ConfigOp.SET, "58000"),
        ConfigChange("num.io.threads", 1, None),
    ]
    assert apply_incremental_broker(current, changes) == {RELOGIN: "58000"}
    with pytest.raises(StoreError) as info:
        apply_incremental_broker(current, [ConfigChange("num.io.threads", ConfigOp.APPEND, "1")])
    assert info.value.code == ErrorCode.invalid_config


def test_the_op_folds_per_node_and_survives_a_snapshot() -> None:
    state = MetaState()
    state._apply_op(0, {"op": "broker_configs", "node": 1, "configs": {RELOGIN: "58000"}})
    state._apply_op(1, {"op": "broker_configs", "node": 2, "configs": {"num.io.threads": "3"}})
    state._apply_op(2, {"op": "broker_configs", "node": 2, "configs": {}})
    assert state.broker_configs == {1: {RELOGIN: "58000"}}
    snapshot = state.to_snapshot()
    assert snapshot["v"] == 4  # a broker that knows only v3 must not read it as unset
    assert MetaState.from_snapshot(snapshot).broker_configs == {1: {RELOGIN: "58000"}}
    assert MetaState().to_snapshot()["v"] == 2


def test_alter_and_describe_on_the_brokers_own_id(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        legacy = await h.call(_alter((BROKER, "3", {RELOGIN: "58000"})))
        assert _answers(legacy) == [("3", ErrorCode.none)]
        incremental = await h.call(_incremental((BROKER, "3", [("num.io.threads", SET, "8")])))
        assert _answers(incremental) == [("3", ErrorCode.none)]
        assert h.node.store.meta.state.broker_configs == {
            3: {RELOGIN: "58000", "num.io.threads": "8"}
        }
        described = await _described(h, BROKER, "3")
        for name, value in [(RELOGIN, "58000"), ("num.io.threads", "8")]:
            assert (described[name].value, described[name].config_source) == (
                value,
                DYNAMIC_BROKER_CONFIG,
            )
        assert RELOGIN not in await _described(h, BROKER, "")
        seq = h.node.store.meta.state.seq
        dry = await h.call(_alter((BROKER, "3", {RELOGIN: "1"}), validate_only=True))
        assert _answers(dry) == [("3", ErrorCode.none)]
        bad = await h.call(_incremental((BROKER, "3", [(RELOGIN, SET, "soon")])))
        assert _answers(bad) == [("3", ErrorCode.invalid_request)]
        other = await h.call(_incremental((BROKER, "9", [(RELOGIN, SET, "1")])))
        assert _answers(other) == [("9", ErrorCode.invalid_request)]
        assert h.node.store.meta.state.seq == seq  # nothing committed
        gone = await h.call(_incremental((BROKER, "3", [(RELOGIN, DELETE, None)])))
        assert _answers(gone) == [("3", ErrorCode.none)]
        assert h.node.store.meta.state.broker_configs == {3: {"num.io.threads": "8"}}

    run_node(tmp_path, body, node_id=3)
