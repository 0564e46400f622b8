"""The drill's Kafka clients: the load, the read-back and the committed-offsets probe.

Owns: every confluent-kafka client a drill uses. `Load` produces payments in a thread
with an idempotent acks=all producer, paced so a failure lands mid-load, for a number of
records or a duration, and keeps every delivery report with the moment it arrived.
`read_back` reads every partition from 0 to its high watermark. `commit_offsets` commits
a consumer group's offsets (one per partition) and `committed_offsets` reads them back,
so a drill can show that they survived the failure.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from broker.drills.processes import DrillError
from broker.drills.records import Ack, Payment, ReadRecord

TOPIC = "payments"
PARTITIONS = 6
RECORDS_PER_S = 5_000
LOAD_TIMEOUT_S = 120.0
OFFSETS_GROUP = "tidelog-drill-offsets"


@dataclass
class Load:
    """Produces `payments` until `records` are sent or `duration_s` has passed."""

    bootstrap: str
    payments: Iterator[Payment]
    records: int | None
    duration_s: float | None
    producer_config: dict[str, Any] = field(default_factory=dict)
    acks: list[tuple[float, Ack]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    unflushed: int = 0
    started: float = 0.0
    _acked: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="drill-load", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> bool:
        assert self._thread is not None
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def acked(self) -> int:
        return len(self.acks)

    def describe(self) -> str:
        return f"load: sent={self.sent} acked={self.acked()} delivery_errors={len(self.errors)}"

    def wait_for_fraction(self, fraction: float, timeout: float = LOAD_TIMEOUT_S) -> None:
        """Block until `fraction` of the load is acked (or, for a duration, has elapsed)."""
        if self.records is not None:
            target = max(1, int(self.records * fraction))
            self._wait_acks(target, timeout)
            return
        assert self.duration_s is not None
        time.sleep(max(0.0, self.started + self.duration_s * fraction - time.monotonic()))
        self._wait_acks(1, timeout)

    def wait_for_acks_after(self, moment: float, timeout: float) -> bool:
        """True once a record acked at or after `moment` arrived; False on timeout."""
        with self._acked:
            return self._acked.wait_for(
                lambda: bool(self.acks) and self.acks[-1][0] >= moment, timeout
            )

    def _wait_acks(self, target: int, timeout: float) -> None:
        with self._acked:
            if not self._acked.wait_for(lambda: len(self.acks) >= target, timeout):
                raise DrillError(f"load stalled acked={len(self.acks)} target={target}")

    def check_running(self) -> None:
        """Raise DrillError if the load is already over: a failure now would prove nothing."""
        assert self._thread is not None
        over = not self._thread.is_alive()
        if self.records is not None:
            over = over or self.acked() >= self.records
        if self.duration_s is not None:
            over = over or time.monotonic() - self.started >= self.duration_s
        if over:
            raise DrillError(
                f"the load ended before the failure acked={self.acked()}; "
                "give more --records or a longer --duration"
            )

    def _run(self) -> None:
        from confluent_kafka import Producer

        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 60_000,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 200,
                # a failure's "connection refused" lines are expected; delivery errors count
                "log_level": 2,
                **self.producer_config,
            }
        )
        payments = self.payments
        if self.records is not None:
            payments = itertools.islice(payments, self.records)
        try:
            for i, payment in enumerate(payments):
                now = time.monotonic()
                if self.duration_s is not None and now - self.started >= self.duration_s:
                    break
                wait = self.started + i / RECORDS_PER_S - now
                if wait > 0:
                    producer.poll(wait)
                self._produce(producer, payment)
                self.sent += 1
        except Exception as exc:  # a fatal producer error: the report must say so
            self.errors.append(f"producer failed error={exc}")
        try:
            self.unflushed = producer.flush(LOAD_TIMEOUT_S)
        except Exception as exc:  # flush raises once the producer is in a fatal state
            self.errors.append(f"producer flush failed error={exc}")
            self.unflushed = len(producer)

    def _produce(self, producer: Any, payment: Payment) -> None:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                self.errors.append(str(err))
                return
            ack = Ack(msg.partition(), msg.offset(), payment.key, payment.seq, payment.value)
            with self._acked:
                self.acks.append((time.monotonic(), ack))
                self._acked.notify_all()

        while True:
            try:
                producer.produce(
                    TOPIC, key=payment.key.encode(), value=payment.value, on_delivery=on_delivery
                )
                producer.poll(0)
                return
            except BufferError:
                producer.poll(0.05)


def create_topic(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    client = AdminClient({"bootstrap.servers": bootstrap})
    futures = client.create_topics([NewTopic(TOPIC, PARTITIONS, 1)], operation_timeout=10)
    try:
        futures[TOPIC].result(timeout=30)
    except Exception as exc:  # KafkaException, or a timeout
        raise DrillError(f"create topic failed topic={TOPIC} error={exc}") from exc


def read_back(bootstrap: str) -> list[ReadRecord]:
    """Every record of every partition from offset 0 to the high watermark, in offset order."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "tidelog-drill-verify",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        high = {
            p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), 30)[1]
            for p in range(PARTITIONS)
        }
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        out: dict[int, list[ReadRecord]] = {p: [] for p in range(PARTITIONS)}
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while any(_next_offset(out[p]) < high[p] for p in range(PARTITIONS)):
            if time.monotonic() > deadline:
                raise DrillError("read-back stalled before the high watermark")
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.offset() < high[msg.partition()]:
                key = (msg.key() or b"").decode()
                record = ReadRecord(msg.partition(), msg.offset(), key, msg.value() or b"")
                out[msg.partition()].append(record)
        return [r for p in range(PARTITIONS) for r in out[p]]
    finally:
        consumer.close()


def _next_offset(records: list[ReadRecord]) -> int:
    return records[-1].offset + 1 if records else 0


def _offsets_consumer(bootstrap: str) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": OFFSETS_GROUP,
            "enable.auto.commit": False,
            "log_level": 2,
        }
    )


def commit_offsets(bootstrap: str) -> dict[int, int]:
    """Commit each partition's current high watermark for OFFSETS_GROUP; returns them."""
    from confluent_kafka import TopicPartition

    consumer = _offsets_consumer(bootstrap)
    try:
        offsets = {
            p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), 30)[1]
            for p in range(PARTITIONS)
        }
        consumer.commit(
            offsets=[TopicPartition(TOPIC, p, off) for p, off in offsets.items()],
            asynchronous=False,
        )
        return offsets
    except Exception as exc:  # KafkaException
        raise DrillError(f"offset commit failed group={OFFSETS_GROUP} error={exc}") from exc
    finally:
        consumer.close()


def committed_offsets(bootstrap: str) -> dict[int, int]:
    """OFFSETS_GROUP's committed offset per partition (-1001 when none is committed)."""
    from confluent_kafka import TopicPartition

    consumer = _offsets_consumer(bootstrap)
    try:
        found = consumer.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], 30)
        return {tp.partition: tp.offset for tp in found}
    except Exception as exc:  # KafkaException
        raise DrillError(f"offset fetch failed group={OFFSETS_GROUP} error={exc}") from exc
    finally:
        consumer.close()
