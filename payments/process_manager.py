"""The receipts stage: an exactly-once process manager from `payments.events` to
`payments.receipts`.

Owns: which events qualify (`qualifies`: the PaymentCaptured that leaves its payment
`captured`, i.e. captured in full — at most one per payment), the output record
(`Receipt`, JSON, keyed by payment id, written to the same partition number as its
source event), the transactional consume-transform-produce loop
(`ReceiptProcessManager`), `read_receipts` and `committed_offsets` (what the verifier
and the demo read back), and `main` (`python -m tidelog.payments.process_manager`).

Guarantees:

- Each polled batch is one Kafka transaction holding its receipts AND the input offsets
  past the batch (`send_offsets_to_transaction`): both are committed or neither is, so a
  kill at any point neither loses a receipt nor writes one twice.
- The input is read read_committed, the output too; a receipt is never visible before
  the offsets that produced it are committed, nor the reverse.
- The relay publishes at least once, so one event may be on the topic twice. The stage
  remembers the payments it has receipted; that memory is the output topic itself,
  read back read_committed to its end after `init_transactions` (which fences and
  aborts any earlier instance of the same transactional id), so it is exactly as
  committed as the offsets it goes with.
- An abortable error aborts the transaction and rewinds to the committed offsets (the
  memory of that batch is dropped with it); a fatal one (fenced: another instance took
  the transactional id) ends the process with exit 1, for its supervisor to restart.

A poison record (not a v1 event) does not qualify; the projections dead-letter it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from tidelog.broker.processes import ChildProcess
from tidelog.payments import events as ev
from tidelog.payments.child_main import add_batch_messages, start_child
from tidelog.payments.kafka_io import (
    EVENTS_PARTITIONS,
    EVENTS_TOPIC,
    RECEIPTS_PARTITIONS,
    RECEIPTS_TOPIC,
    BrokerUnavailable,
    WatermarkReader,
    consumer_config,
    producer_config,
)
from tidelog.payments.state_machine import CAPTURED

log = logging.getLogger("payments.receipts")
GROUP: Final = "payments-receipts"
RECEIPT_REQUESTED: Final = "ReceiptRequested"
BATCH_MESSAGES: Final = 2_000
POLL_TIMEOUT_S: Final = 0.05
CALL_TIMEOUT_S: Final = 60.0
# librdkafka wants it >= message.timeout.ms; a killed instance's open transaction is
# aborted at once by its successor's init_transactions, not by this timeout
TXN_TIMEOUT_MS: Final = 120_000
RESTART_EVERY_S: Final = 0.5


def transactional_id(instance: int) -> str:
    return f"{GROUP}-{instance}"


@dataclass(frozen=True)
class Receipt:
    """Ask the notification service to send the customer a receipt for a captured payment."""

    payment_id: str
    customer_id: str
    merchant_id: str
    currency: str
    source_event_id: str
    source_partition: int
    source_offset: int
    type: str = RECEIPT_REQUESTED


def qualifies(event: ev.Event) -> bool:
    return event.type == ev.PAYMENT_CAPTURED and event.status == CAPTURED


def encode_receipt(receipt: Receipt) -> bytes:
    return json.dumps(asdict(receipt), separators=(",", ":")).encode()


def decode_receipt(value: bytes | None) -> Receipt:
    if value is None:
        raise ValueError("receipt without a value")
    return Receipt(**json.loads(value))


def plan_batch(
    records: Iterable[tuple[int, int, bytes | None]], receipted: set[str]
) -> tuple[list[Receipt], dict[int, int]]:
    """Records as (partition, offset, value) -> the receipts to write (one per qualifying
    payment not in `receipted`, nor earlier in the batch) and the next offset per partition."""
    receipts: list[Receipt] = []
    seen = set(receipted)
    next_offsets: dict[int, int] = {}
    for partition, offset, value in records:
        next_offsets[partition] = max(next_offsets.get(partition, 0), offset + 1)
        try:
            event = ev.decode_event(value)
        except ev.PoisonEvent:
            continue
        if not qualifies(event) or event.payment_id in seen:
            continue
        seen.add(event.payment_id)
        receipts.append(
            Receipt(
                event.payment_id,
                event.customer_id,
                event.merchant_id,
                event.currency,
                event.event_id,
                partition,
                offset,
            )
        )
    return receipts, next_offsets


def read_receipts(
    bootstrap: str, partitions: Sequence[int] = range(RECEIPTS_PARTITIONS), timeout: float = 120.0
) -> list[Receipt]:
    """Every committed receipt in `partitions`, read_committed from offset 0 to the
    partitions' high watermarks as they stand now (past the LSO, so an undecided
    transaction is waited for, not skipped)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    watermarks = WatermarkReader(bootstrap, committed=False)
    try:
        high = watermarks.high(RECEIPTS_TOPIC, RECEIPTS_PARTITIONS, timeout)
    finally:
        watermarks.close()
    pending = {p for p in partitions if high[p] > 0}
    consumer = Consumer(
        consumer_config(
            bootstrap,
            f"{GROUP}-reader",
            **{"isolation.level": "read_committed", "enable.partition.eof": True},
        )
    )
    out: list[Receipt] = []
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(RECEIPTS_TOPIC, p, OFFSET_BEGINNING) for p in pending])
        while pending:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"receipts not read to their end pending={sorted(pending)}")
            for msg in consumer.consume(num_messages=5_000, timeout=0.2):
                error = msg.error()
                if error is None:
                    out.append(decode_receipt(msg.value()))
                elif (
                    error.code() == KafkaError._PARTITION_EOF
                    and msg.offset() >= high[msg.partition()]
                ):
                    pending.discard(msg.partition())
    finally:
        consumer.close()
    return out


def committed_offsets(bootstrap: str, timeout: float = 10.0) -> dict[int, int]:
    """The stage's committed input offsets per events partition (0: none yet), as they
    stand: read_uncommitted, so the fetch does not ask for stable offsets (a partition
    with offsets an open transaction staged would answer UNSTABLE_OFFSET_COMMIT until
    the stage pauses, and a running stage always has one open)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    isolation = {"isolation.level": "read_uncommitted"}
    consumer = Consumer(consumer_config(bootstrap, GROUP, **isolation))
    try:
        wanted = [TopicPartition(EVENTS_TOPIC, p) for p in range(EVENTS_PARTITIONS)]
        try:
            got = consumer.committed(wanted, timeout=timeout)
        except KafkaException as exc:
            raise BrokerUnavailable(f"no committed offsets group={GROUP} error={exc}") from exc
        return {tp.partition: max(0, tp.offset) for tp in got}
    finally:
        consumer.close()


class ReceiptProcessManager:
    """One instance owns the events partitions `p % instances == instance` and the
    transactional id `payments-receipts-<instance>`; a restart of the same instance
    fences its predecessor."""

    def __init__(
        self,
        bootstrap: str,
        *,
        instance: int = 0,
        instances: int = 1,
        batch_messages: int = BATCH_MESSAGES,
        clients: tuple[Any, Any] | None = None,
    ) -> None:
        """`clients`: (producer, consumer) to use instead of new confluent-kafka ones."""
        from confluent_kafka import Consumer, Producer

        self.bootstrap = bootstrap
        self.partitions = [p for p in range(EVENTS_PARTITIONS) if p % instances == instance]
        self.batch_messages = batch_messages
        self.txn_id = transactional_id(instance)
        self.producer, self.consumer = clients or (
            Producer(
                producer_config(
                    bootstrap,
                    **{"transactional.id": self.txn_id, "transaction.timeout.ms": TXN_TIMEOUT_MS},
                )
            ),
            Consumer(consumer_config(bootstrap, GROUP, **{"isolation.level": "read_committed"})),
        )
        self.receipted: set[str] = set()
        self.receipts = 0
        self.transactions = 0
        self.aborts = 0

    def start(self) -> None:
        """Fence earlier instances, remember what they committed, resume at their offsets."""
        self.producer.init_transactions(CALL_TIMEOUT_S)
        self.receipted = {r.payment_id for r in read_receipts(self.bootstrap, self.partitions)}
        self._rewind()
        log.info(
            "receipts started txn_id=%s partitions=%s receipted=%d",
            self.txn_id,
            self.partitions,
            len(self.receipted),
        )

    def _rewind(self) -> None:
        """Back to the committed input offsets: the first start and after every abort."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        wanted = [TopicPartition(EVENTS_TOPIC, p) for p in self.partitions]
        committed = self.consumer.committed(wanted, timeout=CALL_TIMEOUT_S)
        self.consumer.assign(
            [
                TopicPartition(
                    EVENTS_TOPIC, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                )
                for tp in committed
            ]
        )

    def poll_once(self, timeout: float = POLL_TIMEOUT_S) -> int:
        """One batch, one transaction; the number of records it consumed."""
        from confluent_kafka import KafkaException

        messages = self.consumer.consume(num_messages=self.batch_messages, timeout=timeout)
        batch = [m for m in messages if m.error() is None]
        if not batch:
            return 0
        receipts, next_offsets = plan_batch(
            ((m.partition(), m.offset(), m.value()) for m in batch), self.receipted
        )
        try:
            self._transact(receipts, next_offsets)
        except KafkaException as exc:
            if not exc.args[0].txn_requires_abort():
                raise  # fatal: fenced, or the producer is unusable; exit and be restarted
            log.warning("receipts transaction aborted error=%s", exc.args[0])
            self.producer.abort_transaction(CALL_TIMEOUT_S)
            self.aborts += 1
            self._rewind()
            return 0
        self.receipted.update(r.payment_id for r in receipts)
        self.receipts += len(receipts)
        self.transactions += 1
        return len(batch)

    def _transact(self, receipts: list[Receipt], next_offsets: dict[int, int]) -> None:
        from confluent_kafka import TopicPartition

        self.producer.begin_transaction()
        for r in receipts:
            self.producer.produce(
                RECEIPTS_TOPIC,
                key=r.payment_id.encode(),
                value=encode_receipt(r),
                partition=r.source_partition,
            )
        offsets = [TopicPartition(EVENTS_TOPIC, p, o) for p, o in next_offsets.items()]
        metadata = self.consumer.consumer_group_metadata()
        _retrying(lambda: self.producer.send_offsets_to_transaction(offsets, metadata, 30))
        _retrying(lambda: self.producer.commit_transaction(30))

    def run(self, stop: threading.Event) -> None:
        try:
            self.start()
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def close(self) -> None:
        self.consumer.close()
        self.producer.flush(10)


def _retrying(call: Any, deadline_s: float = CALL_TIMEOUT_S * 2) -> None:
    """`call()` again while librdkafka says its error is retriable (a broker away)."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + deadline_s
    while True:
        try:
            call()
            return
        except KafkaException as exc:
            if not exc.args[0].retriable() or time.monotonic() > deadline:
                raise
            log.info("receipts call retried error=%s", exc.args[0])


class ReceiptsProcess:
    """`python -m tidelog.payments.process_manager` as a supervised child: restarted
    whenever it exits (SIGKILL, or exit 1 after a fatal error) until `stop()`.
    `exits` holds the exit code of every run that ended on its own or was killed."""

    def __init__(
        self, bootstrap: str, log_path: Path, *, batch_messages: int = BATCH_MESSAGES
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "tidelog.payments.process_manager",
            "--bootstrap",
            bootstrap,
            "--batch-messages",
            str(batch_messages),
        ]
        self.child = ChildProcess("receipts", command, log_path=log_path)
        self.exits: list[int] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="receipts-watch", daemon=True)

    def start(self) -> ReceiptsProcess:
        self.child.start()
        self._watcher.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(RESTART_EVERY_S):
            with self._lock:
                if self._stop.is_set() or self.child.running():
                    continue
                assert self.child.proc is not None
                self.exits.append(int(self.child.proc.returncode))
                self.child.start()

    def kill(self) -> None:
        """SIGKILL (the drill's crash); the watcher starts the next run."""
        with self._lock:
            self.child.kill()

    def stop(self) -> int:
        """SIGTERM, and no more restarts; the last run's exit code (0: clean)."""
        self._stop.set()
        with self._lock:
            code = self.child.stop()
        self._watcher.join(10)
        return code


def main(argv: Sequence[str] | None = None) -> int:
    """One instance as its own process: SIGTERM/SIGINT ends it after its current
    transaction (exit 0); a fatal Kafka error ends it with exit 1."""
    from confluent_kafka import KafkaException

    parser = argparse.ArgumentParser(prog="python -m tidelog.payments.process_manager")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--instance", type=int, default=0)
    parser.add_argument("--instances", type=int, default=1)
    add_batch_messages(parser, BATCH_MESSAGES)
    args = parser.parse_args(argv)
    stop = start_child()
    manager = ReceiptProcessManager(
        args.bootstrap,
        instance=args.instance,
        instances=args.instances,
        batch_messages=args.batch_messages,
    )
    try:
        manager.run(stop)
    except (KafkaException, BrokerUnavailable) as exc:
        log.error("receipts stopped on error error=%s", exc)
        return 1
    log.info(
        "receipts stopped receipts=%d transactions=%d aborts=%d",
        manager.receipts,
        manager.transactions,
        manager.aborts,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
