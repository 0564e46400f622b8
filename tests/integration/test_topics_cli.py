"""`tidelog topics list|describe|create|delete|alter`, the installed script run as a
subprocess against a real broker.

Records are produced and deleted with kafka-python, and what the command changed is
read back with kafka-python too, so these tests pin both sides: what the command shows
(partitions, leaders, log start and end offsets, configs) and that its changes are real
for another client. Failures are one line on stderr: exit 1 for a refused request or an
unreachable broker, exit 2 for a bad argument.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from tests.integration.broker_process import BrokerProcess, free_port
from tests.integration.test_clients import topic_name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIDELOG = Path(sys.executable).parent / "tidelog"  # the installed entry point


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("topics-cli") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def tidelog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TIDELOG), *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def topics(broker: BrokerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return tidelog("topics", *args, "--bootstrap", broker.bootstrap)


def topics_json(broker: BrokerProcess, *args: str) -> Any:
    result = topics(broker, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    return line


def produce(broker: BrokerProcess, topic: str, counts: dict[int, int]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        futures = [
            producer.send(topic, value=f"v{i}".encode(), partition=p)
            for p, n in counts.items()
            for i in range(n)
        ]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)
    finally:
        producer.close()


def kafka_admin(broker: BrokerProcess) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap)


def overrides_seen_by_kafka_python(broker: BrokerProcess, topic: str) -> dict[str, str]:
    admin = kafka_admin(broker)
    try:
        answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    return {name: c["value"] for name, c in answer["topic"][topic].items()}  # modified only


def partition_count_seen_by_kafka_python(broker: BrokerProcess, topic: str) -> int:
    admin = kafka_admin(broker)
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    return len(described["partitions"])


def offsets(report: dict[str, Any]) -> dict[int, tuple[int, int]]:
    return {
        p["partition"]: (p["log_start_offset"], p["log_end_offset"]) for p in report["partitions"]
    }


def test_create_then_list_and_describe_show_partitions_configs_and_offsets(
    broker: BrokerProcess,
) -> None:
    topic = topic_name("cli")
    configs = ["--config", "retention.ms=3600000", "--config", "max.message.bytes=200000"]
    created = topics(broker, "create", topic, "--partitions", "3", "--replication-factor", "1",
                     *configs)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines()[0].split() == ["TOPIC", "CHANGE", "STATUS"]
    assert overrides_seen_by_kafka_python(broker, topic) == {
        "retention.ms": "3600000",
        "max.message.bytes": "200000",
    }

    listed = {t["name"]: t for t in topics_json(broker, "list")}
    assert listed[topic]["partitions"] == 3
    assert listed[topic]["replication_factor"] == 1
    assert listed[topic]["internal"] is False
    text = topics(broker, "list")
    assert text.returncode == 0, text.stderr
    assert [topic, "3", "1"] in [line.split() for line in text.stdout.splitlines()]

    produce(broker, topic, {0: 5, 1: 3})
    admin = kafka_admin(broker)
    try:
        admin.delete_records({KafkaTopicPartition(topic, 0): 2})
    finally:
        admin.close()

    (report,) = topics_json(broker, "describe", topic)
    assert report["name"] == topic
    assert offsets(report) == {0: (2, 5), 1: (0, 3), 2: (0, 0)}
    assert {(p["leader"], tuple(p["replicas"])) for p in report["partitions"]} == {(1, (1,))}
    assert base64.urlsafe_b64decode(report["topic_id"] + "==") == (
        uuid.UUID(report["topic_uuid"]).bytes
    )
    assert report["configs"] == [
        {"name": "max.message.bytes", "value": "200000", "source": "DYNAMIC_TOPIC_CONFIG"},
        {"name": "retention.ms", "value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG"},
    ]
    (everything,) = topics_json(broker, "describe", topic, "--all-configs")
    sources = {c["name"]: c["source"] for c in everything["configs"]}
    assert sources["retention.ms"] == "DYNAMIC_TOPIC_CONFIG"
    assert sources["segment.bytes"] == "DEFAULT_CONFIG"

    described = topics(broker, "describe", topic)
    assert described.returncode == 0, described.stderr
    lines = described.stdout.splitlines()
    assert lines[lines.index("SUMMARY") + 2].split() == ["NAME", topic]
    assert ["TOPIC-ID", report["topic_id"]] in [line.split() for line in lines]
    start = lines.index("PARTITIONS")
    assert [line.split() for line in lines[start + 3 :]] == [
        ["0", "1", str(report["partitions"][0]["leader_epoch"]), "1", "2", "5"],
        ["1", "1", str(report["partitions"][1]["leader_epoch"]), "1", "0", "3"],
        ["2", "1", str(report["partitions"][2]["leader_epoch"]), "1", "0", "0"],
    ]


def test_alter_sets_and_deletes_configs_and_grows_partitions(broker: BrokerProcess) -> None:
    topic = topic_name("alter")
    assert topics(broker, "create", topic, "--partitions", "2",
                  "--config", "cleanup.policy=compact").returncode == 0  # fmt: skip
    altered = topics(broker, "alter", topic, "--config", "retention.ms=5000",
                     "--delete-config", "cleanup.policy", "--partitions", "5")  # fmt: skip
    assert altered.returncode == 0, altered.stderr
    assert overrides_seen_by_kafka_python(broker, topic) == {"retention.ms": "5000"}
    assert partition_count_seen_by_kafka_python(broker, topic) == 5
    (report,) = topics_json(broker, "describe", topic)
    assert sorted(offsets(report)) == [0, 1, 2, 3, 4]
    assert report["configs"] == [
        {"name": "retention.ms", "value": "5000", "source": "DYNAMIC_TOPIC_CONFIG"}
    ]


def test_a_refused_alter_changes_nothing_and_names_the_error(broker: BrokerProcess) -> None:
    topic = topic_name("refused")
    assert topics(broker, "create", topic, "--partitions", "2").returncode == 0
    bad_config = topics(broker, "alter", topic, "--config", "retention.ms=abc",
                        "--partitions", "4")  # fmt: skip
    line = one_error_line(bad_config, 1)
    assert line.startswith(f"tidelog topics alter: error: alter configs topic={topic} failed "
                           "error=INVALID_CONFIG code=40 message=")  # fmt: skip
    assert "config=retention.ms" in line
    assert partition_count_seen_by_kafka_python(broker, topic) == 2  # validated first
    shrink = topics(broker, "alter", topic, "--partitions", "1", "--config", "retention.ms=9")
    assert "error=INVALID_PARTITIONS code=37" in one_error_line(shrink, 1)
    assert overrides_seen_by_kafka_python(broker, topic) == {}


def test_delete_removes_the_topic_and_then_it_is_unknown(broker: BrokerProcess) -> None:
    topic = topic_name("delete")
    assert topics(broker, "create", topic).returncode == 0
    deleted = topics_json(broker, "delete", topic)
    assert deleted["name"] == topic
    assert topic not in {t["name"] for t in topics_json(broker, "list")}
    unknown = "error=UNKNOWN_TOPIC_OR_PARTITION code=3"
    assert unknown in one_error_line(topics(broker, "describe", topic), 1)
    assert unknown in one_error_line(topics(broker, "delete", topic), 1)
    again = topics(broker, "alter", topic, "--config", "retention.ms=1")
    assert unknown in one_error_line(again, 1)


def test_creating_an_existing_topic_is_topic_already_exists(broker: BrokerProcess) -> None:
    topic = topic_name("exists")
    assert topics(broker, "create", topic).returncode == 0
    line = one_error_line(topics(broker, "create", topic), 1)
    assert line.startswith(
        f"tidelog topics create: error: create topic={topic} failed "
        "error=TOPIC_ALREADY_EXISTS code=36 message="
    )


@pytest.mark.parametrize(
    "action",
    [
        ["list"],
        ["describe", "t"],
        ["create", "t"],
        ["delete", "t"],
        ["alter", "t", "--partitions", "2"],
    ],
)
def test_unreachable_broker_is_one_line_error_and_exit_1(action: list[str]) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    line = one_error_line(tidelog("topics", *action, "--bootstrap", bootstrap), 1)
    assert line == (
        f"tidelog topics {action[0]}: error: cannot connect bootstrap={bootstrap} "
        "reason=Connection refused"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["topics"],
        ["topics", "create", "t", "--config", "foo"],
        ["topics", "create", "t", "--replication-factor", "3"],
        ["topics", "alter", "t"],
        ["topics", "list", "--bootstrap", "nohost"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str]) -> None:
    one_error_line(tidelog(*args), 2)
