"""kafkajs (the pure-JavaScript client, on node) as admin and producer against `tidelog serve`.

The node scripts in tests/integration/js/ create topics, produce keyed messages with
headers (plain, gzip, idempotent) and call the admin API; each prints one JSON result.
kafkajs has no assign(): its consumer only reads through a consumer group (JoinGroup,
SyncGroup), so what kafkajs wrote is read back with confluent-kafka by partition and
offset (`consume_all`), and the stored batches are inspected with a raw Fetch; the group
consumer itself (consumer.run, eachMessage, auto commit) has a test of its own. kafkajs 2
is installed once per session with npm into .cache/node/ (git-ignored); without node or
npm these tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import fetch_records
from tests.integration.test_clients import consume_all, create_topic, topic_name
from tidelog.protocol.batch import BatchHeader, Compression, iter_batches

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
JS_DIR = Path(__file__).resolve().parent / "js"
CACHE = REPO / ".cache" / "node"
KAFKAJS = "kafkajs@2"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """kafkajs 2 under .cache/node/node_modules, installed with npm the first time."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the kafkajs tests and are not on PATH")
    modules = CACHE / "node_modules"
    package = modules / "kafkajs" / "package.json"
    if package.is_file() and json.loads(package.read_text())["version"].startswith("2."):
        return modules
    CACHE.mkdir(parents=True, exist_ok=True)
    install = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), KAFKAJS]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 or not package.is_file():
        pytest.fail(
            f"npm install {KAFKAJS} failed code={done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    return modules


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("kafkajs") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def client_errors(stderr: str) -> list[dict[str, Any]]:
    """kafkajs' ERROR log entries, less the one a create of an existing topic logs."""
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [
        e
        for e in entries
        if e["level"] == "ERROR"
        and not (
            e["message"].startswith("Response CreateTopics")
            and e.get("error") == "Topic creation errors"
        )
    ]


def run_js(modules: Path, broker: BrokerProcess, script: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "NODE_PATH": str(modules), "KAFKAJS_NO_PARTITIONER_WARNING": "1"}
    done = subprocess.run(
        ["node", str(JS_DIR / script), broker.bootstrap, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    context = f"stderr:\n{done.stderr}\nbroker log (tail):\n{broker.output()[-4000:]}"
    assert done.returncode == 0, f"node {script} exited {done.returncode}\n{context}"
    assert client_errors(done.stderr) == [], context
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def stored_batches(broker: BrokerProcess, topic: str, partition: int) -> list[BatchHeader]:
    records = fetch_records(broker.bootstrap, topic, partition, 0)
    return [header for _, header in iter_batches(records)]


def expected_records(count: int) -> list[tuple[int, bytes, bytes, list[tuple[str, bytes]]]]:
    """What produce.js writes: message i has key key-(i%5), value value-i, two headers."""
    return [
        (i, b"key-%d" % (i % 5), b"value-%d" % i, [("trace", b"t%d" % i), ("app", b"kafkajs")])
        for i in range(count)
    ]


@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_kafkajs_creates_a_topic_and_produces_keyed_messages_with_headers(
    node_modules: Path, broker: BrokerProcess, codec: str
) -> None:
    topic = topic_name(f"kjs-{codec}")
    args = ["--partitions", "2", "--partition", "1", "--count", "30", "--per-send", "10"]
    out = run_js(node_modules, broker, "produce.js", topic, *args, "--compression", codec)
    assert out["created"] is True
    assert out["createdAgain"] is False  # TOPIC_ALREADY_EXISTS, which kafkajs turns into false
    assert out["partitions"] == [
        {"partitionId": 0, "leader": 1, "errorCode": 0},
        {"partitionId": 1, "leader": 1, "errorCode": 0},
    ]
    assert out["sent"] == [
        {"partition": 1, "errorCode": 0, "baseOffset": str(base)} for base in (0, 10, 20)
    ]
    assert out["offsets"] == [
        {"partition": 0, "offset": "0", "high": "0", "low": "0"},
        {"partition": 1, "offset": "30", "high": "30", "low": "0"},
    ]
    assert consume_all(broker, topic, 1, 30) == expected_records(30)
    batches = stored_batches(broker, topic, 1)
    assert [(b.base_offset, b.records_count) for b in batches] == [(0, 10), (10, 10), (20, 10)]
    assert {b.compression for b in batches} == {Compression[codec.upper()]}
    assert stored_batches(broker, topic, 0) == []


def test_kafkajs_idempotent_producer_sessions_get_their_own_ids_and_sequences(
    node_modules: Path, broker: BrokerProcess
) -> None:
    topic = topic_name("kjs-idem")
    args = [topic, "--idempotent", "--count", "50", "--per-send", "10", "--compression", "gzip"]
    first = run_js(node_modules, broker, "produce.js", *args)
    second = run_js(node_modules, broker, "produce.js", *args)  # a new producer, same topic
    assert (first["created"], second["created"]) == (True, False)
    assert [s["baseOffset"] for s in first["sent"]] == ["0", "10", "20", "30", "40"]
    assert [s["baseOffset"] for s in second["sent"]] == ["50", "60", "70", "80", "90"]
    assert second["offsets"] == [{"partition": 0, "offset": "100", "high": "100", "low": "0"}]
    got = consume_all(broker, topic, 0, 100)
    assert [g[0] for g in got] == list(range(100))  # exactly once: no gaps, no duplicates
    assert [g[1:] for g in got] == [e[1:] for e in expected_records(50) * 2]
    batches = stored_batches(broker, topic, 0)
    assert len(batches) == 10
    first_ids = {(b.producer_id, b.producer_epoch) for b in batches[:5]}
    second_ids = {(b.producer_id, b.producer_epoch) for b in batches[5:]}
    assert len(first_ids) == len(second_ids) == 1 and first_ids != second_ids
    assert min(pid for pid, _ in first_ids | second_ids) >= 0
    # Each session numbers its records from 0, one sequence per record.
    assert [b.base_sequence for b in batches] == [0, 10, 20, 30, 40] * 2


def test_kafkajs_admin_creates_describes_grows_lists_offsets_and_deletes(
    node_modules: Path, broker: BrokerProcess
) -> None:
    topic = topic_name("kjs-admin")
    base = 1_700_000_000_000
    out = run_js(node_modules, broker, "admin.js", topic, str(base))
    assert out["created"] is True
    assert out["listed"] is True
    assert out["configs"] == [{"errorCode": 0, "entries": [["retention.ms", "3600000"]]}]
    assert out["partitionCount"] == 3
    assert out["offsets"] == [
        {"partition": 0, "offset": "10", "high": "10", "low": "0"},
        {"partition": 1, "offset": "0", "high": "0", "low": "0"},
        {"partition": 2, "offset": "0", "high": "0", "low": "0"},
    ]
    # Records 0-9 carry timestamps base, base+1s, ...: the first at or after base+4.5s is 5.
    assert out["byTime"] == [
        {"partition": 0, "offset": "5"},
        {"partition": 1, "offset": "0"},
        {"partition": 2, "offset": "0"},
    ]
    # Past the last record the broker answers -1, which kafkajs replaces by the high watermark.
    assert out["pastEnd"] == [
        {"partition": 0, "offset": "10"},
        {"partition": 1, "offset": "0"},
        {"partition": 2, "offset": "0"},
    ]
    assert out["deleted"] is True
    assert out["listedAfterDelete"] is False


def test_kafkajs_group_consumer_reads_every_record_and_commits(
    node_modules: Path, broker: BrokerProcess
) -> None:
    partitions, per_partition = 3, 8
    topic, group = topic_name("kjs-group"), f"kjs-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic, partitions=partitions)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, value=f"v-{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0
    total = str(partitions * per_partition)
    out = run_js(node_modules, broker, "group_consume.js", topic, group, total)
    got = sorted((m["partition"], int(m["offset"]), m["value"]) for m in out["messages"])
    assert got == [(p, i, f"v-{p}-{i}") for p in range(partitions) for i in range(per_partition)]
    assert out["assigned"] == list(range(partitions))
    assert out["committed"] == [
        {"partition": p, "offset": str(per_partition)} for p in range(partitions)
    ]
