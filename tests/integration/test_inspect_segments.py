"""`tidelog inspect` shows each partition's segments and what the next lifecycle pass
would do, on what a real broker left in the bucket.

A first broker runs passes every 100 ms and rolls a compacted topic's records into two
segment objects (a day of `min.compaction.lag.ms` keeps the cleaner off them); it is
restarted with passes an hour apart, the lag is set to 0 and a delete topic gets records
an hour old: the next pass, were it to run, would compact both segments, roll the new
active chunk and drop every record of the delete topic. Time is never waited for: old
records carry old timestamps.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_alter_configs import alter_error
from tests.integration.test_clients import admin, topic_name
from tests.integration.test_inspect_cli import inspect, inspect_json
from tests.integration.test_retention import HOUR_MS, create, segment_objects, wait_for
from tests.integration.test_txn_durability import broker_args

pytestmark = pytest.mark.integration
NO_PASS = ["--log-retention-check-interval-ms", "3600000"]


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], ts: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for key, value in records:
        producer.produce(topic, key=key, value=value, partition=0, timestamp=ts)
        producer.flush(60)  # one batch each
    assert producer.flush(60) == 0


def set_config(broker: BrokerProcess, topic: str, name: str, value: str) -> None:
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", topic, incremental_configs=[entry])
    assert alter_error(admin(broker).incremental_alter_configs([resource])) is None


def row_of(text: str, topic: str) -> list[str]:
    """The partitions table's cells for `topic`."""
    table = text.split("\nPARTITIONS\n", 1)[1].split("\n\n", 1)[0]
    [row] = [r for r in table.splitlines() if r.split()[0] == topic]
    return re.split(r"\s{2,}", row.strip())


def test_inspect_shows_segments_and_what_the_next_pass_would_remove(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    bucket = f"file://{tmp_path / 'bucket'}"
    passes = [*broker_args(tmp_path, "object"), "--log-retention-check-interval-ms", "100"]
    broker = BrokerProcess(tmp_path / "data", args=passes).start()
    brokers.append(broker)
    compacted, deleted = topic_name("inspect-compact"), topic_name("inspect-delete")
    configs = {"cleanup.policy": "compact", "segment.ms": "1", "min.compaction.lag.ms": "86400000"}
    create(broker, compacted, configs)
    old = int(time.time() * 1000) - HOUR_MS
    produce(broker.bootstrap, compacted, [(b"k0", b"a")], old)  # one chunk: one segment
    wait_for("a first segment object", lambda: len(segment_objects(tmp_path)) == 1)
    produce(broker.bootstrap, compacted, [(b"k0", b"b")], old)
    wait_for("a second segment object", lambda: len(segment_objects(tmp_path)) == 2)
    assert broker.stop() == 0

    broker = BrokerProcess(tmp_path / "data", port=broker.port, args=passes + NO_PASS).start()
    brokers.append(broker)
    set_config(broker, compacted, "min.compaction.lag.ms", "0")
    produce(broker.bootstrap, compacted, [(b"k1", b"f")], old)
    create(broker, deleted, {"retention.ms": "600000"})
    produce(broker.bootstrap, deleted, [(b"x", b"1"), (b"y", b"2"), (b"z", b"3")], old)
    assert broker.stop() == 0

    report = inspect_json("--object-store", bucket)
    parts: dict[str, dict[str, Any]] = {p["topic"]: p for p in report["partitions"]}
    comp, dele = parts[compacted], parts[deleted]
    on_disk = sum(p.stat().st_size for p in segment_objects(tmp_path))
    assert (comp["log_start"], comp["end_offset"], comp["cleaned_end"]) == (0, 3, 0)
    assert (comp["segments"], comp["segment_bytes"], comp["active_chunks"]) == (2, on_disk, 1)
    assert comp["active_bytes"] == comp["bytes"] - on_disk
    assert comp["next_pass"] == {
        "retention_log_start": None,  # compact only: retention never runs
        "retention_records": 0,
        "retention_bytes": 0,
        "would_roll_chunks": 1,  # an hour old, segment.ms 1
        "would_roll_bytes": comp["active_bytes"],
        "would_compact_segments": 2,  # both below the newest data, lag 0
        "would_compact_bytes": on_disk,
    }
    listed = [(s["base_offset"], s["end_offset"], bool(s["key"])) for s in comp["segment_list"]]
    assert listed == [(0, 1, True), (1, 2, True), (2, 3, False)]
    assert (dele["segments"], dele["active_chunks"], dele["end_offset"]) == (0, 3, 3)
    assert dele["next_pass"] == {
        "retention_log_start": 3,  # the whole active segment is past retention.ms
        "retention_records": 3,
        "retention_bytes": dele["bytes"],
        "would_roll_chunks": 0,  # retention leaves nothing to roll
        "would_roll_bytes": 0,
        "would_compact_segments": 0,
        "would_compact_bytes": 0,
    }

    done = inspect("--object-store", bucket, "--segments")
    assert done.returncode == 0, done.stderr
    header = row_of(done.stdout, "TOPIC")
    assert header[-5:] == ["SEGMENTS", "ACTIVE", "NEXT START", "ROLL", "COMPACT"]
    comp_row, dele_row = row_of(done.stdout, compacted), row_of(done.stdout, deleted)
    segments, active = f"2 ({size_text(on_disk)})", f"1 ({size_text(comp['active_bytes'])})"
    assert comp_row[-5:] == [segments, active, "-", active, segments]
    assert dele_row[-3:] == [f"3 (-3 rec, {size_text(dele['bytes'])})", "-", "-"]
    for segment in comp["segment_list"][:2]:
        assert re.search(rf"{re.escape(segment['key'])}\s+{segment['base_offset']}\s", done.stdout)


def size_text(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB"
