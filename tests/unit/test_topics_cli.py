"""`tidelog topics` without a broker: its arguments, its checks and its tables. What it
asks and what a broker answers is in tests/integration/test_topics_cli.py."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import pytest

from tidelog.broker.admin.topic_client import error_name
from tidelog.broker.admin.topics import (
    add_topics_arguments,
    alter_plan,
    config_map,
    kafka_topic_id,
    render_describe,
    render_list,
)
from tidelog.broker.cli import _Parser


def parse(*argv: str) -> argparse.Namespace:
    parser = _Parser(prog="tidelog topics")
    add_topics_arguments(parser, _Parser)
    return parser.parse_args(argv)


def test_create_takes_partitions_replication_factor_and_repeated_configs() -> None:
    args = parse("create", "t", "--partitions", "3", "--replication-factor", "-1",
                 "--config", "retention.ms=1000", "--config", "cleanup.policy=compact,delete",
                 "--bootstrap", "h:1")  # fmt: skip
    assert (args.topic, args.partitions, args.replication_factor) == ("t", 3, -1)
    assert config_map(args.configs) == {
        "retention.ms": "1000",
        "cleanup.policy": "compact,delete",
    }
    assert args.bootstrap == "h:1"
    defaults = parse("create", "t")
    assert (defaults.partitions, defaults.replication_factor, defaults.configs) == (None, -1, [])


def test_a_config_value_may_hold_an_equals_sign_or_be_empty() -> None:
    args = parse("create", "t", "--config", "a=b=c", "--config", "d=")
    assert config_map(args.configs) == {"a": "b=c", "d": ""}


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "t", "--config", "foo"],
        ["create", "t", "--config", "=1"],
        ["create", "t", "--partitions", "0"],
        ["create", "t", "--partitions", "x"],
        ["create", "t", "--replication-factor", "3"],
        ["create", "t", "--replication-factor", "0"],
        ["alter", "t", "--delete-config", "a=1"],
        ["alter", "t", "--partitions", "-1"],
        ["describe"],
        ["delete"],
        ["list", "--bootstrap", "no-port"],
        ["rename", "t"],
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_replication_factor_message_names_the_object_store(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse("create", "t", "--replication-factor", "3")
    err = capsys.readouterr().err
    assert "one copy of each partition" in err and "expected 1 or -1, got '3'" in err


def test_alter_plan_sets_deletes_and_refuses_nothing_or_contradictions() -> None:
    args = parse("alter", "t", "--config", "retention.ms=5", "--delete-config", "segment.ms",
                 "--delete-config", "segment.ms")  # fmt: skip
    assert alter_plan(args) == ({"retention.ms": "5"}, ["segment.ms"])
    assert alter_plan(parse("alter", "t", "--partitions", "4")) == ({}, [])
    with pytest.raises(ValueError, match="nothing to alter"):
        alter_plan(parse("alter", "t"))
    with pytest.raises(ValueError, match="same key=a"):
        alter_plan(parse("alter", "t", "--config", "a=1", "--delete-config", "a"))
    with pytest.raises(ValueError, match="twice key=a"):
        alter_plan(parse("alter", "t", "--config", "a=1", "--config", "a=2"))


def test_topic_ids_are_shown_in_kafkas_base64_form() -> None:
    assert kafka_topic_id(str(uuid.UUID(int=0))) == "AAAAAAAAAAAAAAAAAAAAAA"
    # Kafka's Uuid.toString() of this id (URL-safe alphabet, no padding)
    assert kafka_topic_id("fbffffff-ffff-ffff-ffff-ffffffffffff") == "-" + "_" * 20 + "w"


def test_error_names_are_kafkas_spelling() -> None:
    assert error_name(36) == "TOPIC_ALREADY_EXISTS"
    assert error_name(3) == "UNKNOWN_TOPIC_OR_PARTITION"
    assert error_name(-1) == "UNKNOWN_SERVER_ERROR"
    assert error_name(31999) == "UNKNOWN"


def test_list_is_an_aligned_table() -> None:
    topics = [
        {"name": "a", "partitions": 12, "replication_factor": 1},
        {"name": "longer-name", "partitions": 1, "replication_factor": 1},
    ]
    assert render_list(topics).splitlines() == [
        "NAME         PARTITIONS  REPLICAS",
        "a            12          1",
        "longer-name  1           1",
    ]


def describe_report(**over: Any) -> dict[str, Any]:
    return {
        "name": "t",
        "topic_id": "AAAAAAAAAAAAAAAAAAAAAA",
        "internal": False,
        "replication_factor": 1,
        "partitions": [
            {
                "partition": 0,
                "leader": 1,
                "leader_epoch": 3,
                "replicas": [1],
                "isr": [1],
                "log_start_offset": 2,
                "log_end_offset": 10,
            },
            {
                "partition": 1,
                "leader": -1,
                "leader_epoch": -1,
                "replicas": [],
                "isr": [],
                "log_start_offset": None,
                "log_end_offset": None,
            },
        ],
        "configs": [{"name": "retention.ms", "value": "1000", "source": "DYNAMIC_TOPIC_CONFIG"}],
        **over,
    }


def test_describe_shows_summary_configs_and_partitions_with_offsets() -> None:
    lines = render_describe(describe_report()).splitlines()
    assert lines[:7] == [
        "SUMMARY",
        "=======",
        "NAME        t",
        "TOPIC-ID    AAAAAAAAAAAAAAAAAAAAAA",
        "INTERNAL    false",
        "PARTITIONS  2",
        "REPLICAS    1",
    ]
    configs = lines.index("CONFIGS")
    assert [row.split() for row in lines[configs + 2 : configs + 4]] == [
        ["KEY", "VALUE", "SOURCE"],
        ["retention.ms", "1000", "DYNAMIC_TOPIC_CONFIG"],
    ]
    partitions = lines.index("PARTITIONS")
    assert [row.split() for row in lines[partitions + 2 :]] == [
        ["PARTITION", "LEADER", "EPOCH", "REPLICAS", "LOG-START-OFFSET", "HIGH-WATERMARK"],
        ["0", "1", "3", "1", "2", "10"],
        ["1", "-", "-1", "-", "-", "-"],  # between leaders: no offsets to show
    ]


def test_describe_without_overrides_has_an_empty_configs_table() -> None:
    lines = render_describe(describe_report(configs=[])).splitlines()
    configs = lines.index("CONFIGS")
    assert lines[configs + 2 : configs + 4] == ["KEY  VALUE  SOURCE", ""]
