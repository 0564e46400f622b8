"""`tidelog transactions list|describe|producers`: transactions, read over the Kafka protocol.

Owns: the `transactions` sub-command (`COMMAND`, the `tidelog.commands` entry point),
its arguments, which broker each action asks, and rendering as a table or as JSON
(`--json`). Everything it knows comes from brokers through broker/admin/txn_client.py;
nothing reads the data directory or the bucket.

Which brokers: `list` asks every broker the bootstrap's Metadata names (each lists only
the ids it coordinates, as in Kafka) and merges; `describe ID` asks the coordinator
FindCoordinator (key_type 1) names; `producers TOPIC PARTITION` asks the partition's
leader from Metadata.

Guarantees: exit 0 on success; an unreachable broker or a Kafka error (an unknown id is
TRANSACTIONAL_ID_NOT_FOUND) is one line on stderr and exit 1; bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from typing import Any

from tidelog.broker.admin.groups import (
    BOOTSTRAP_ENV,
    add_bootstrap_and_json,
    print_answer,
    resolve_bootstrap,
    table,
)
from tidelog.broker.admin.txn_client import Broker, TxnAdminClient, address
from tidelog.broker.commands import SubCommand

# Kafka's state names, as ListTransactions filters on them.
STATES = (
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
)


# -- arguments -------------------------------------------------------------------------


def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected >= 0, got {number}")
    return number


def add_transactions_arguments(parser: argparse.ArgumentParser, parser_class: type[Any]) -> None:
    """Fill in the `transactions` sub-parser: `list`, `describe ID`, `producers T P`."""
    sub = parser.add_subparsers(
        dest="transactions_command", metavar="ACTION", parser_class=parser_class, required=True
    )
    listing = sub.add_parser(
        "list", help="every transactional id in the cluster: its coordinator, producer, state"
    )
    listing.add_argument(
        "--state",
        action="append",
        default=[],
        choices=STATES,
        help="only ids in this state (repeatable)",
    )
    listing.add_argument(
        "--producer-id",
        action="append",
        default=[],
        type=_non_negative,
        metavar="ID",
        help="only this producer id (repeatable)",
    )
    listing.add_argument(
        "--duration-filter",
        type=_non_negative,
        default=None,
        metavar="MS",
        help="only transactions open for longer than MS milliseconds",
    )
    add_bootstrap_and_json(listing, "a broker to start from")
    describe = sub.add_parser(
        "describe",
        help="one transactional id: state, producer id/epoch, timeout, start, partitions",
    )
    describe.add_argument("transactional_id", metavar="ID")
    add_bootstrap_and_json(describe, "a broker to start from")
    producers = sub.add_parser(
        "producers",
        help="the producers a partition's leader holds state for, and their open transactions",
    )
    producers.add_argument("topic", metavar="TOPIC")
    producers.add_argument("partition", type=_non_negative, metavar="PARTITION")
    add_bootstrap_and_json(producers, "a broker to start from")


# -- the reports -----------------------------------------------------------------------


def list_report(client: TxnAdminClient, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every broker's listing, merged, by transactional id."""
    rows = []
    duration = -1 if args.duration_filter is None else args.duration_filter
    for broker in client.brokers():
        with TxnAdminClient(address(broker)) as there:
            for t in there.list_transactions(args.state, args.producer_id, duration):
                rows.append({**asdict(t), "coordinator": broker.node_id})
    return sorted(rows, key=lambda r: r["transactional_id"])


def describe_report(client: TxnAdminClient, transactional_id: str) -> dict[str, Any]:
    coordinator = client.transaction_coordinator(transactional_id)
    with TxnAdminClient(address(coordinator)) as there:
        d = there.describe_transaction(transactional_id)
    return {
        "coordinator": coordinator.node_id,
        **asdict(d),
        "partitions": [list(p) for p in d.partitions],
    }


def producers_report(client: TxnAdminClient, topic: str, partition: int) -> dict[str, Any]:
    leader: Broker = client.partition_leader(topic, partition)
    with TxnAdminClient(address(leader)) as there:
        producers = there.describe_producers(topic, partition)
    return {
        "topic": topic,
        "partition": partition,
        "leader": leader.node_id,
        "producers": [asdict(p) for p in producers],
    }


def _minus_one(value: int) -> int | None:
    return None if value < 0 else value


def render_list(rows: list[dict[str, Any]]) -> str:
    return table(
        ("TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"),
        [(r["transactional_id"], r["coordinator"], r["producer_id"], r["state"]) for r in rows],
    )


def render_describe(d: dict[str, Any], now_ms: int) -> str:
    start = d["start_ms"]
    partitions = ",".join(f"{t}-{p}" for t, p in d["partitions"])
    row = (
        d["coordinator"],
        d["transactional_id"],
        d["producer_id"],
        d["producer_epoch"],
        d["state"],
        d["timeout_ms"],
        _minus_one(start),
        max(now_ms - start, 0) if start >= 0 else None,
        partitions,
    )
    header = ("COORDINATOR", "TRANSACTIONAL-ID", "PRODUCER-ID", "EPOCH", "STATE", "TIMEOUT-MS",
              "START-MS", "DURATION-MS", "PARTITIONS")  # fmt: skip
    return table(header, [row])


def render_producers(report: dict[str, Any]) -> str:
    rows = [
        (p["producer_id"], p["producer_epoch"], _minus_one(p["last_sequence"]),
         _minus_one(p["last_timestamp"]), _minus_one(p["coordinator_epoch"]),
         _minus_one(p["txn_start_offset"]))
        for p in report["producers"]
    ]  # fmt: skip
    header = ("PRODUCER-ID", "EPOCH", "LAST-SEQUENCE", "LAST-TIMESTAMP", "COORDINATOR-EPOCH",
              "TXN-START-OFFSET")  # fmt: skip
    return table(header, rows)


# -- entry point -----------------------------------------------------------------------


def run_transactions(args: argparse.Namespace) -> int:
    """Run `tidelog transactions ...` and return the exit code."""
    action = args.transactions_command
    prog = f"tidelog transactions {action}"
    try:
        bootstrap = resolve_bootstrap(args, os.environ)
    except ValueError as exc:
        print(f"{prog}: error: {exc} (from {BOOTSTRAP_ENV})", file=sys.stderr)
        return 2

    def query() -> tuple[Any, str]:
        with TxnAdminClient(bootstrap) as client:
            if action == "list":
                listing = list_report(client, args)
                return listing, render_list(listing)
            if action == "describe":
                described = describe_report(client, args.transactional_id)
                return described, render_describe(described, time.time_ns() // 1_000_000)
            producers = producers_report(client, args.topic, args.partition)
            return producers, render_producers(producers)

    return print_answer(prog, args.json, query)


COMMAND = SubCommand(
    order=15,
    help="list transactions, describe one, show a partition's producers",
    description=(
        "Kafka transactions, read from the brokers over the Kafka protocol "
        "(ListTransactions, DescribeTransactions, DescribeProducers)."
    ),
    add_arguments=add_transactions_arguments,
    run=run_transactions,
)
