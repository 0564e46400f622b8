"""`tidelog groups list|describe`: consumer groups and their lag, read over the Kafka protocol.

Owns: the `groups` sub-command (`COMMAND`, the `tidelog.commands` entry point) and its
arguments, decoding the consumer protocol's assignment bytes, computing lag per
partition, and rendering as a table or as JSON (`--json`).
Everything it knows comes from a broker through `broker/admin/client.py`; nothing reads the
data directory or the bucket.

Guarantees: exit 0 on success; an unreachable broker, a Kafka error or an unknown group
is one line on stderr and exit 1; bad arguments exit 2 (the caller's parser). Lag is the
log end offset (high watermark) minus the committed offset, and is null/"-" for a
partition with no committed offset.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidelog.broker.admin.client import (
    AdminClient,
    AdminConnectionError,
    AdminError,
    GroupDescription,
    parse_bootstrap,
)
from tidelog.broker.commands import SubCommand

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
BOOTSTRAP_ENV = "TIDELOG_BOOTSTRAP"
DEAD = "Dead"


class GroupNotFound(Exception):
    """The coordinator has neither live state nor committed offsets for the group."""


# -- arguments -------------------------------------------------------------------------


def _bootstrap(value: str) -> str:
    try:
        parse_bootstrap(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def add_bootstrap_and_json(
    parser: argparse.ArgumentParser, who: str = "broker to ask"
) -> argparse.ArgumentParser:
    """`--bootstrap` (alias Kafka's `--bootstrap-server`) and `--json`: what every admin
    command (groups, topics, transactions) takes."""
    parser.add_argument(
        "--bootstrap-server",
        "--bootstrap",
        dest="bootstrap",
        type=_bootstrap,
        default=None,
        metavar="HOST:PORT",
        help=f"{who} [env {BOOTSTRAP_ENV}; default {DEFAULT_BOOTSTRAP}]",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def add_groups_arguments(groups: argparse.ArgumentParser, parser_class: type[Any]) -> None:
    """Fill in the `groups` sub-parser: `list` and `describe GROUP`."""
    sub = groups.add_subparsers(
        dest="groups_command", metavar="ACTION", parser_class=parser_class, required=True
    )
    add_bootstrap_and_json(sub.add_parser("list", help="list the consumer groups"))
    describe = sub.add_parser(
        "describe", help="a group's members, assignments, committed offsets and lag"
    )
    describe.add_argument("group", metavar="GROUP")
    add_bootstrap_and_json(describe)


def resolve_bootstrap(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """--bootstrap, else TIDELOG_BOOTSTRAP, else the default; ValueError if malformed."""
    value: str = args.bootstrap or env.get(BOOTSTRAP_ENV) or DEFAULT_BOOTSTRAP
    parse_bootstrap(value)
    return value


# -- the consumer protocol's assignment ------------------------------------------------


def decode_assignment(data: bytes) -> dict[str, list[int]] | None:
    """{topic: partitions} from ConsumerProtocolAssignment bytes; None if malformed.

    Layout: version int16, topics [name string, partitions int32 array], user data bytes
    (ignored). Later versions only append fields, so any version >= 0 is read this far.
    """
    try:
        version, count = struct.unpack_from(">hi", data, 0)
        if version < 0 or count < 0:
            return None
        offset, out = 6, dict[str, list[int]]()
        for _ in range(count):
            (name_len,) = struct.unpack_from(">h", data, offset)
            offset += 2
            if name_len < 0 or offset + name_len > len(data):
                return None
            name = data[offset : offset + name_len].decode("utf-8")
            offset += name_len
            (n,) = struct.unpack_from(">i", data, offset)
            if n < 0:
                return None
            partitions = struct.unpack_from(f">{n}i", data, offset + 4)
            offset += 4 + 4 * n
            out.setdefault(name, []).extend(partitions)
        return {t: sorted(ps) for t, ps in out.items()}
    except (struct.error, UnicodeDecodeError):
        return None


# -- the report ------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed_offset: int | None
    log_end_offset: int
    lag: int | None
    member_id: str | None


def _assignments(group: GroupDescription) -> dict[str, dict[str, list[int]] | None]:
    if group.protocol_type != "consumer":
        return {m.member_id: None for m in group.members}
    return {
        m.member_id: decode_assignment(m.assignment) if m.assignment else {} for m in group.members
    }


def describe_report(client: AdminClient, group_id: str) -> dict[str, Any]:
    """Everything `describe` prints, as JSON-ready data; raises GroupNotFound."""
    group = client.describe_group(group_id)
    committed = {(c.topic, c.partition): c.offset for c in client.committed_offsets(group_id)}
    if group.state == DEAD and not committed:
        raise GroupNotFound(f"group not found group={group_id}")
    assignments = _assignments(group)
    owner = {
        (topic, p): member_id
        for member_id, assigned in assignments.items()
        for topic, parts in (assigned or {}).items()
        for p in parts
    }
    keys = sorted(set(committed) | set(owner))
    ends = client.log_end_offsets(keys)
    lags = [_lag(key, committed.get(key, -1), ends[key], owner.get(key)) for key in keys]
    return {
        "group_id": group.group_id,
        "state": group.state,
        "protocol_type": group.protocol_type,
        "protocol": group.protocol,
        "members": [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "host": m.client_host,
                "assignment": assignments[m.member_id],
            }
            for m in group.members
        ],
        "partitions": [vars(lag) for lag in lags],
        "total_lag": sum(lag.lag for lag in lags if lag.lag is not None),
    }


def _lag(key: tuple[str, int], committed: int, end: int, member: str | None) -> PartitionLag:
    if committed < 0:
        return PartitionLag(key[0], key[1], None, end, None, member)
    return PartitionLag(key[0], key[1], committed, end, max(end - committed, 0), member)


# -- rendering -------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(header), *[["-" if c in (None, "") else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _render_assignment(assignment: dict[str, list[int]] | None) -> str:
    if assignment is None:
        return "?"
    return " ".join(f"{t}:{','.join(map(str, ps))}" for t, ps in sorted(assignment.items())) or "-"


def render_describe(report: dict[str, Any]) -> str:
    lines = [
        f"group {report['group_id']}  state {report['state']}  protocol "
        f"{report['protocol_type'] or '-'}/{report['protocol'] or '-'}  "
        f"members {len(report['members'])}  total lag {report['total_lag']}",
        "",
    ]
    if report["members"]:
        members: list[tuple[object, ...]] = [
            (m["member_id"], m["client_id"], m["host"], _render_assignment(m["assignment"]))
            for m in report["members"]
        ]
        lines += [table(("MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT"), members), ""]
    rows = [
        (p["topic"], p["partition"], p["committed_offset"], p["log_end_offset"], p["lag"],
         p["member_id"])
        for p in report["partitions"]
    ]  # fmt: skip
    lines.append(table(("TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER"), rows))
    return "\n".join(lines)


def list_report(client: AdminClient) -> list[dict[str, Any]]:
    out = []
    for g in client.list_groups():
        members = len(client.describe_group(g.group_id).members)
        out.append({**vars(g), "members": members})
    return out


def render_list(groups: list[dict[str, Any]]) -> str:
    rows = [(g["group_id"], g["state"], g["protocol_type"] or "-", g["members"]) for g in groups]
    return table(("GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS"), rows)


# -- entry point -----------------------------------------------------------------------


def run_groups(args: argparse.Namespace) -> int:
    """Run `tidelog groups ...` and return the exit code."""
    prog = f"tidelog groups {args.groups_command}"
    try:
        bootstrap = resolve_bootstrap(args, os.environ)
    except ValueError as exc:
        print(f"{prog}: error: {exc} (from {BOOTSTRAP_ENV})", file=sys.stderr)
        return 2

    def query() -> tuple[Any, str]:
        with AdminClient(bootstrap) as client:
            if args.groups_command == "list":
                listing = list_report(client)
                return listing, render_list(listing)
            described = describe_report(client, args.group)
            return described, render_describe(described)

    return print_answer(prog, args.json, query, (GroupNotFound,))


def print_answer(
    prog: str,
    as_json: bool,
    query: Callable[[], tuple[Any, str]],
    also: tuple[type[Exception], ...] = (),
) -> int:
    """The tail every admin command shares: run `query` (data, text), print the data as
    JSON or the text, exit 0; an unreachable broker, a Kafka error or one of `also` is
    one line on stderr and exit 1."""
    caught: tuple[type[Exception], ...] = (AdminConnectionError, AdminError, *also)
    try:
        data, text = query()
    except caught as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2) if as_json else text)
    return 0


COMMAND = SubCommand(
    order=10,
    help="list consumer groups, describe one with its lag",
    description="Consumer groups, read from a broker over the Kafka protocol.",
    add_arguments=add_groups_arguments,
    run=run_groups,
)
