"""How the txn drill reads its output topic: while the drill runs, and once at the end.

Owns: `Tail`, a read_committed confluent-kafka consumer that hands out the output topic
as it grows (what an application downstream of the pipeline would see); `LsoProbe`, raw
read_committed Fetch requests (sent with `broker/admin/client.py`) that keep, for every
batch a response returned, the last stable offset and high watermark that same response
reported (a client never shows the two together); and `read_outputs`, every record of
the topic from offset 0 to its high watermark, read_committed or read_uncommitted.
Both background readers ride out a broker being killed and restarted (they reconnect).
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any, Self

from tidelog.broker.admin.client import AdminClient, AdminConnectionError
from tidelog.broker.drills.load import LOAD_TIMEOUT_S
from tidelog.broker.drills.processes import DrillError
from tidelog.broker.drills.txn_check import FetchedBatch, Output, parse_output

FETCH_API, FETCH_VERSION = 1, 4  # v4: the first with isolation_level and last_stable_offset
FETCH_WAIT = datetime.timedelta(milliseconds=100)
RECONNECT_S = 0.1
POLL_S = 0.2


def _consumer(bootstrap: str, committed: bool) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "tidelog-drill-txn-verify",
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 200,
            "log_level": 2,
        }
    )


def _assign_from_start(consumer: Any, topic: str, partitions: int) -> None:
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])


class _Background:
    """A reader in a daemon thread: `with` starts it, leaving the block stops it."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        raise NotImplementedError


class Tail(_Background):
    """A read_committed consumer of `topic` in a thread, from offset 0 until `stop`."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__("drill-txn-tail")
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.records: list[Output] = []

    def _run(self) -> None:
        consumer = _consumer(self.bootstrap, committed=True)
        _assign_from_start(consumer, self.topic, self.partitions)
        try:
            while not self._stop.is_set():
                msg = consumer.poll(POLL_S)
                if msg is not None and msg.error() is None:
                    self.records.append(parse_output(msg.partition(), msg.offset(), msg.value()))
        finally:
            consumer.close()


class LsoProbe(_Background):
    """Raw read_committed fetches of every partition of `topic` in a thread, each from
    where the last one ended, until `stop`; `batches` holds what they returned."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__("drill-txn-lso")
        self.bootstrap = bootstrap
        self.topic, self.partitions = topic, partitions
        self.batches: list[FetchedBatch] = []
        self.fetches = 0
        self._next = dict.fromkeys(range(partitions), 0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with AdminClient(self.bootstrap, timeout=5) as client:
                    while not self._stop.is_set():
                        self._fetch(client)
            except AdminConnectionError:
                self._stop.wait(RECONNECT_S)  # the broker is down: it comes back

    def _fetch(self, client: AdminClient) -> None:
        from tidelog.protocol.batch import iter_batches

        self.fetches += 1
        response = client.call(self._request())
        for topic in response.responses:
            for part in topic.partitions:
                if part.error_code != 0 or not part.records:
                    continue
                p = int(part.partition_index)
                lso, high = int(part.last_stable_offset), int(part.high_watermark)
                for _, header in iter_batches(part.records, allow_partial=True):
                    self.batches.append(
                        FetchedBatch(p, header.base_offset, header.last_offset, lso, high)
                    )
                    self._next[p] = max(self._next[p], header.next_offset)

    def _request(self) -> Any:
        from tidelog.protocol.messages import build, request_module

        m = request_module(FETCH_API, FETCH_VERSION)
        parts = tuple(
            build(m, "FetchPartition", partition=p, fetch_offset=off, partition_max_bytes=1 << 20)
            for p, off in sorted(self._next.items())
        )
        topic = build(m, "FetchTopic", topic=self.topic, partitions=parts)
        return build(
            m,
            "FetchRequest",
            replica_id=-1,
            max_wait=FETCH_WAIT,
            min_bytes=1,
            max_bytes=1 << 22,
            isolation_level=1,
            topics=(topic,),
        )


def read_outputs(bootstrap: str, topic: str, partitions: int, *, committed: bool) -> list[Output]:
    """Every record of `topic` from 0 to each partition's high watermark (read_committed:
    to the LSO, which must have reached it), in offset order per partition."""
    from confluent_kafka import KafkaError, TopicPartition

    consumer = _consumer(bootstrap, committed)
    try:
        high = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1]
            for p in range(partitions)
        }
        _assign_from_start(consumer, topic, partitions)
        out: dict[int, list[Output]] = {p: [] for p in range(partitions)}
        done = {p for p in range(partitions) if high[p] == 0}
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while len(done) < partitions:
            if time.monotonic() > deadline:
                level = "read_committed" if committed else "read_uncommitted"
                raise DrillError(
                    f"{level} read-back stalled topic={topic} high={high} done={sorted(done)}"
                )
            msg = consumer.poll(POLL_S)
            if msg is None:
                continue
            p = msg.partition()
            if msg.error() is None:
                if msg.offset() < high[p]:
                    out[p].append(parse_output(p, msg.offset(), msg.value()))
            elif msg.error().code() == KafkaError._PARTITION_EOF:
                position = consumer.position([TopicPartition(topic, p)])[0].offset
                if position >= high[p]:
                    done.add(p)
        return [r for p in range(partitions) for r in out[p]]
    finally:
        consumer.close()


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Each partition's high watermark now."""
    from confluent_kafka import TopicPartition

    consumer = _consumer(bootstrap, committed=False)
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1]
            for p in range(partitions)
        }
    except Exception as exc:  # KafkaException
        raise DrillError(f"high watermarks unknown topic={topic} error={exc}") from exc
    finally:
        consumer.close()
