"""The drill's Kafka clients: the load, the read-back and the committed-offsets probe.

Owns: every confluent-kafka client a drill uses. `Load` produces a number of payments
in a thread with an idempotent acks=all producer, paced, and held where the drill's
schedule says (so a failure always lands mid-load, whatever the number), and keeps every
delivery report with the moment it arrived.
`read_back` reads every partition from 0 to its high watermark. `commit_offsets` commits
a consumer group's offsets (one per partition) and `committed_offsets` reads them back,
so a drill can show that they survived the failure.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tidelog.broker.drills.processes import DrillError
from tidelog.broker.drills.records import Ack, Payment, ReadRecord

TOPIC = "payments"
PARTITIONS = 6
RECORDS_PER_S = 5_000
LOAD_TIMEOUT_S = 120.0
HOLD_POLL_S = 0.01  # while held, how often delivery reports are served
OFFSETS_GROUP = "tidelog-drill-offsets"


@dataclass
class Load:
    """Produces `records` payments, paced at `rate` per second, never past its hold.

    `hold(n)` keeps the producer from sending record n (and later ones) until the hold
    is moved or lifted (`hold(None)`): the drill's schedule (broker/drills/schedule.py)
    decides where. After a hold the pace starts again from the moment it was lifted, so
    a long hold is not followed by a burst."""

    bootstrap: str
    payments: Iterator[Payment]
    records: int
    producer_config: dict[str, Any] = field(default_factory=dict)
    rate: float = RECORDS_PER_S
    producer_factory: Callable[[dict[str, Any]], Any] | None = None
    clock: Callable[[], float] = time.monotonic
    acks: list[tuple[float, Ack]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    unflushed: int = 0
    _settled: int = 0  # delivery reports, with or without an error
    _held_at: int | None = None
    _acked: threading.Condition = field(default_factory=threading.Condition)
    _gate: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drill-load", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> bool:
        assert self._thread is not None
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def acked(self) -> int:
        return len(self.acks)

    def describe(self) -> str:
        held = "" if self._held_at is None else f" held_at={self._held_at}"
        return (
            f"load: sent={self.sent} acked={self.acked()} delivery_errors={len(self.errors)}{held}"
        )

    def hold(self, at: int | None) -> None:
        """Send no record past the first `at` until told otherwise; None lifts the hold."""
        with self._gate:
            self._held_at = at
            self._gate.notify_all()

    def wait_settled(self, target: int, timeout: float = LOAD_TIMEOUT_S) -> None:
        """Block until `target` records have their delivery report (acked or failed)."""
        with self._acked:
            if not self._acked.wait_for(lambda: self._settled >= target, timeout):
                raise DrillError(f"load stalled acked={len(self.acks)} target={target}")

    def wait_for_acks_after(self, moment: float, timeout: float) -> bool:
        """True once a record acked at or after `moment` arrived; False on timeout."""
        with self._acked:
            return self._acked.wait_for(
                lambda: bool(self.acks) and self.acks[-1][0] >= moment, timeout
            )

    def check_running(self) -> None:
        """Raise DrillError if the load is already over: a failure now would prove nothing.

        A held load cannot end on its own; this catches a producer that died."""
        if not self.running() or self.acked() >= self.records:
            first = f" first_error={self.errors[0]}" if self.errors else ""
            raise DrillError(
                f"the load ended before the failure acked={self.acked()} "
                f"errors={len(self.errors)}{first}"
            )

    def _held(self, index: int) -> bool:
        return self._held_at is not None and index >= self._held_at

    def _wait_for_release(self, producer: Any, index: int) -> None:
        # Delivery reports only arrive through poll(), so serve them while waiting.
        while self._held(index):
            producer.poll(0)
            with self._gate:
                self._gate.wait_for(lambda: not self._held(index), HOLD_POLL_S)

    def _run(self) -> None:
        config = {
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
        producer = (self.producer_factory or _confluent_producer)(config)
        paced_from = self.clock()  # when record 0 was due; moved on after each hold
        try:
            for i, payment in enumerate(itertools.islice(self.payments, self.records)):
                if self._held(i):
                    self._wait_for_release(producer, i)
                    paced_from = self.clock() - i / self.rate
                wait = paced_from + i / self.rate - self.clock()
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
            with self._acked:
                if err is not None:
                    self.errors.append(str(err))
                else:
                    ack = Ack(
                        msg.partition(), msg.offset(), payment.key, payment.seq, payment.value
                    )
                    self.acks.append((self.clock(), ack))
                self._settled += 1
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


def _confluent_producer(config: dict[str, Any]) -> Any:
    from confluent_kafka import Producer

    return Producer(config)


def create_topic(bootstrap: str, topic: str = TOPIC) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    client = AdminClient({"bootstrap.servers": bootstrap})
    futures = client.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=10)
    try:
        futures[topic].result(timeout=30)
    except Exception as exc:  # KafkaException, or a timeout
        raise DrillError(f"create topic failed topic={topic} error={exc}") from exc


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
        high = _high_watermarks(consumer)
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


def _high_watermarks(consumer: Any) -> dict[int, int]:
    """Each partition's high watermark, asked again while it fails: right after a
    partition moved, the client may still ask the broker that gave it up."""
    from confluent_kafka import KafkaException, TopicPartition

    deadline = time.monotonic() + LOAD_TIMEOUT_S
    high: dict[int, int] = {}
    while len(high) < PARTITIONS:
        p = len(high)
        try:
            high[p] = consumer.get_watermark_offsets(TopicPartition(TOPIC, p), 30)[1]
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise DrillError(
                    f"read-back found no high watermark partition={p} error={exc}"
                ) from exc
            time.sleep(0.1)
    return high


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
