"""The receipts stage's pure parts: which events qualify, how a batch is planned, and
the verifier's check of exactly one receipt per payment captured in full.
"""

from __future__ import annotations

import pytest

from tidelog.payments import events as ev
from tidelog.payments.process_manager import (
    Receipt,
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
