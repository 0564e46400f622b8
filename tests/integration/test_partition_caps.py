"""Partition caps: `--max-partitions-per-topic` and `--max-partitions`.

CreateTopics, CreatePartitions and auto-create check a partition count before anything
is allocated (a CreatePartitions to 2^31-1 once built a list of 2^31 keys), with
`validate_only` running the same checks: a count that is not positive or is over the
per-topic cap is INVALID_PARTITIONS, one that would take the cluster past its total is
POLICY_VIOLATION (Kafka's code for a broker-side policy). Nothing refused persists.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import ConfigResource

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import admin
from tests.integration.topic_requests import (
    create_partitions,
    create_topic,
    create_topics,
    metadata,
    partition_counts,
    unique,
)
from tidelog.protocol.errors import ErrorCode

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("partition-caps") / "data") as b:
        yield b
    assert b.proc is not None and b.proc.returncode == 0, b.output()


@pytest.mark.parametrize("count", [1_000_000, 2**31 - 1])
def test_create_partitions_past_the_per_topic_cap_is_invalid_partitions_and_nothing_persists(
    tmp_path: Path, count: int
) -> None:
    first = BrokerProcess(tmp_path / "data").start()
    try:
        assert create_topic(first.bootstrap, "grow", 1)[0] == ErrorCode.none
        for validate_only in (True, False):
            ((code, message),) = create_partitions(
                first.bootstrap, [("grow", count)], validate_only=validate_only
            )
            assert code == ErrorCode.invalid_partitions
            assert message is not None and "max_partitions_per_topic=10000" in message
        assert partition_counts(first.bootstrap)["grow"] == 1
    finally:
        assert first.stop() == 0
    with BrokerProcess(tmp_path / "data", port=first.port) as second:
        assert partition_counts(second.bootstrap)["grow"] == 1


@pytest.mark.parametrize("validate_only", [False, True], ids=["create", "validate-only"])
@pytest.mark.parametrize("count", [0, -5, 1_000_000, 2**31 - 1])
def test_create_topics_with_a_zero_negative_or_huge_count_is_invalid_partitions(
    broker: BrokerProcess, count: int, validate_only: bool
) -> None:
    name = unique("count")
    code, message = create_topic(broker.bootstrap, name, count, validate_only=validate_only)
    assert code == ErrorCode.invalid_partitions
    assert message is not None and f"partitions={count}" in message
    assert name not in partition_counts(broker.bootstrap)


def test_partition_caps_bound_create_topics_create_partitions_and_auto_create(
    tmp_path: Path,
) -> None:
    args = [
        "--max-partitions-per-topic",
        "8",
        "--max-partitions",
        "20",
        "--default-partitions",
        "4",
    ]
    with BrokerProcess(tmp_path / "data", args=args) as b:
        boot = b.bootstrap
        # One topic over the per-topic cap: INVALID_PARTITIONS, created or validated.
        for validate_only in (True, False):
            code, message = create_topic(boot, "nine", 9, validate_only=validate_only)
            assert code == ErrorCode.invalid_partitions
            assert message is not None and "max_partitions_per_topic=8" in message
        # Two topics that fit alone but not together: the second is refused.
        for validate_only in (True, False):
            results = create_topics(
                boot, [("a", 8, {}), ("b", 8, {}), ("c", 5, {})], validate_only=validate_only
            )
            assert [r[0] for r in results] == [
                ErrorCode.none,
                ErrorCode.none,
                ErrorCode.policy_violation,
            ]
            message = results[2][1]
            assert message is not None and "max_partitions=20" in message
        assert partition_counts(boot) == {"a": 8, "b": 8}
        # Growing: past the per-topic cap, then past the cluster cap.
        assert create_partitions(boot, [("a", 9)])[0][0] == ErrorCode.invalid_partitions
        assert create_topic(boot, "c", 2)[0] == ErrorCode.none  # 18 of 20
        for validate_only in (True, False):
            ((code, message),) = create_partitions(boot, [("c", 5)], validate_only=validate_only)
            assert code == ErrorCode.policy_violation
            assert message is not None and "max_partitions=20" in message
        # Auto-create (4 partitions) does not fit either: Metadata says why.
        (topic,) = metadata(boot, ["auto"]).topics
        assert topic.error_code == ErrorCode.policy_violation
        assert create_partitions(boot, [("c", 4)])[0][0] == ErrorCode.none  # exactly 20
        assert partition_counts(boot) == {"a": 8, "b": 8, "c": 4}
        broker_cfg = ConfigResource(ConfigResource.Type.BROKER, "1")
        client = admin(b)  # alive until its futures complete
        configs = client.describe_configs([broker_cfg])[broker_cfg].result(30)
        assert configs["tidelog.max.partitions"].value == "20"
        assert configs["tidelog.max.partitions.per.topic"].value == "8"


@pytest.mark.parametrize(
    ("args", "env", "source"),
    [
        (["--max-partitions", "0"], {}, "--max-partitions"),
        (["--max-partitions-per-topic", "many"], {}, "--max-partitions-per-topic"),
        ([], {"TIDELOG_MAX_PARTITIONS": "-1"}, "TIDELOG_MAX_PARTITIONS"),
        ([], {"TIDELOG_MAX_PARTITIONS_PER_TOPIC": "1e3"}, "TIDELOG_MAX_PARTITIONS_PER_TOPIC"),
        (
            ["--default-partitions", "9", "--max-partitions-per-topic", "8"],
            {},
            "--default-partitions",
        ),
        (["--default-partitions", "9", "--max-partitions", "8"], {}, "--default-partitions"),
    ],
)
def test_a_bad_partition_cap_is_a_one_line_error_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], source: str
) -> None:
    serve = [sys.executable, "-m", "tidelog.broker.cli", "serve", "--listen", "127.0.0.1:0"]
    proc = subprocess.run(
        [*serve, "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"invalid value for {source}" in lines[0], proc.stderr
