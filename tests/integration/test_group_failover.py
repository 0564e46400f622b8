"""Consumer groups across crashes: a member killed with SIGKILL, and a broker replaced.

A librdkafka member in its own process commits synchronously after each record and is
then killed with SIGKILL: once its session times out, the surviving member takes over
its partitions and resumes exactly at the committed offsets (at-least-once: the records
after the last commit may come again, nothing before it does). A broker killed with
SIGKILL and replaced (object mode: a new node id with an empty data dir on the same
bucket; WAL mode: a new node id on the same data dir) keeps every committed offset,
so a new consumer of the group reads only what came after them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.group_member import GroupMember
from tests.integration.test_clients import FAST_GROUP, create_topic, topic_name

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 25.0

# The member that gets killed: one JSON line per event on stdout. "processing" is
# printed before the synchronous commit of that record, "committed" after it.
VICTIM = """
import json, sys, time
from confluent_kafka import Consumer
bootstrap, group, topic, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def say(**event):
    print(json.dumps(event), flush=True)
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "victim"}
                    | json.loads(sys.argv[5]))
consumer.subscribe(
    [topic],
    on_assign=lambda c, ps: say(assigned=sorted(p.partition for p in ps)),
    on_revoke=lambda c, ps: say(revoked=sorted(p.partition for p in ps)),
)
while True:
    msg = consumer.poll(0.1)
    if msg is None:
        continue
    if msg.error():
        say(error=str(msg.error()))
        continue
    say(processing=[msg.partition(), msg.offset()])
    time.sleep(delay)  # the work done for one record
    consumer.commit(message=msg, asynchronous=False)
    say(committed=[msg.partition(), msg.offset() + 1])
"""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("group-failover") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def group_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(bootstrap: str, topic: str, partitions: int, count: int, tag: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(partitions):
        for i in range(count):
            producer.produce(topic, value=f"{tag}-{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        wanted = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(wanted, timeout=10)}
    finally:
        consumer.close()


def wait_for(done: Callable[[], bool], what: str, tick: Callable[[], None]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE_S}s waiting for {what}")
        tick()


class VictimProcess:
    """The member in a child process; a thread collects its JSON events."""

    def __init__(self, bootstrap: str, group: str, topic: str, delay_s: float) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        args = [bootstrap, group, topic, str(delay_s), json.dumps(FAST_GROUP)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", VICTIM, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def assigned(self) -> set[int]:
        owned: set[int] = set()
        for event in self.snapshot():
            if "assigned" in event:
                owned = set(event["assigned"])
            elif "revoked" in event:
                owned = set()
        return owned

    def commits(self) -> int:
        return sum("committed" in e for e in self.snapshot())

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def last(self, kind: str) -> dict[int, int]:
        """Per partition, the offset after the last record with this event kind."""
        out: dict[int, int] = {}
        for event in self.snapshot():
            if kind in event:
                partition, offset = event[kind]
                out[partition] = offset + (1 if kind == "processing" else 0)
        return out


def test_a_sigkilled_members_partitions_resume_from_its_committed_offsets(
    broker: BrokerProcess,
) -> None:
    partitions, per_partition = 4, 30
    topic, group = topic_name("victim"), group_name("victim")
    create_topic(broker, topic, partitions=partitions)
    victim = VictimProcess(broker.bootstrap, group, topic, delay_s=0.05)
    survivor = GroupMember(broker.bootstrap, group, topic, "survivor")
    try:

        def split() -> bool:
            mine, theirs = survivor.assigned, victim.assigned()
            return bool(mine and theirs) and mine | theirs == set(range(partitions))

        wait_for(split, "the victim and the survivor to share the partitions", survivor.poll)
        victims_partitions = victim.assigned()
        produce(broker.bootstrap, topic, partitions, per_partition, "rec")
        wait_for(lambda: victim.commits() >= 5, "the victim to commit 5 records", survivor.poll)
        victim.kill()
        processed, acked = victim.last("processing"), victim.last("committed")
        assert acked, "the victim was killed before it committed anything"
        assert sum(acked.values()) < per_partition * len(victims_partitions), (
            "the victim finished before it was killed: nothing left to take over"
        )

        def took_over() -> bool:
            return survivor.assigned == set(range(partitions)) and all(
                survivor.offsets(p)[-1:] == [per_partition - 1] for p in range(partitions)
            )

        wait_for(took_over, "the survivor to take over and read to the end", survivor.poll)
        # The survivor does not commit: what is committed now is what the victim left.
        left = committed(broker.bootstrap, group, topic, partitions)
        for p in victims_partitions:
            # A commit the victim sent just before SIGKILL may have landed unreported.
            assert left[p] in {acked.get(p, -1001), processed.get(p, -1001)}, (p, left, acked)
            start = max(left[p], 0)
            assert survivor.offsets(p) == list(range(start, per_partition)), (
                f"partition {p}: committed {left[p]}, survivor read {survivor.offsets(p)}"
            )
        for p in set(range(partitions)) - victims_partitions:
            assert survivor.offsets(p) == list(range(per_partition))  # never committed
    finally:
        if victim.proc.poll() is None:
            victim.kill()
        survivor.consumer.close()
    assert "handler failed" not in broker.output()


def consume_in_group(
    bootstrap: str, group: str, topic: str, count: int
) -> tuple[list[tuple[int, int]], Consumer]:
    """Subscribes and reads `count` records; returns them and the still-open consumer."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group} | FAST_GROUP)
    consumer.subscribe([topic])
    got: list[tuple[int, int]] = []

    def poll() -> None:
        msg = consumer.poll(0.1)
        if msg is not None:
            if msg.error():
                raise KafkaException(msg.error())
            got.append((msg.partition(), msg.offset()))

    try:
        wait_for(lambda: len(got) >= count, f"{count} records in group {group}", poll)
    except BaseException:
        consumer.close()
        raise
    return got, consumer


@pytest.mark.parametrize("durability", ["object", "wal"])
def test_committed_group_offsets_survive_kill_9_and_replacement(
    tmp_path: Path, durability: str
) -> None:
    partitions, before, after = 3, 10, 5
    topic, group = topic_name("replaced"), group_name("replaced")
    bucket = f"file://{tmp_path / 'bucket'}"
    args = ["--durability", durability, "--object-store", bucket]
    first = BrokerProcess(tmp_path / "a", node_id=1, args=args).start()
    try:
        create_topic(first, topic, partitions=partitions)
        produce(first.bootstrap, topic, partitions, before, "old")
        got, consumer = consume_in_group(first.bootstrap, group, topic, partitions * before)
        try:
            assert sorted(got) == [(p, o) for p in range(partitions) for o in range(before)]
            result = consumer.commit(asynchronous=False)  # the positions: `before` everywhere
            assert result is not None and [tp.error for tp in result] == [None] * partitions
        finally:
            consumer.close()
        produce(first.bootstrap, topic, partitions, after, "new")
    finally:
        first.kill()
    # object: anywhere, empty data dir; wal: the WAL volume handed to the replacement.
    data_dir = tmp_path / ("fresh" if durability == "object" else "a")
    with BrokerProcess(data_dir, node_id=7, args=[*args, "--replace", "1"]) as second:
        assert committed(second.bootstrap, group, topic, partitions) == dict.fromkeys(
            range(partitions), before
        )
        got, consumer = consume_in_group(second.bootstrap, group, topic, partitions * after)
        consumer.close()
        expected = [(p, o) for p in range(partitions) for o in range(before, before + after)]
        assert sorted(got) == expected, second.output()[-4000:]
        assert "handler failed" not in second.output()
