"""The drill's verdict: what counts as lost, duplicated and out of order, and which acks
came after a failure (no processes, no clock)."""

from __future__ import annotations

import json

from tidelog.broker.drills.records import (
    Ack,
    ReadRecord,
    acks_between,
    first_ack_after,
    lost_acks,
    make_payments,
    payment_stream,
    verify,
)


def value(key: str, seq: int) -> bytes:
    return json.dumps({"id": key, "seq": seq}).encode()


def ack(partition: int, offset: int, key: str, seq: int) -> Ack:
    return Ack(partition, offset, key, seq, value(key, seq))


def read(partition: int, offset: int, key: str, seq: int) -> ReadRecord:
    return ReadRecord(partition, offset, key, value(key, seq))


def test_verify_counts_lost_duplicated_and_out_of_order() -> None:
    acked = [
        ack(0, 0, "pay-1", 0),
        ack(0, 1, "pay-1", 1),
        ack(0, 2, "pay-1", 2),
        ack(1, 0, "pay-2", 0),
        ack(1, 1, "pay-2", 1),
    ]
    back = [
        read(0, 0, "pay-1", 0),
        read(0, 1, "pay-1", 2),  # acked (0, 1) holds another record: lost, and seq 2 ...
        read(0, 2, "pay-1", 1),  # ... before seq 1: out of order
        read(1, 0, "pay-2", 0),
        read(1, 1, "pay-2", 1),
        read(1, 2, "pay-2", 1),  # read twice: duplicated
    ]
    verdict = verify(acked, back)
    assert (verdict.lost, verdict.duplicated, verdict.out_of_order) == (2, 1, 1)
    assert verdict.acknowledged == 5
    assert verdict.read_back == 6


def test_verify_counts_a_missing_offset_as_lost() -> None:
    acked = [ack(0, 0, "pay-1", 0), ack(0, 1, "pay-1", 1)]
    verdict = verify(acked, [read(0, 0, "pay-1", 0)])
    assert (verdict.lost, verdict.duplicated, verdict.out_of_order) == (1, 0, 0)
    assert verdict.acked_read_back == 1


def test_verify_passes_a_clean_read_back() -> None:
    acked = [ack(0, 0, "pay-1", 0), ack(0, 1, "pay-1", 1), ack(2, 0, "pay-3", 0)]
    back = [read(0, 0, "pay-1", 0), read(0, 1, "pay-1", 1), read(2, 0, "pay-3", 0)]
    verdict = verify(acked, back)
    assert (verdict.lost, verdict.duplicated, verdict.out_of_order) == (0, 0, 0)


def test_payments_are_reproducible_and_count_up_per_key() -> None:
    payments = make_payments(2000, seed=7)
    assert payments == make_payments(2000, seed=7)
    assert payments != make_payments(2000, seed=8)
    last: dict[str, int] = {}
    for p in payments:
        assert p.seq == last.get(p.key, -1) + 1
        assert json.loads(p.value)["seq"] == p.seq
        last[p.key] = p.seq


def test_payment_stream_is_the_endless_form_of_make_payments() -> None:
    stream = payment_stream(seed=3)
    assert [next(stream) for _ in range(500)] == make_payments(500, seed=3)


def test_a_zombie_ack_after_the_takeover_that_was_not_read_back_is_lost() -> None:
    # node 1 acked (0, 2) after node 2 took over at t=10; node 2 gave offset 2 to another
    # record, so the zombie's ack is lost even though offset 2 exists.
    timed = [
        (1.0, ack(0, 0, "pay-1", 0)),
        (2.0, ack(0, 1, "pay-1", 1)),
        (11.0, ack(0, 2, "pay-1", 2)),
        (12.0, ack(0, 2, "pay-2", 0)),
    ]
    back = [read(0, 0, "pay-1", 0), read(0, 1, "pay-1", 1), read(0, 2, "pay-2", 0)]
    after = acks_between(timed, 10.0, float("inf"))
    assert after == [ack(0, 2, "pay-1", 2), ack(0, 2, "pay-2", 0)]
    assert lost_acks(after, back) == [ack(0, 2, "pay-1", 2)]
    assert verify((a for _, a in timed), back).lost == 1
    assert first_ack_after(timed, 10.0) == 11.0
    assert first_ack_after(timed, 13.0) is None
    assert acks_between(timed, 2.0, 11.0) == [ack(0, 1, "pay-1", 1)]
