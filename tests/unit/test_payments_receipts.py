"""The receipts stage without a broker: which events qualify, how a batch is planned,
what the loop does on an abortable, a retriable and a fatal error (fake clients), and
the verifier's check of exactly one receipt per payment captured in full.
"""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from tidelog.payments import events as ev
from tidelog.payments.process_manager import (
    Receipt,
    ReceiptProcessManager,
    decode_receipt,
    encode_receipt,
    plan_batch,
    qualifies,
)
from tidelog.payments.verifier import check_receipts


def event(event_id: str, kind: str, payment_id: str, status: str) -> ev.Event:
    return ev.Event(event_id, kind, payment_id, "m", "c", 100, "EUR", 0, 2, status, False)


def receipt(payment_id: str, source_event_id: str) -> Receipt:
    return Receipt(payment_id, "c", "m", "EUR", source_event_id, 0, 7)


EXPECTED = {"p1": "e1", "p2": "e2"}


def test_only_the_capture_that_completes_a_payment_qualifies() -> None:
    assert qualifies(event("e", ev.PAYMENT_CAPTURED, "p", "captured"))
    assert not qualifies(event("e", ev.PAYMENT_CAPTURED, "p", "partially_captured"))
    assert not qualifies(event("e", ev.FRAUD_HOLD_PLACED, "p", "captured"))
    assert not qualifies(event("e", ev.REFUND_INITIATED, "p", "partially_refunded"))


def test_a_batch_receipts_each_payment_once_and_skips_what_was_receipted_before() -> None:
    done = ev.encode_event(event("e1", ev.PAYMENT_CAPTURED, "p1", "captured"))
    partial = ev.encode_event(event("e2", ev.PAYMENT_CAPTURED, "p2", "partially_captured"))
    known = ev.encode_event(event("e3", ev.PAYMENT_CAPTURED, "p3", "captured"))
    records = [(4, 10, done), (4, 11, partial), (4, 12, done), (1, 3, b"{poison"), (2, 5, known)]
    receipts, next_offsets = plan_batch(records, receipted={"p3"})
    assert receipts == [Receipt("p1", "c", "m", "EUR", "e1", 4, 10)]
    assert next_offsets == {4: 13, 1: 4, 2: 6}


def test_a_receipt_round_trips() -> None:
    r = receipt("p1", "e1")
    assert decode_receipt(encode_receipt(r)) == r


def test_exactly_one_receipt_each_passes() -> None:
    report = check_receipts(EXPECTED, [receipt("p1", "e1"), receipt("p2", "e2")], lag=0)
    assert (report.ok, report.rows_checked, report.events_applied) == (True, 2, 2)


@pytest.mark.parametrize(
    ("receipts", "found"),
    [
        ([receipt("p1", "e1"), receipt("p2", "e2"), receipt("p2", "e2")], "duplicate receipts"),
        ([receipt("p1", "e1")], "no receipt for a payment captured in full"),
        (
            [receipt("p1", "e1"), receipt("p2", "e2"), receipt("p9", "e9")],
            "receipt for a payment not captured in full",
        ),
        ([receipt("p1", "e1"), receipt("p2", "e7")], "receipt from event=e7 expected=e2"),
    ],
    ids=["duplicate", "missing", "spurious", "wrong-source"],
)
def test_each_kind_of_wrong_receipt_is_a_mismatch(receipts: list[Receipt], found: str) -> None:
    report = check_receipts(EXPECTED, receipts, lag=0)
    assert report.mismatches == 1 and not report.ok
    assert len(report.examples) == 1 and found in report.examples[0]


def test_uncommitted_input_fails_the_verdict() -> None:
    report = check_receipts(EXPECTED, [receipt("p1", "e1"), receipt("p2", "e2")], lag=3)
    assert report.mismatches == 0 and not report.ok


class FakeMessage:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self._where = (partition, offset)
        self._value = value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._where[0]

    def offset(self) -> int:
        return self._where[1]

    def value(self) -> bytes:
        return self._value


class FakeConsumer:
    """Hands out the same batch until it is committed; `committed` is what a rewind reads."""

    def __init__(self, batch: list[FakeMessage]) -> None:
        self.batch = batch
        self.committed_at: dict[int, int] = {}
        self.assigned: list[dict[int, int]] = []

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        return [m for m in self.batch if m.offset() >= self.committed_at.get(m.partition(), 0)]

    def committed(self, wanted: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.committed_at.get(tp.partition, -1001))
            for tp in wanted
        ]

    def assign(self, positions: list[TopicPartition]) -> None:
        self.assigned.append({tp.partition: tp.offset for tp in positions})

    def consumer_group_metadata(self) -> str:
        return "group-metadata"


class FakeProducer:
    """A transactional producer whose commit raises `failures` first, one per call."""

    def __init__(self, consumer: FakeConsumer, failures: list[KafkaError]) -> None:
        self.consumer = consumer
        self.failures = failures
        self.calls: list[str] = []
        self.open: list[bytes] = []
        self.staged: dict[int, int] = {}
        self.committed: list[bytes] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")
        self.open, self.staged = [], {}

    def produce(self, topic: str, key: bytes, value: bytes, partition: int) -> None:
        self.open.append(value)

    def send_offsets_to_transaction(
        self, offsets: list[TopicPartition], metadata: object, timeout: float
    ) -> None:
        assert metadata == "group-metadata"
        self.staged = {tp.partition: tp.offset for tp in offsets}

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append("commit")
        if self.failures:
            raise KafkaException(self.failures.pop(0))
        self.committed += self.open
        self.consumer.committed_at.update(self.staged)

    def abort_transaction(self, timeout: float) -> None:
        self.calls.append("abort")


def manager(failures: list[KafkaError]) -> tuple[ReceiptProcessManager, FakeProducer]:
    captured = ev.encode_event(event("e1", ev.PAYMENT_CAPTURED, "p1", "captured"))
    consumer = FakeConsumer([FakeMessage(3, 0, captured), FakeMessage(3, 1, captured)])
    producer = FakeProducer(consumer, failures)
    return ReceiptProcessManager("unused:1", clients=(producer, consumer)), producer


def test_an_abortable_error_aborts_rewinds_and_the_retry_writes_one_receipt() -> None:
    pm, producer = manager([KafkaError(KafkaError._STATE, "x", txn_requires_abort=True)])
    assert pm.poll_once() == 0
    assert producer.calls == ["begin", "commit", "abort"] and pm.receipted == set()
    assert pm.consumer.assigned[-1][3] == OFFSET_BEGINNING  # nothing committed yet
    assert pm.poll_once() == 2
    assert pm.poll_once() == 0  # all committed: nothing handed out again
    assert [decode_receipt(v).payment_id for v in producer.committed] == ["p1"]
    assert (pm.receipts, pm.transactions, pm.aborts) == (1, 1, 1)


def test_a_retriable_commit_error_is_retried_in_the_same_transaction() -> None:
    pm, producer = manager([KafkaError(KafkaError._TIMED_OUT, "x", retriable=True)])
    assert pm.poll_once() == 2
    assert producer.calls == ["begin", "commit", "commit"] and len(producer.committed) == 1


def test_a_fatal_error_ends_the_stage() -> None:
    pm, producer = manager([KafkaError(KafkaError._FENCED, "fenced", fatal=True)])
    with pytest.raises(KafkaException):
        pm.poll_once()
    assert producer.committed == [] and pm.receipted == set()
