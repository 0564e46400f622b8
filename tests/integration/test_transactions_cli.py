"""`tidelog transactions list|describe|producers` against a real broker and a real
transactional producer (confluent-kafka).

The producer opens a transaction over two partitions and holds it open; the CLI, which
only speaks the Kafka protocol, must show it Ongoing with those partitions, the open
transaction's first offset per partition, and CompleteCommit once it commits. The
failure cases pin the one-line errors and exit codes.

A Kafka admin client's view is checked with kafka-python's KafkaAdminClient (3.0 has
list_transactions, describe_transactions, describe_producers). confluent-kafka 2.16's
AdminClient has none of them (librdkafka has no KIP-664 admin APIs yet); a test says
so and fails once it gains them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, TopicPartition

from tests.integration.broker_process import BrokerProcess, free_port
from tests.integration.test_clients import create_topic, topic_name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("txn-cli") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def tidelog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def as_json(broker: BrokerProcess, *args: str) -> Any:
    result = tidelog("transactions", *args, "--bootstrap-server", broker.bootstrap, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def transactional_producer(broker: BrokerProcess, txn_id: str) -> Producer:
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "transactional.id": txn_id,
            "transaction.timeout.ms": 120_000,
        }
    )
    producer.init_transactions(30)
    return producer


def test_an_open_transaction_is_ongoing_with_its_partitions_then_complete_commit(
    broker: BrokerProcess,
) -> None:
    topic = topic_name("txn")
    create_topic(broker, topic, partitions=PARTITIONS)
    txn_id = f"cli-{uuid.uuid4().hex[:8]}"
    producer = transactional_producer(broker, txn_id)
    try:
        producer.begin_transaction()
        for i in range(4):
            producer.produce(topic, value=f"v{i}".encode(), partition=2 * (i % 2))
        assert producer.flush(30) == 0  # the records are in; the transaction stays open

        described = as_json(broker, "describe", txn_id)
        assert described["state"] == "Ongoing"
        assert described["partitions"] == [[topic, 0], [topic, 2]]
        assert described["coordinator"] == 1
        assert described["start_ms"] > 0 and described["timeout_ms"] == 120_000
        pid, epoch = described["producer_id"], described["producer_epoch"]

        listed = {t["transactional_id"]: t for t in as_json(broker, "list")}
        assert listed[txn_id] == {
            "transactional_id": txn_id,
            "producer_id": pid,
            "state": "Ongoing",
            "coordinator": 1,
        }
        ongoing = as_json(broker, "list", "--state", "Ongoing", "--producer-id", str(pid))
        assert [t["transactional_id"] for t in ongoing] == [txn_id]

        table = tidelog("transactions", "describe", txn_id, "--bootstrap", broker.bootstrap)
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.splitlines()
        assert header.split()[:5] == ["COORDINATOR", "TRANSACTIONAL-ID", "PRODUCER-ID", "EPOCH",
                                      "STATE"]  # fmt: skip
        assert row.split()[1:5] == [txn_id, str(pid), str(epoch), "Ongoing"]
        assert row.split()[-1] == f"{topic}-0,{topic}-2"

        producers = as_json(broker, "producers", topic, "0")
        (state,) = [p for p in producers["producers"] if p["producer_id"] == pid]
        assert (state["producer_epoch"], state["last_sequence"]) == (epoch, 1)
        assert state["txn_start_offset"] == 0  # the open transaction holds the LSO here
        untouched = as_json(broker, "producers", topic, "1")
        assert untouched["producers"] == []

        producer.commit_transaction(30)
    finally:
        del producer  # confluent-kafka closes on collection

    deadline = time.monotonic() + 30  # the completion follows EndTxn's answer
    done = as_json(broker, "describe", txn_id)
    while done["state"] != "CompleteCommit" and time.monotonic() < deadline:
        done = as_json(broker, "describe", txn_id)
    assert (done["state"], done["partitions"], done["start_ms"]) == ("CompleteCommit", [], -1)
    listed = {t["transactional_id"]: t["state"] for t in as_json(broker, "list")}
    assert listed[txn_id] == "CompleteCommit"
    assert txn_id not in {t["transactional_id"] for t in as_json(broker, "list", "--state",
                                                                   "Ongoing")}  # fmt: skip
    after = as_json(broker, "producers", topic, "0")
    (state,) = [p for p in after["producers"] if p["producer_id"] == pid]
    assert state["txn_start_offset"] == -1


def test_list_table_has_one_row_per_id(broker: BrokerProcess) -> None:
    txn_id = f"table-{uuid.uuid4().hex[:8]}"
    producer = transactional_producer(broker, txn_id)
    del producer
    result = tidelog("transactions", "list", "--bootstrap-server", broker.bootstrap)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"]
    (row,) = [line.split() for line in lines[1:] if line.split()[0] == txn_id]
    assert (row[1], row[3]) == ("1", "Empty")


def test_kafka_python_admin_client_reads_the_same_transaction(broker: BrokerProcess) -> None:
    """A third-party KIP-664 client (kafka-python's KafkaAdminClient) decodes our answers
    and routes them as Kafka's tool does: every broker, the coordinator, the leader."""
    topic = topic_name("txn-kp")
    create_topic(broker, topic, partitions=2)
    txn_id = f"kp-{uuid.uuid4().hex[:8]}"
    producer = transactional_producer(broker, txn_id)
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        producer.begin_transaction()
        producer.produce(topic, value=b"v", partition=1)
        assert producer.flush(30) == 0
        by_broker = client.list_transactions(state_filters=["Ongoing"])
        listed = {t.transactional_id: t for rows in by_broker.values() for t in rows}
        assert listed[txn_id].state == "Ongoing"
        described = client.describe_transactions([txn_id])[txn_id]
        assert (described.coordinator_id, described.state) == (1, "Ongoing")
        assert described.topic_partitions == {TopicPartition(topic, 1)}
        assert described.producer_id == listed[txn_id].producer_id
        assert described.transaction_start_time_ms > 0
        states = client.describe_producers([TopicPartition(topic, 1)])
        (active,) = states[TopicPartition(topic, 1)].active_producers
        assert (active.producer_id, active.current_transaction_start_offset) == (
            described.producer_id,
            0,
        )
        producer.commit_transaction(30)
        # EndTxn answers at PrepareCommit; the completion follows the markers.
        deadline = time.monotonic() + 30
        done = client.describe_transactions([txn_id])[txn_id]
        while done.state != "CompleteCommit" and time.monotonic() < deadline:
            time.sleep(0.05)
            done = client.describe_transactions([txn_id])[txn_id]
        assert (done.state, done.topic_partitions) == ("CompleteCommit", set())
    finally:
        client.close()
        del producer


def test_confluent_kafka_admin_client_has_no_transaction_queries_yet() -> None:
    """confluent-kafka (2.16: librdkafka has no KIP-664 admin APIs) cannot list or
    describe transactions. When it can, this fails: test it like kafka-python above."""
    assert not hasattr(AdminClient, "list_transactions")
    assert not hasattr(AdminClient, "describe_transactions")


def test_unknown_id_is_one_line_error_and_exit_1(broker: BrokerProcess) -> None:
    result = tidelog("transactions", "describe", "no-such-id", "--bootstrap", broker.bootstrap)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "tidelog transactions describe: error: describe transactional_id=no-such-id failed "
        "error=transactional_id_not_found code=105"
    ]


def test_unknown_partition_is_one_line_error_and_exit_1(broker: BrokerProcess) -> None:
    result = tidelog("transactions", "producers", "no-such-topic", "0",
                     "--bootstrap", broker.bootstrap)  # fmt: skip
    assert (result.returncode, result.stdout) == (1, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith("tidelog transactions producers: error: metadata topic=no-such-topic")
    assert "error=unknown_topic_or_partition" in line


@pytest.mark.parametrize("action", [["list"], ["describe", "x"], ["producers", "t", "0"]])
def test_unreachable_broker_is_one_line_error_and_exit_1(action: list[str]) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    result = tidelog("transactions", *action, "--bootstrap-server", bootstrap)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.endswith(f"error: cannot connect bootstrap={bootstrap} reason=Connection refused")


def test_bad_arguments_exit_2() -> None:
    result = tidelog("transactions", "list", "--state", "Running")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
