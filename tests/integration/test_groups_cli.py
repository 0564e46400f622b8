"""`tidelog groups list|describe` run as a subprocess against a real broker.

Offsets are committed and groups joined with confluent-kafka; the CLI only sees the
broker over the Kafka protocol, so these tests pin what it reads back: lag per partition,
members with their decoded assignments, and the exit codes of the failure cases.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess, free_port
from tests.integration.test_clients import create_topic, topic_name
from tidelog.broker.admin.groups import decode_assignment

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3
RECORDS = 30  # 10 per partition
COMMITS = {0: 10, 1: 4, 2: 0}  # so the lags are 0, 6, 10


@dataclass(frozen=True)
class Cluster:
    broker: BrokerProcess
    topic: str
    committed_group: str


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    proc = BrokerProcess(tmp_path_factory.mktemp("groups-cli") / "data")
    with proc:
        topic = topic_name("lag")
        create_topic(proc, topic, partitions=PARTITIONS)
        produce(proc, topic)
        group = f"committed-{uuid.uuid4().hex[:8]}"
        commit(proc, group, topic, COMMITS)
        yield Cluster(proc, topic, group)
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def produce(broker: BrokerProcess, topic: str) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(RECORDS):
        producer.produce(topic, value=f"v{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def commit(broker: BrokerProcess, group: str, topic: str, offsets: dict[int, int]) -> None:
    """A "simple" commit: assign-only, the consumer never joins the group."""
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()


def tidelog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def groups_json(*args: str) -> Any:
    result = tidelog("groups", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def lag_by_partition(report: dict[str, Any], topic: str) -> dict[int, Any]:
    return {
        p["partition"]: (p["committed_offset"], p["log_end_offset"], p["lag"])
        for p in report["partitions"]
        if p["topic"] == topic
    }


def test_describe_reports_lag_per_partition_from_committed_offsets(cluster: Cluster) -> None:
    report = groups_json(
        "describe", cluster.committed_group, "--bootstrap", cluster.broker.bootstrap
    )
    assert report["state"] == "Empty"
    assert report["members"] == []
    assert lag_by_partition(report, cluster.topic) == {
        0: (10, 10, 0),
        1: (4, 10, 6),
        2: (0, 10, 10),
    }
    assert report["total_lag"] == 16


def test_describe_table_shows_each_partition_lag(cluster: Cluster) -> None:
    result = tidelog(
        "groups", "describe", cluster.committed_group, "--bootstrap", cluster.broker.bootstrap
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(cluster.topic)]
    assert [row[:5] for row in rows] == [
        [cluster.topic, "0", "10", "10", "0"],
        [cluster.topic, "1", "4", "10", "6"],
        [cluster.topic, "2", "0", "10", "10"],
    ]


def test_bootstrap_comes_from_the_environment(cluster: Cluster) -> None:
    result = tidelog(
        "groups", "list", "--json", env={"TIDELOG_BOOTSTRAP": cluster.broker.bootstrap}
    )
    assert result.returncode == 0, result.stderr
    assert cluster.committed_group in {g["group_id"] for g in json.loads(result.stdout)}


def test_subscribed_member_is_described_with_its_assignment(cluster: Cluster) -> None:
    group = f"live-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.broker.bootstrap,
            "group.id": group,
            "client.id": "lag-reader",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([cluster.topic])
        wait_for_assignment(consumer, PARTITIONS)
        report = groups_json("describe", group, "--bootstrap", cluster.broker.bootstrap)
        listed = groups_json("list", "--bootstrap", cluster.broker.bootstrap)
    finally:
        consumer.close()
    assert report["state"] == "Stable"
    assert report["protocol_type"] == "consumer"
    (member,) = report["members"]
    assert member["client_id"] == "lag-reader"
    assert member["host"] == "/127.0.0.1"  # as Kafka reports it
    assert member["assignment"] == {cluster.topic: [0, 1, 2]}
    # Nothing committed: the partitions are listed with their owner but no lag.
    assert lag_by_partition(report, cluster.topic) == {p: (None, 10, None) for p in range(3)}
    assert {p["member_id"] for p in report["partitions"]} == {member["member_id"]}
    by_id = {g["group_id"]: g for g in listed}
    assert by_id[group] == {
        "group_id": group,
        "state": "Stable",
        "protocol_type": "consumer",
        "members": 1,
    }
    assert by_id[cluster.committed_group]["state"] == "Empty"
    assert by_id[cluster.committed_group]["members"] == 0


def wait_for_assignment(consumer: Consumer, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        consumer.poll(0.1)
        if len(consumer.assignment()) == count:
            return
    raise AssertionError(f"no assignment of {count} partitions after {timeout} s")


def test_unknown_group_is_one_line_error_and_exit_1(cluster: Cluster) -> None:
    result = tidelog("groups", "describe", "no-such-group", "--bootstrap", cluster.broker.bootstrap)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "tidelog groups describe: error: group not found group=no-such-group"
    ]


@pytest.mark.parametrize("action", [["list"], ["describe", "g"]])
def test_unreachable_broker_is_one_line_error_and_exit_1(action: list[str]) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    result = tidelog("groups", *action, "--bootstrap", bootstrap)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.endswith(f"error: cannot connect bootstrap={bootstrap} reason=Connection refused")


@pytest.mark.parametrize(
    "args", [["groups"], ["groups", "describe"], ["groups", "list", "--bootstrap", "nohost"]]
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    result = tidelog(*args)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1


def _assignment_bytes(topics: dict[str, list[int]], user_data: bytes | None) -> bytes:
    out = struct.pack(">hi", 0, len(topics))
    for name, parts in topics.items():
        out += struct.pack(">h", len(name)) + name.encode()
        out += struct.pack(f">i{len(parts)}i", len(parts), *parts)
    return out + (struct.pack(">i", -1) if user_data is None else struct.pack(">i", 4) + user_data)


def test_assignment_bytes_decode_with_or_without_user_data() -> None:
    topics = {"a": [2, 0], "bb": []}
    assert decode_assignment(_assignment_bytes(topics, None)) == {"a": [0, 2], "bb": []}
    assert decode_assignment(_assignment_bytes(topics, b"user")) == {"a": [0, 2], "bb": []}


def test_truncated_assignment_bytes_decode_as_none() -> None:
    data = _assignment_bytes({"topic": [0, 1, 2]}, None)
    for cut in range(1, len(data) - 4):  # everything short of the user-data field
        assert decode_assignment(data[:cut]) is None, cut
