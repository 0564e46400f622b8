"""`tidelog transactions` without a broker: its arguments and its tables. What it asks
and what brokers answer is in tests/integration/test_transactions_cli.py."""

from __future__ import annotations

import argparse

import pytest

from tidelog.broker.admin.transactions import (
    add_transactions_arguments,
    render_describe,
    render_producers,
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_transactions_arguments(parser, argparse.ArgumentParser)
    return parser.parse_args(argv)


def test_bootstrap_server_and_its_alias_and_repeatable_filters() -> None:
    args = parse("list", "--state", "Ongoing", "--state", "Empty", "--producer-id", "7",
                 "--bootstrap-server", "h:1")  # fmt: skip
    assert (args.state, args.producer_id, args.duration_filter) == (["Ongoing", "Empty"], [7], None)
    assert args.bootstrap == "h:1"
    assert parse("describe", "tx", "--bootstrap", "h:2").bootstrap == "h:2"
    producers = parse("producers", "t", "3")
    assert (producers.topic, producers.partition, producers.bootstrap) == ("t", 3, None)


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--state", "Running"],
        ["list", "--duration-filter", "-1"],
        ["producers", "t", "x"],
        ["describe", "tx", "--bootstrap-server", "no-port"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2


def test_describe_shows_duration_when_open_and_dashes_when_not() -> None:
    ongoing = {"coordinator": 1, "transactional_id": "tx", "producer_id": 5, "producer_epoch": 2,
               "state": "Ongoing", "timeout_ms": 60000, "start_ms": 1000,
               "partitions": [["t", 0], ["t", 2]]}  # fmt: skip
    assert render_describe(ongoing, now_ms=1250).splitlines()[1].split() == [
        "1", "tx", "5", "2", "Ongoing", "60000", "1000", "250", "t-0,t-2"
    ]  # fmt: skip
    done = {**ongoing, "state": "CompleteCommit", "start_ms": -1, "partitions": []}
    assert render_describe(done, now_ms=1250).splitlines()[1].split() == [
        "1", "tx", "5", "2", "CompleteCommit", "60000", "-", "-", "-"
    ]  # fmt: skip


def test_producers_table_shows_minus_one_as_dash() -> None:
    report = {"producers": [
        {"producer_id": 9, "producer_epoch": 0, "last_sequence": 4, "last_timestamp": -1,
         "coordinator_epoch": -1, "txn_start_offset": 12},
        {"producer_id": 10, "producer_epoch": 3, "last_sequence": -1, "last_timestamp": -1,
         "coordinator_epoch": -1, "txn_start_offset": -1},
    ]}  # fmt: skip
    header, *rows = render_producers(report).splitlines()
    assert header.split()[0] == "PRODUCER-ID"
    assert [r.split() for r in rows] == [
        ["9", "0", "4", "-", "-", "12"],
        ["10", "3", "-", "-", "-", "-"],
    ]
