"""DescribeLogDirs (35) through kafka-python's admin client, on real brokers: two brokers
on one bucket name the same log dir, the object store, and between them list every
partition once, each with its bytes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from kafka import KafkaAdminClient

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic, topic_name

pytestmark = pytest.mark.integration
DEADLINE_S = 120  # generous: a busy machine; the condition ends the wait
PARTITIONS = 4


def wait_for(what: str, probe: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        answer = probe()
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {answer}"
        time.sleep(0.1)


def produce(bootstrap: str, topic: str, per_partition: int, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, value=b"x" * 100 + b"%d" % i, partition=p)
    assert producer.flush(60) == 0


def listed(answer: list[dict[str, Any]], topic: str) -> list[tuple[int, str, int, int]]:
    """(broker, log dir, partition, size) of every partition of `topic` in the answer."""
    out: list[tuple[int, str, int, int]] = []
    for per_broker in answer:
        for log_dir in per_broker["log_dirs"]:
            assert log_dir["error_code"] == 0
            for t in log_dir["topics"]:
                if t["name"] == topic:
                    out.extend(
                        (per_broker["broker"], log_dir["log_dir"], p["partition_index"],
                         p["partition_size"])
                        for p in t["partitions"]
                    )  # fmt: skip
    return out


def test_two_brokers_list_each_partition_once_in_the_object_store_dir(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    bucket = tmp_path / "bucket"
    args = ["--object-store", f"file://{bucket}"]
    one = BrokerProcess(tmp_path / "one", node_id=1, args=args).start()
    brokers.append(one)
    two = BrokerProcess(tmp_path / "two", node_id=2, args=args).start()
    brokers.append(two)
    topic = topic_name("logdirs")
    create_topic(one, topic, partitions=PARTITIONS)
    produce(one.bootstrap, topic, per_partition=5, partitions=PARTITIONS)

    kp = KafkaAdminClient(bootstrap_servers=[one.bootstrap, two.bootstrap])
    try:

        def once_each(rows: list[tuple[int, str, int, int]]) -> bool:
            counts = Counter(p for _, _, p, _ in rows)
            return sorted(counts) == list(range(PARTITIONS)) and set(counts.values()) == {1}

        wanted = {topic: list(range(PARTITIONS))}
        rows = wait_for(
            "every partition listed once by its leader",
            lambda: listed(kp.describe_log_dirs(wanted), topic),
            once_each,
        )
        assert {d for _, d, _, _ in rows} == {bucket.resolve().as_uri()}
        assert all(size > 5 * 100 for _, _, _, size in rows)  # 5 records of 100+ bytes
        # null topics: every partition of every topic, here ours among them
        every = wait_for(
            "every partition listed once, topics null",
            lambda: listed(kp.describe_log_dirs(None), topic),
            once_each,
        )
        assert {p for _, _, p, _ in every} == set(range(PARTITIONS))
    finally:
        kp.close()
