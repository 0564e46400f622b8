"""`tidelog inspect` shows what a real broker left in the bucket and in its WAL.

A broker on a `file://` bucket gets a topic, records (confluent-kafka) and a group
offset; after it stops (or is killed with data only in its WAL) `inspect --json` runs as
its own process and must agree with what was produced. The table rendering is also
pinned on a hand-built report, without sockets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic
from tidelog.broker.admin.inspect import (
    BrokerView,
    ChunkView,
    CommitView,
    GroupOffsetView,
    Head,
    PartitionView,
    Report,
    WalPartitionView,
    WalView,
    render_report,
)

TOPIC = "orders"
PARTITIONS = 2


def produce(broker: BrokerProcess, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(per_partition * PARTITIONS):
        producer.produce(TOPIC, value=b"v%d" % i, partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def commit_offset(broker: BrokerProcess, group: str, partition: int, offset: int) -> None:
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        consumer.commit(offsets=[TopicPartition(TOPIC, partition, offset)], asynchronous=False)
    finally:
        consumer.close()


def inspect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "inspect", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def inspect_json(*args: str) -> dict[str, Any]:
    done = inspect("--json", *args)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def chunk_offsets(report: dict[str, Any], partition: int) -> list[tuple[int, int]]:
    return [
        (c["base_offset"], c["end_offset"])
        for commit in report["commits"]
        if commit["status"] == "effective"
        for c in commit["chunks"]
        if c["topic"] == TOPIC and c["partition"] == partition
    ]


@pytest.mark.integration
def test_inspect_shows_owner_partitions_chunks_and_group_offsets(tmp_path: Path) -> None:
    bucket = f"file://{tmp_path}/bucket"
    broker = BrokerProcess(tmp_path / "data", args=["--object-store", bucket]).start()
    try:
        create_topic(broker, TOPIC, PARTITIONS)
        produce(broker, 5)
        produce(broker, 3)
        commit_offset(broker, "billing", 1, 4)
    finally:
        assert broker.stop() == 0

    report = inspect_json("--object-store", bucket)

    head = report["head"]
    assert (head["members"], head["streams"]) == (0, 1)  # it left the cluster on SIGTERM
    brokers = [(b["node"], b["epoch"], b["status"], b["partitions"]) for b in report["brokers"]]
    assert brokers == [(1, 0, "left", PARTITIONS)]  # joined at seq 0; still owns its keys
    ends = {(p["topic"], p["partition"]): p["end_offset"] for p in report["partitions"]}
    assert ends == {(TOPIC, 0): 8, (TOPIC, 1): 8}
    for partition in range(PARTITIONS):
        offsets = chunk_offsets(report, partition)
        assert offsets[0][0] == 0 and offsets[-1][1] == 8
        assert all(a[1] == b[0] for a, b in pairwise(offsets))
    data_objects = [c for c in report["commits"] if c["chunks"]]
    assert data_objects and all(
        c["size"] > sum(ch["bytes"] for ch in c["chunks"]) for c in data_objects
    )
    groups = [
        (g["group"], g["topic"], g["partition"], g["offset"]) for g in report["group_offsets"]
    ]
    assert groups == [("billing", TOPIC, 1, 4)]


@pytest.mark.integration
def test_inspect_reports_records_only_in_the_wal_after_kill_9(tmp_path: Path) -> None:
    bucket = f"file://{tmp_path}/bucket"
    data_dir = tmp_path / "data"
    args = ["--object-store", bucket, "--flush-interval-ms", "3600000"]
    broker = BrokerProcess(data_dir, args=args).start()
    try:
        create_topic(broker, TOPIC, PARTITIONS)
        produce(broker, 5)
        commit_offset(broker, "billing", 0, 5)  # an offset commit uploads the data with it
        produce(broker, 3)  # acked from the WAL; the next flush is an hour away
    finally:
        broker.kill()
    wal_files_before = sorted(p.read_bytes() for p in (data_dir / "wal").iterdir())

    report = inspect_json("--object-store", bucket, "--data-dir", str(data_dir))

    ends = {p["partition"]: p["end_offset"] for p in report["partitions"]}
    assert ends == {0: 5, 1: 5}
    wal = {p["partition"]: p for p in report["wal"]["partitions"]}
    for partition in range(PARTITIONS):
        assert wal[partition]["committed_end"] == 5
        assert wal[partition]["wal_end"] == 8
        assert wal[partition]["only_in_wal"] == 3
        assert wal[partition]["status"] == "only-in-wal"
    assert sorted(p.read_bytes() for p in (data_dir / "wal").iterdir()) == wal_files_before


@pytest.mark.integration
def test_inspect_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    missing = inspect("--object-store", f"file://{tmp_path}/nope")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    empty = inspect("--object-store", f"file://{empty_dir}")
    malformed = inspect("--object-store", "ftp://x")

    assert (missing.returncode, empty.returncode, malformed.returncode) == (1, 1, 2)
    for done in (missing, empty, malformed):
        assert done.stderr.startswith("tidelog inspect: error: ")
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "nope").exists()  # read-only: nothing created


def test_render_report_shows_each_section_as_a_table() -> None:
    report = Report(
        Head("file:///b", 3, "abc", 1, 2, 1, 1000, -1, 4, 2048),
        [
            BrokerView(1, 0, "s1", "member", 1, 3, 1_000, 2_500),
            BrokerView(2, 1, "s2", "fenced", 0, 2, 900, 2_600),
        ],
        [PartitionView(TOPIC, "tid", 0, 1, "s1", 0, 8, 1, 200)],
        [
            CommitView("s2", 2, "log/2", 300, 2, -1, 900, "orphan", [], []),
            CommitView(
                "s1",
                3,
                "log/3",
                700,
                1,
                0,
                1_000,
                "effective",
                [{"op": "offsets", "group": "g", "ts": 1, "offsets": [[TOPIC, 0, 3, -1, None]]}],
                [ChunkView(TOPIC, 0, 0, 8, 200)],
            ),
        ],
        [GroupOffsetView("g", TOPIC, 0, 3, None, 1)],
        WalView("/d/wal", ["0.wal"], [], [WalPartitionView(TOPIC, 0, 5, 8, 5, 3, "only-in-wal")]),
    )

    text = render_report(report)

    assert "brokers        1 in the cluster, 2 streams in the bucket" in text
    assert "  2     1      fenced  0           2            2.6s ago" in text
    assert "  orders  0          1      0      8    1       200 B" in text
    assert "  s1   3    1     effective  700 B  offsets group=g partitions=1" in text
    assert "\n" + " " * 36 + "orders-0 [0, 8) 200 B" in text
    assert "  orders  0          [5, 8)       5           3            only-in-wal" in text
    assert "WAL /d/wal (1 files)" in text
