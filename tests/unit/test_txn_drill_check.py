"""The txn drill's judge: each anomaly, alone in an otherwise clean history, is found,
and a clean history has none (no processes, no clock)."""

from __future__ import annotations

import json

from tidelog.broker.drills.records import Ack
from tidelog.broker.drills.txn_check import (
    FetchedBatch,
    Output,
    TxnVerdict,
    check,
    output_value,
    parse_output,
)

# Input: pay-1 seq 0..2 at partition 0 offsets 0..2, pay-2 seq 0 at partition 1 offset 0.
INPUTS = [("pay-1", 0, 0, 0), ("pay-1", 1, 0, 1), ("pay-1", 2, 0, 2), ("pay-2", 0, 1, 0)]


def acks() -> list[Ack]:
    return [Ack(p, off, key, seq, json.dumps({"seq": seq}).encode()) for key, seq, p, off in INPUTS]


def out(p: int, off: int, key: str, seq: int, in_off: int, *, abort: bool = False) -> Output:
    return Output(p, off, key, p, in_off, seq, "1-1", abort)


def clean_committed() -> list[Output]:
    # partition 0: an aborted transaction took offsets 0-1 (and its marker 2), the
    # committed one 3-5 (marker 6); partition 1: committed at 0 (marker 1)
    return [
        out(0, 3, "pay-1", 0, 0),
        out(0, 4, "pay-1", 1, 1),
        out(0, 5, "pay-1", 2, 2),
        out(1, 0, "pay-2", 0, 0),
    ]


def clean_uncommitted() -> list[Output]:
    aborted = [out(0, 0, "pay-1", 0, 0, abort=True), out(0, 1, "pay-1", 1, 1, abort=True)]
    return aborted + clean_committed()


def clean_fetches() -> list[FetchedBatch]:
    return [FetchedBatch(0, 0, 2, 7, 7), FetchedBatch(0, 3, 6, 7, 7), FetchedBatch(1, 0, 1, 2, 2)]


def judge(
    committed: list[Output] | None = None,
    tailed: list[Output] | None = None,
    fetched: list[FetchedBatch] | None = None,
    uncommitted: list[Output] | None = None,
) -> TxnVerdict:
    return check(
        acks(),
        clean_committed() if committed is None else committed,
        clean_uncommitted() if uncommitted is None else uncommitted,
        clean_committed() if tailed is None else tailed,
        clean_fetches() if fetched is None else fetched,
    )


def anomalies(verdict: TxnVerdict) -> tuple[int, int, int, int, int]:
    v = verdict
    return (v.aborted_reads, v.lost, v.duplicated, v.reordered, v.read_past_lso)


def test_a_clean_history_has_no_anomaly() -> None:
    verdict = judge()
    assert anomalies(verdict) == (0, 0, 0, 0, 0)
    assert verdict.anomalies() == 0
    assert (verdict.aborted_on_purpose_written, verdict.left_open_by_kills_written) == (2, 0)
    assert (verdict.inputs_acked, verdict.committed_outputs, verdict.tailed) == (4, 4, 4)


def test_a_record_aborted_on_purpose_read_committed_is_an_aborted_read() -> None:
    committed = [*clean_committed(), out(0, 7, "pay-9", 0, 9, abort=True)]
    verdict = judge(committed=committed, uncommitted=clean_uncommitted() + committed[-1:])
    assert anomalies(verdict) == (1, 0, 0, 0, 0)


def test_a_tailed_record_that_never_committed_is_an_aborted_read() -> None:
    # left open by a kill, no abort marker of its own, aborted later: never in the
    # final read_committed, yet a read_committed consumer handed it out on the way
    left_open = out(0, 7, "pay-1", 2, 2)
    verdict = judge(tailed=[*clean_committed(), left_open])
    assert anomalies(verdict) == (1, 0, 0, 0, 0)


def test_an_acknowledged_input_without_committed_output_is_lost() -> None:
    partition_0 = [r for r in clean_committed() if r.partition == 0]
    verdict = judge(committed=partition_0, tailed=partition_0)
    assert anomalies(verdict) == (0, 1, 0, 0, 0)


def test_an_input_with_two_committed_outputs_is_duplicated() -> None:
    committed = [*clean_committed(), out(1, 2, "pay-2", 0, 0)]
    verdict = judge(committed=committed)
    assert anomalies(verdict) == (0, 0, 1, 0, 0)
    # Where both outputs are, so a failed drill says whether the log holds two.
    (example,) = verdict.duplicate_examples
    assert example.startswith("pay-2 seq=0: ") and example.endswith("1@2 txn=1-1")
    assert judge().duplicate_examples == ()


def test_a_key_whose_outputs_go_against_its_input_order_is_reordered() -> None:
    a, b, c, d = clean_committed()
    swapped = [
        Output(0, 3, "pay-1", 0, 1, 1, "1-1", False),
        Output(0, 4, "pay-1", 0, 0, 0, "1-1", False),
    ]
    verdict = judge(committed=[*swapped, c, d], tailed=[*swapped, c, d])
    assert (a.offset, b.offset) == (3, 4)
    assert anomalies(verdict) == (0, 0, 0, 1, 0)


def test_a_batch_at_or_past_the_lso_its_fetch_reported_is_a_read_past_the_lso() -> None:
    # the committed transaction 3-6 returned while its response said the LSO was 3
    fetched = [
        FetchedBatch(0, 0, 2, 3, 7),
        FetchedBatch(0, 3, 6, 3, 7),
        FetchedBatch(1, 0, 1, 2, 2),
    ]
    assert anomalies(judge(fetched=fetched)) == (0, 0, 0, 0, 1)


def test_an_output_value_reads_back_as_written() -> None:
    value = output_value(4, 17, "pay-3", 5, "2-9", True)
    assert parse_output(4, 30, value) == Output(4, 30, "pay-3", 4, 17, 5, "2-9", True)
