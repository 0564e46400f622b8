"""A quixstreams state changelog, compacted by the broker, restores the app's state.

The exactly-once quixstreams app of tests/integration/quix_app.py keeps per key a
count and a sum; quixstreams writes every update to a changelog topic it creates with
`cleanup.policy=compact`. The changelog's segments are set to roll at once
(IncrementalAlterConfigs on the live topic, as an operator would) and the broker runs
with the default `log.retention.check.interval.ms` (five minutes) and a short
`--log-cleaner-backoff-ms`, so only the cleaner pass can compact it within the test.
Once it has, the changelog read from the start holds one record per state key, not
one per update (the 304-records-for-100-keys of issue 14); an app on an empty state
dir restores from it and carries on with the right count and sum for every key.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic
from tests.integration.test_quixstreams_eos import (
    PARTITIONS,
    OutputWatch,
    QuixApp,
    read_all,
    wait_for,
)
from tests.integration.test_txn_durability import broker_args

pytestmark = pytest.mark.integration

INPUT, OUTPUT, APP_NAME = "cl-input", "cl-output", "sums-cl"
KEYS = 40
VERSIONS = 4
# Keeps writing to every partition, so that the main keys' updates are never the newest
# data of their changelog partition (the newest segment is never cleaned).
LATER = "later"
CLEANER = ["--log-cleaner-backoff-ms", "200"]


def produce(bootstrap: str, items: list[tuple[str, int]], partition: int = -1) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in items:
        producer.produce(INPUT, key=key, value=json.dumps(value).encode(), partition=partition)
    assert producer.flush(60) == 0


def changelog_topic(admin: AdminClient) -> str:
    names = [t for t in admin.list_topics(timeout=30).topics if t.startswith("changelog__")]
    assert len(names) <= 1, names
    return names[0] if names else ""


def roll_at_once(admin: AdminClient, topic: str) -> None:
    entries = [
        ConfigEntry("segment.ms", "1", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry(
            "min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET
        ),
    ]
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    configs = next(iter(described.values())).result(timeout=30)
    assert configs["cleanup.policy"].value == "compact"  # quixstreams's own choice
    assert configs["segment.ms"].value == "1"


def changelog_keys(bootstrap: str, topic: str) -> Counter[bytes]:
    """How many records each key has in the changelog, read_committed from the start."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "changelog-verify",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in tps}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        counts: Counter[bytes] = Counter()

        def done() -> bool:
            return all(tp.offset >= ends[tp.partition] for tp in consumer.position(tps))

        def poll() -> None:
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    raise KafkaException(msg.error())
                counts[msg.key()] += 1

        wait_for(f"{topic} read to its end {ends}", done, poll)
        return counts
    finally:
        consumer.close()


def assert_prefix_sums(bootstrap: str) -> None:
    """Every output is its key's count and running sum of the inputs so far."""
    sums: dict[str, list[int]] = defaultdict(list)
    for _, key, value in read_all(bootstrap, INPUT, committed=False):
        sums[key].append(sums[key][-1] + int(value) if sums[key] else int(value))
    outputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, key, value in read_all(bootstrap, OUTPUT, committed=True):
        outputs[key].append(value)
    assert sorted(outputs) == sorted(sums)
    for key, want in sums.items():
        got = [(o["seq"], o["sum"]) for o in outputs[key]]
        assert got == [(i + 1, s) for i, s in enumerate(want)], key


def test_a_compacted_quixstreams_changelog_holds_one_record_per_key_and_restores(
    tmp_path: Path,
) -> None:
    args = broker_args(tmp_path, "wal") + CLEANER
    with BrokerProcess(tmp_path / "data", args=args) as broker:
        create_topic(broker, INPUT, partitions=PARTITIONS)
        create_topic(broker, OUTPUT, partitions=PARTITIONS)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        broker_cfg = ConfigResource(ResourceType.BROKER, "1")
        described = admin.describe_configs([broker_cfg])[broker_cfg].result(timeout=30)
        assert described["log.cleaner.backoff.ms"].value == "200"
        assert described["log.retention.check.interval.ms"].value == "300000"
        app = QuixApp(tmp_path, broker.bootstrap, APP_NAME, topics=(INPUT, OUTPUT))
        watch = OutputWatch(broker.bootstrap, OUTPUT)
        try:
            app.start()
            wait_for("quixstreams creates its changelog", lambda: bool(changelog_topic(admin)))
            changelog = changelog_topic(admin)
            roll_at_once(admin, changelog)
            main_keys = [f"acct-{k:02d}" for k in range(KEYS)]
            for version in range(VERSIONS):
                produce(broker.bootstrap, [(key, version * 10 + i) for i, key in
                                           enumerate(main_keys)])  # fmt: skip
            wait_for("every output", lambda: watch.count >= KEYS * VERSIONS)
            # quixstreams writes each of a key's two state values (count, sum) per update.
            before = changelog_keys(broker.bootstrap, changelog)
            assert len(before) == 2 * KEYS and set(before.values()) != {1}
            later = [0.0]

            def write_later() -> None:
                if time.monotonic() - later[0] > 1.0:
                    for p in range(PARTITIONS):
                        produce(broker.bootstrap, [(f"{LATER}-{p}", 1)], partition=p)
                    later[0] = time.monotonic()

            def one_record_per_key() -> bool:
                counts = changelog_keys(broker.bootstrap, changelog)
                main = {k: n for k, n in counts.items() if LATER.encode() not in k}
                return len(main) == 2 * KEYS and set(main.values()) == {1}

            wait_for("the cleaner compacts the changelog", one_record_per_key, write_later)
            app.kill()
            outputs_so_far = watch.count
            app.use_state_dir(tmp_path / "state-1")  # empty: restored from the changelog
            app.start()
            produce(broker.bootstrap, [(key, 1000) for key in main_keys])
            wait_for("outputs after the restore", lambda: watch.count >= outputs_so_far + KEYS)
            app.kill()
            assert_prefix_sums(broker.bootstrap)
        finally:
            app.kill()
            watch.close()
