"""`tidelog topics list|describe|create|delete|alter`: topics, over the Kafka protocol.

Owns: the `topics` sub-command (`COMMAND`, the `tidelog.commands` entry point), its
arguments (Kafka's option names, as `kafka-topics.sh` spells them), the reports it
builds and their rendering as aligned tables (as `rpk topic` prints them) or as one
JSON document (`--json`). Everything it knows and changes goes through
broker/admin/topic_client.py; nothing reads the data directory or the bucket.

Which brokers: everything is asked of the bootstrap broker except the log start and
end offsets, which each partition's leader (from Metadata) answers (ListOffsets
earliest/latest); a partition between leaders shows them as "-"/null.

Guarantees: exit 0 on success; an unreachable broker or a refused request is one line
on stderr naming Kafka's error code (and the broker's message) and exit 1; bad
arguments exit 2 with one line. `alter` first asks the broker to validate every change
(`validate_only`), then applies them, so a refused config leaves the partitions alone.
Topic ids are shown in Kafka's form (URL-safe base64, as kafka-topics.sh prints them);
`--json` also gives the UUID form that `tidelog inspect` shows.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from tidelog.broker.admin.client import EARLIEST, LATEST
from tidelog.broker.admin.groups import (
    BOOTSTRAP_ENV,
    add_bootstrap_and_json,
    print_answer,
    resolve_bootstrap,
    table,
)
from tidelog.broker.admin.topic_client import TopicAdminClient, TopicInfo
from tidelog.broker.commands import SubCommand

NO_REPLICAS = (
    "tidelog keeps one copy of each partition (the object store replicates it): expected 1 or -1"
)

# -- arguments -------------------------------------------------------------------------


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected >= 1, got {number}")
    return number


def _replication_factor(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number not in (1, -1):
        raise argparse.ArgumentTypeError(f"{NO_REPLICAS}, got {value!r}")
    return number


def _config_pair(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key.strip(), val


def _config_key(value: str) -> str:
    if not value.strip() or "=" in value:
        raise argparse.ArgumentTypeError(f"expected a config name, got {value!r}")
    return value.strip()


def _add_config(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--config",
        dest="configs",
        type=_config_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a topic config to {what} (repeatable), e.g. retention.ms=86400000",
    )


def add_topics_arguments(parser: argparse.ArgumentParser, parser_class: type[Any]) -> None:
    """Fill in the `topics` sub-parser: list, describe, create, delete, alter."""
    sub = parser.add_subparsers(
        dest="topics_command", metavar="ACTION", parser_class=parser_class, required=True
    )
    listing = add_bootstrap_and_json(sub.add_parser("list", help="list the topics"))
    listing.add_argument(
        "--exclude-internal", action="store_true", help="leave out Kafka's internal topics"
    )
    describe = sub.add_parser(
        "describe", help="a topic's id, partitions (leader, log start/end offsets) and configs"
    )
    describe.add_argument("topics", nargs="+", metavar="TOPIC")
    describe.add_argument(
        "--all-configs", action="store_true", help="every config, not only the overrides"
    )
    add_bootstrap_and_json(describe)
    create = add_bootstrap_and_json(sub.add_parser("create", help="create a topic"))
    create.add_argument("topic", metavar="TOPIC")
    create.add_argument(
        "--partitions", type=_positive, default=None, metavar="N",
        help="partition count [default: the broker's --default-partitions]",
    )  # fmt: skip
    create.add_argument(
        "--replication-factor", type=_replication_factor, default=-1, metavar="RF",
        help="1 or -1 only: tidelog has no replicas, the object store replicates",
    )  # fmt: skip
    _add_config(create, "set")
    delete = add_bootstrap_and_json(sub.add_parser("delete", help="delete a topic and its records"))
    delete.add_argument("topic", metavar="TOPIC")
    alter = add_bootstrap_and_json(
        sub.add_parser("alter", help="change a topic's configs, add partitions")
    )
    alter.add_argument("topic", metavar="TOPIC")
    _add_config(alter, "set")
    alter.add_argument(
        "--delete-config", dest="delete_configs", type=_config_key, action="append", default=[],
        metavar="KEY", help="a config to set back to its default (repeatable)",
    )  # fmt: skip
    alter.add_argument(
        "--partitions", type=_positive, default=None, metavar="N",
        help="grow the topic to N partitions in all",
    )  # fmt: skip


def config_map(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """{key: value} from --config pairs; ValueError for a key given twice."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"--config given twice key={key}")
        out[key] = value
    return out


def alter_plan(args: argparse.Namespace) -> tuple[dict[str, str], list[str]]:
    """What `alter` sets and deletes; ValueError for nothing to do or a contradiction."""
    sets = config_map(args.configs)
    deletes = list(dict.fromkeys(args.delete_configs))
    both = sorted(set(sets) & set(deletes))
    if both:
        raise ValueError(f"--config and --delete-config name the same key={','.join(both)}")
    if not sets and not deletes and args.partitions is None:
        raise ValueError("nothing to alter: give --config, --delete-config or --partitions")
    return sets, deletes


# -- reports ---------------------------------------------------------------------------


def kafka_topic_id(topic_id: str) -> str:
    """Kafka's string form of a topic id: URL-safe base64 of its 16 bytes, unpadded."""
    raw = uuid.UUID(topic_id).bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _replication(info: TopicInfo) -> int:
    return max((len(p.replicas) for p in info.partitions), default=0)


def list_report(client: TopicAdminClient, exclude_internal: bool) -> list[dict[str, Any]]:
    _, topics = client.metadata(None)
    return [
        {
            "name": t.name,
            "topic_id": kafka_topic_id(t.topic_id),
            "partitions": len(t.partitions),
            "replication_factor": _replication(t),
            "internal": t.internal,
        }
        for t in topics
        if not (exclude_internal and t.internal)
    ]


def _offsets(
    client: TopicAdminClient, brokers: dict[int, str], info: TopicInfo
) -> dict[int, tuple[int, int]]:
    """{partition: (log start, log end)}, each asked of the partition's leader."""
    by_leader: dict[int, list[int]] = {}
    for p in info.partitions:
        if p.leader in brokers:
            by_leader.setdefault(p.leader, []).append(p.partition)
    out: dict[int, tuple[int, int]] = {}
    for leader, partitions in sorted(by_leader.items()):
        keys = [(info.name, p) for p in partitions]
        if brokers[leader] == client.bootstrap:
            starts, ends = client.list_offsets(keys, EARLIEST), client.list_offsets(keys, LATEST)
        else:
            with TopicAdminClient(brokers[leader]) as other:
                starts, ends = other.list_offsets(keys, EARLIEST), other.list_offsets(keys, LATEST)
        out.update({p: (starts[(info.name, p)], ends[(info.name, p)]) for p in partitions})
    return out


def describe_report(client: TopicAdminClient, name: str, all_configs: bool) -> dict[str, Any]:
    brokers, (info,) = client.metadata([name])
    offsets = _offsets(client, brokers, info)
    configs = client.describe_configs(name)
    return {
        "name": info.name,
        "topic_id": kafka_topic_id(info.topic_id),
        "topic_uuid": info.topic_id,
        "internal": info.internal,
        "replication_factor": _replication(info),
        "partitions": [
            {
                "partition": p.partition,
                "leader": p.leader,
                "leader_epoch": p.leader_epoch,
                "replicas": list(p.replicas),
                "isr": list(p.isr),
                "log_start_offset": offsets.get(p.partition, (None, None))[0],
                "log_end_offset": offsets.get(p.partition, (None, None))[1],
            }
            for p in info.partitions
        ],
        "configs": [
            {"name": c.name, "value": c.value, "source": c.source}
            for c in configs
            if all_configs or not c.is_default
        ],
    }


# -- rendering -------------------------------------------------------------------------


def render_list(topics: list[dict[str, Any]]) -> str:
    rows = [(t["name"], t["partitions"], t["replication_factor"]) for t in topics]
    return table(("NAME", "PARTITIONS", "REPLICAS"), rows)


def _nodes(nodes: list[int]) -> str:
    return ",".join(map(str, nodes))


def _pairs(rows: Sequence[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {'-' if v in (None, '') else v}" for k, v in rows)


def render_describe(report: dict[str, Any]) -> str:
    summary = [
        ("NAME", report["name"]),
        ("TOPIC-ID", report["topic_id"]),
        ("INTERNAL", str(report["internal"]).lower()),
        ("PARTITIONS", len(report["partitions"])),
        ("REPLICAS", report["replication_factor"]),
    ]
    configs = [(c["name"], c["value"], c["source"]) for c in report["configs"]]
    partitions = [
        (p["partition"], p["leader"] if p["leader"] >= 0 else None, p["leader_epoch"],
         _nodes(p["replicas"]), p["log_start_offset"], p["log_end_offset"])
        for p in report["partitions"]
    ]  # fmt: skip
    return "\n".join(
        [
            "SUMMARY",
            "=======",
            _pairs(summary),
            "",
            "CONFIGS",
            "=======",
            table(("KEY", "VALUE", "SOURCE"), configs),
            "",
            "PARTITIONS",
            "==========",
            table(
                ("PARTITION", "LEADER", "EPOCH", "REPLICAS", "LOG-START-OFFSET", "HIGH-WATERMARK"),
                partitions,
            ),
        ]
    )


def render_changes(topic: str, changes: list[str]) -> str:
    return table(("TOPIC", "CHANGE", "STATUS"), [(topic, c, "OK") for c in changes])


# -- entry point -----------------------------------------------------------------------


def _create(client: TopicAdminClient, args: argparse.Namespace) -> tuple[Any, str]:
    configs = config_map(args.configs)
    partitions = -1 if args.partitions is None else args.partitions
    topic_id, count = client.create_topic(args.topic, partitions, args.replication_factor, configs)
    data = {"name": args.topic, "topic_id": kafka_topic_id(topic_id), "topic_uuid": topic_id,
            "partitions": count, "replication_factor": 1, "configs": configs}  # fmt: skip
    changes = [f"created partitions={count}", *(f"set {k}={v}" for k, v in configs.items())]
    return data, render_changes(args.topic, changes)


def _alter(client: TopicAdminClient, args: argparse.Namespace) -> tuple[Any, str]:
    sets, deletes = alter_plan(args)
    for validate_only in (True, False):
        if sets or deletes:
            client.alter_configs(args.topic, sets, deletes, validate_only=validate_only)
        if args.partitions is not None:
            client.create_partitions(args.topic, args.partitions, validate_only=validate_only)
    data = {"name": args.topic, "set": sets, "deleted": deletes, "partitions": args.partitions}
    changes = [
        *(f"set {k}={v}" for k, v in sets.items()),
        *(f"delete {k}" for k in deletes),
        *([f"partitions={args.partitions}"] if args.partitions is not None else []),
    ]
    return data, render_changes(args.topic, changes)


def _run(client: TopicAdminClient, args: argparse.Namespace) -> tuple[Any, str]:
    action = args.topics_command
    if action == "list":
        data: Any = list_report(client, args.exclude_internal)
        return data, render_list(data)
    if action == "describe":
        data = [describe_report(client, name, args.all_configs) for name in args.topics]
        return data, "\n\n".join(render_describe(d) for d in data)
    if action == "create":
        return _create(client, args)
    if action == "delete":
        topic_id = client.delete_topic(args.topic)
        data = {"name": args.topic, "topic_id": kafka_topic_id(topic_id), "topic_uuid": topic_id}
        return data, render_changes(args.topic, ["deleted"])
    return _alter(client, args)


def run_topics(args: argparse.Namespace) -> int:
    """Run `tidelog topics ...` and return the exit code."""
    prog = f"tidelog topics {args.topics_command}"
    try:
        bootstrap = resolve_bootstrap(args, os.environ)
    except ValueError as exc:
        print(f"{prog}: error: {exc} (from {BOOTSTRAP_ENV})", file=sys.stderr)
        return 2
    try:
        if args.topics_command == "create":
            config_map(args.configs)
        elif args.topics_command == "alter":
            alter_plan(args)
    except ValueError as exc:
        print(f"{prog}: error: {exc} (see --help)", file=sys.stderr)
        return 2

    def query() -> tuple[Any, str]:
        with TopicAdminClient(bootstrap) as client:
            return _run(client, args)

    return print_answer(prog, args.json, query)


COMMAND = SubCommand(
    order=5,
    help="list, describe, create, delete and alter topics",
    description="Topics, read and changed through a broker over the Kafka protocol.",
    add_arguments=add_topics_arguments,
    run=run_topics,
)
