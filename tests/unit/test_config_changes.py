"""IncrementalAlterConfigs' operations on a topic's overrides (SET, DELETE, APPEND,
SUBTRACT) and the metadata log's `alter_configs` op. Pure: no store, no sockets."""

from __future__ import annotations

import pytest

from tidelog.protocol.errors import ErrorCode
from tidelog.storage.commit_format import CommitHeader
from tidelog.storage.config_synonyms import BROKER_SYNONYMS
from tidelog.storage.errors import StoreError
from tidelog.storage.meta_state import MetaState
from tidelog.storage.topic_config import (
    TOPIC_CONFIGS,
    ConfigChange,
    ConfigOp,
    apply_incremental,
    validate_topic_configs,
)

SET, DELETE, APPEND, SUBTRACT = ConfigOp.SET, ConfigOp.DELETE, ConfigOp.APPEND, ConfigOp.SUBTRACT


def changed(current: dict[str, str], *changes: tuple[str, int, str | None]) -> dict[str, str]:
    return apply_incremental(current, [ConfigChange(*c) for c in changes])


def refused(current: dict[str, str], *changes: tuple[str, int, str | None]) -> StoreError:
    with pytest.raises(StoreError) as error:
        changed(current, *changes)
    return error.value


def test_set_adds_or_replaces_an_override_and_keeps_the_others() -> None:
    current = {"retention.ms": "1000", "segment.ms": "60000"}
    assert changed(current, ("retention.ms", SET, "5000"), ("max.message.bytes", SET, "10")) == {
        "retention.ms": "5000",
        "segment.ms": "60000",
        "max.message.bytes": "10",
    }
    assert current == {"retention.ms": "1000", "segment.ms": "60000"}  # not changed in place


def test_delete_drops_an_override_and_deleting_one_not_set_is_a_no_op() -> None:
    current = {"retention.ms": "1000", "segment.ms": "60000"}
    assert changed(current, ("retention.ms", DELETE, None), ("flush.ms", DELETE, "x")) == {
        "segment.ms": "60000"
    }


def test_append_starts_from_the_default_when_not_overridden_and_adds_each_item_once() -> None:
    assert changed({}, ("cleanup.policy", APPEND, "compact")) == {
        "cleanup.policy": "delete,compact"
    }
    assert changed({"cleanup.policy": "compact"}, ("cleanup.policy", APPEND, "compact,delete")) == {
        "cleanup.policy": "compact,delete"
    }
    throttled = "leader.replication.throttled.replicas"
    assert changed({}, (throttled, APPEND, "0:1")) == {throttled: "0:1"}  # default is empty


def test_subtract_removes_items_and_may_leave_a_list_the_table_then_refuses() -> None:
    current = {"cleanup.policy": "compact,delete"}
    assert changed(current, ("cleanup.policy", SUBTRACT, "delete")) == {"cleanup.policy": "compact"}
    assert changed({}, ("cleanup.policy", SUBTRACT, "compact")) == {"cleanup.policy": "delete"}
    emptied = changed({}, ("cleanup.policy", SUBTRACT, "delete"))
    assert emptied == {"cleanup.policy": ""}
    with pytest.raises(StoreError) as invalid:
        validate_topic_configs(emptied)
    assert invalid.value.code == ErrorCode.invalid_config
    assert "config=cleanup.policy" in str(invalid.value)


def test_append_or_subtract_on_a_config_that_is_not_a_list_is_invalid_config() -> None:
    for op in (APPEND, SUBTRACT):
        error = refused({}, ("retention.ms", op, "5"))
        assert error.code == ErrorCode.invalid_config
        assert "config=retention.ms" in str(error)


def test_one_key_twice_is_refused_and_different_keys_all_apply() -> None:
    ops = (("retention.ms", SET, "1"), ("retention.ms", DELETE, None))
    assert refused({}, *ops).code == ErrorCode.invalid_request
    assert changed({}, ("cleanup.policy", APPEND, "compact"), ("retention.ms", SET, "1")) == {
        "cleanup.policy": "delete,compact",
        "retention.ms": "1",
    }


@pytest.mark.parametrize(
    ("changes", "code", "named"),
    [
        ((("no.such.config", SET, "1"),), ErrorCode.invalid_config, "no.such.config"),
        ((("no.such.config", DELETE, None),), ErrorCode.invalid_config, "no.such.config"),
        ((("retention.ms", SET, None),), ErrorCode.invalid_request, "retention.ms"),
        ((("cleanup.policy", APPEND, None),), ErrorCode.invalid_request, "cleanup.policy"),
        ((("retention.ms", 7, "1"),), ErrorCode.invalid_request, "retention.ms"),
        (
            (("retention.ms", SET, "1"), ("retention.ms", SET, "2")),
            ErrorCode.invalid_request,
            "retention.ms",
        ),
    ],
)
def test_what_kafka_refuses_is_refused_naming_the_key(
    changes: tuple[tuple[str, int, str | None], ...], code: ErrorCode, named: str
) -> None:
    error = refused({"retention.ms": "5"}, *changes)
    assert error.code == code
    assert f"config={named}" in str(error)


def test_every_broker_synonym_is_of_a_known_topic_config() -> None:
    assert set(BROKER_SYNONYMS) <= set(TOPIC_CONFIGS)
    assert BROKER_SYNONYMS["retention.ms"] == "log.retention.ms"
    assert BROKER_SYNONYMS["max.message.bytes"] == "message.max.bytes"


# -- the metadata op ----------------------------------------------------------------------

JOIN = {"op": "join", "node": 1, "host": "h", "port": 1, "durability": "wal",
        "session_timeout_ms": 6000}  # fmt: skip
ID, OTHER_ID = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"


def folded(*ops: dict[str, object]) -> MetaState:
    state = MetaState()
    assert state.apply(0, CommitHeader(1, -1, 0, ops=(JOIN,), commit_id="c0"), 0)
    for seq, op in enumerate(ops, start=1):
        header = CommitHeader(1, 0, 0, ops=(op,), commit_id=f"c{seq}", prev_id=f"c{seq - 1}")
        assert state.apply(seq, header, 0)
    return state


def create(topic_id: str) -> dict[str, object]:
    return {"op": "create_topic", "name": "t", "id": topic_id, "partitions": 1,
            "configs": {"retention.ms": "1000", "segment.ms": "5000"}}  # fmt: skip


def alter(topic_id: str, configs: dict[str, str]) -> dict[str, object]:
    return {"op": "alter_configs", "name": "t", "id": topic_id, "configs": configs}


def test_alter_configs_replaces_the_whole_override_set() -> None:
    state = folded(create(ID), alter(ID, {"max.message.bytes": "100"}))
    assert state.topics["t"].configs == {"max.message.bytes": "100"}
    assert MetaState.from_snapshot(state.to_snapshot()).topics["t"].configs == {
        "max.message.bytes": "100"
    }


def test_alter_configs_naming_another_topic_id_changes_nothing() -> None:
    # Checked against a topic since deleted and created again under the same name.
    state = folded(
        create(ID),
        {"op": "delete_topic", "name": "t", "id": ID},
        create(OTHER_ID),
        alter(ID, {"max.message.bytes": "100"}),
    )
    assert state.topics["t"].topic_id == OTHER_ID
    assert state.topics["t"].configs == {"retention.ms": "1000", "segment.ms": "5000"}


def test_alter_configs_of_a_deleted_topic_changes_nothing() -> None:
    state = folded(create(ID), {"op": "delete_topic", "name": "t", "id": ID}, alter(ID, {}))
    assert state.topics == {}
