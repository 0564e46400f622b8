"""A librdkafka group member for tests: what it owns, what it read, every callback.

Owns: one subscribed confluent-kafka Consumer with the fast group settings. `assigned`
is its current partition set (eager: replaced on each assign; cooperative-sticky:
added to and taken from), `callbacks` every rebalance callback in order, `records`
what it read in the current generation as (partition, offset, value).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from tests.integration.test_clients import FAST_GROUP


class GroupMember:
    def __init__(self, bootstrap: str, group: str, topic: str, name: str, **config: str) -> None:
        self.name = name
        self.assigned: set[int] = set()
        self.callbacks: list[tuple[str, list[int]]] = []
        self.records: list[tuple[int, int, bytes | None]] = []
        self.cooperative = config.get("partition.assignment.strategy") == "cooperative-sticky"
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name}
            | FAST_GROUP
            | config
        )
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        got = sorted(tp.partition for tp in partitions)
        self.callbacks.append(("assign", got))
        if self.cooperative:
            self.assigned |= set(got)  # only the partitions added
        else:
            self.assigned = set(got)  # the full new assignment
            self.records = []  # a new generation reads from the committed offsets again

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = sorted(tp.partition for tp in partitions)
        self.callbacks.append(("revoke", gone))
        self.assigned -= set(gone)

    def poll(self) -> None:
        msg = self.consumer.poll(0.05)
        if msg is None:
            return
        if msg.error():
            raise KafkaException(msg.error())
        self.records.append((msg.partition(), msg.offset(), msg.value()))

    def offsets(self, partition: int) -> list[int]:
        """The offsets read from `partition` in this generation, in order."""
        return [o for p, o, _ in self.records if p == partition]


def poll_until(
    members: Sequence[GroupMember], done: Callable[[], bool], what: str, deadline_s: float = 20.0
) -> None:
    """Poll every member until `done`, or fail saying what was awaited and the state."""
    deadline = time.monotonic() + deadline_s
    while not done():
        if time.monotonic() > deadline:
            state = {m.name: (sorted(m.assigned), m.callbacks, len(m.records)) for m in members}
            raise AssertionError(f"timed out waiting for {what}: {state}")
        for m in members:
            m.poll()
