"""The transaction coordinator's state machine (`broker/transactions/`), without I/O.

Every transition and error of notes/txn-spec.md, plus the choices state.py's docstring
makes where the spec is silent (Kafka's behaviour).
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.unit.source_ast import parse_file
from tidelog.broker.transactions.model import MAX_EPOCH, TxnMeta, TxnStatus
from tidelog.broker.transactions.state import (
    Markers,
    Outcome,
    add_group,
    add_partitions,
    deadline_ms,
    end_txn,
    expire,
    init_producer,
    needs_producer_id,
    recover,
    verify,
)
from tidelog.protocol.errors import ErrorCode

TXN = "txn-a"
PID = 1000
NEW_PID = 2000
TIMEOUT = 60_000
MAX_TIMEOUT = 900_000
T0 = 1_000_000
P0 = ("orders", 0)
P1 = ("orders", 1)
Q0 = ("payments", 0)
ALL = list(TxnStatus)
PREPARES = [TxnStatus.PREPARE_COMMIT, TxnStatus.PREPARE_ABORT]
COMPLETES = [TxnStatus.COMPLETE_COMMIT, TxnStatus.COMPLETE_ABORT]


def meta(
    status: TxnStatus = TxnStatus.EMPTY,
    *,
    epoch: int = 5,
    partitions: frozenset[tuple[str, int]] = frozenset(),
    groups: frozenset[str] = frozenset(),
    **changes: Any,
) -> TxnMeta:
    """A meta in `status`; Ongoing and Prepare* get a partition unless told otherwise."""
    if status is TxnStatus.ONGOING or status in PREPARES:
        partitions = partitions or frozenset({P0})
    base = TxnMeta(
        transactional_id=TXN,
        producer_id=PID,
        producer_epoch=epoch,
        last_producer_id=-1,
        last_producer_epoch=epoch - 1,
        timeout_ms=TIMEOUT,
        status=status,
        partitions=partitions,
        groups=groups,
        txn_start_ms=T0 if status is TxnStatus.ONGOING else -1,
        last_update_ms=T0,
    )
    return replace(base, **changes)


def init(
    current: TxnMeta | None,
    *,
    producer_id: int = -1,
    producer_epoch: int = -1,
    timeout_ms: int = TIMEOUT,
    now_ms: int = T0 + 10,
) -> Outcome:
    return init_producer(
        current,
        transactional_id=TXN,
        timeout_ms=timeout_ms,
        max_timeout_ms=MAX_TIMEOUT,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        new_producer_id=NEW_PID,
        now_ms=now_ms,
    )


def add(
    current: TxnMeta | None, *parts: tuple[str, int], epoch: int = 5, pid: int = PID
) -> Outcome:
    return add_partitions(
        current, producer_id=pid, producer_epoch=epoch, partitions=frozenset(parts), now_ms=T0 + 10
    )


def group(current: TxnMeta | None, name: str, *, epoch: int = 5, pid: int = PID) -> Outcome:
    return add_group(current, producer_id=pid, producer_epoch=epoch, group=name, now_ms=T0 + 10)


def end(current: TxnMeta | None, commit: bool, *, epoch: int = 5, pid: int = PID) -> Outcome:
    return end_txn(current, producer_id=pid, producer_epoch=epoch, commit=commit, now_ms=T0 + 10)


def completed(outcome: Outcome) -> TxnMeta:
    assert outcome.error is ErrorCode.none and outcome.complete is not None, outcome
    return outcome.complete


# --- model: the JSON form in the coordinator's stream ---------------------------------


def test_to_json_has_short_stable_keys_and_sorted_partitions_and_groups() -> None:
    m = meta(
        TxnStatus.ONGOING,
        partitions=frozenset({Q0, P1, P0}),
        groups=frozenset({"g2", "g1"}),
        last_producer_id=7,
    )
    assert m.to_json() == {
        "id": TXN,
        "pid": PID,
        "epoch": 5,
        "last_pid": 7,
        "last_epoch": 4,
        "timeout_ms": TIMEOUT,
        "status": "Ongoing",
        "partitions": [["orders", 0], ["orders", 1], ["payments", 0]],
        "groups": ["g1", "g2"],
        "start_ms": T0,
        "update_ms": T0,
    }


@pytest.mark.parametrize("status", ALL)
def test_json_round_trips_through_text(status: TxnStatus) -> None:
    m = meta(status, groups=frozenset({"g"}) if status is TxnStatus.ONGOING else frozenset())
    assert TxnMeta.from_json(json.loads(json.dumps(m.to_json()))) == m


def test_status_values_are_kafkas_names() -> None:
    assert [s.value for s in ALL] == [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
    ]


def test_from_json_ignores_unknown_keys() -> None:
    raw = meta().to_json() | {"later": 1}
    assert TxnMeta.from_json(raw) == meta()


@pytest.mark.parametrize(
    "change",
    [
        {"pid": None},
        {"epoch": True},
        {"status": "Running"},
        {"partitions": [["orders", 0, 1]]},
        {"partitions": [["orders", "0"]]},
        {"groups": "g1"},
        {"id": 3},
    ],
)
def test_from_json_refuses_a_mistyped_field(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TxnMeta.from_json(meta().to_json() | change)


def test_from_json_refuses_a_missing_field() -> None:
    raw = meta().to_json()
    del raw["update_ms"]
    with pytest.raises(ValueError):
        TxnMeta.from_json(raw)


# --- InitProducerId ---------------------------------------------------------------------


@pytest.mark.parametrize("timeout_ms", [0, -1, MAX_TIMEOUT + 1])
@pytest.mark.parametrize("current", [None, meta(), meta(TxnStatus.ONGOING)])
def test_init_refuses_an_invalid_timeout(timeout_ms: int, current: TxnMeta | None) -> None:
    assert init(current, timeout_ms=timeout_ms) == Outcome(ErrorCode.invalid_transaction_timeout)


def test_init_accepts_the_maximum_timeout() -> None:
    assert completed(init(None, timeout_ms=MAX_TIMEOUT)).timeout_ms == MAX_TIMEOUT


@pytest.mark.parametrize("current", [None, meta(TxnStatus.DEAD)])
def test_init_of_an_unknown_id_creates_it_empty_at_epoch_0(current: TxnMeta | None) -> None:
    out = init(current, producer_id=77, producer_epoch=3)  # KIP-360 identity is moot here
    fresh = TxnMeta(
        TXN, NEW_PID, 0, -1, -1, TIMEOUT, TxnStatus.EMPTY, frozenset(), frozenset(), -1, T0 + 10
    )
    assert out == Outcome(complete=fresh, producer_id=NEW_PID, producer_epoch=0)


@pytest.mark.parametrize("status", [TxnStatus.EMPTY, *COMPLETES])
def test_init_bumps_the_epoch_of_an_idle_id(status: TxnStatus) -> None:
    out = init(meta(status), timeout_ms=30_000)
    assert out.prepare is None and out.markers is None
    assert completed(out) == replace(
        meta(),
        producer_epoch=6,
        last_producer_id=-1,
        last_producer_epoch=5,
        timeout_ms=30_000,
        last_update_ms=T0 + 10,
    )
    assert (out.producer_id, out.producer_epoch) == (PID, 6)


def test_init_aborts_an_ongoing_transaction_with_a_bumped_epoch() -> None:
    ongoing = meta(TxnStatus.ONGOING, partitions=frozenset({P0, Q0}), groups=frozenset({"g"}))
    out = init(ongoing, timeout_ms=30_000)
    assert out.prepare == replace(
        ongoing,
        producer_epoch=6,
        last_producer_epoch=5,
        status=TxnStatus.PREPARE_ABORT,
        txn_start_ms=-1,
        last_update_ms=T0 + 10,
    )
    assert out.markers == Markers(PID, 6, False, frozenset({P0, Q0}), frozenset({"g"}))
    assert out.complete == replace(
        meta(), producer_epoch=6, last_producer_epoch=5, timeout_ms=30_000, last_update_ms=T0 + 10
    )
    assert (out.producer_id, out.producer_epoch) == (PID, 6)


@pytest.mark.parametrize("status", PREPARES)
@pytest.mark.parametrize("identity", [(-1, -1), (PID, 5), (PID, 4), (99, 1)])
def test_init_during_prepare_is_concurrent(status: TxnStatus, identity: tuple[int, int]) -> None:
    out = init(meta(status), producer_id=identity[0], producer_epoch=identity[1])
    assert out == Outcome(ErrorCode.concurrent_transactions)


@pytest.mark.parametrize("status", [TxnStatus.EMPTY, TxnStatus.ONGOING, *COMPLETES])
def test_kip360_init_with_the_current_identity_bumps(status: TxnStatus) -> None:
    out = init(meta(status), producer_id=PID, producer_epoch=5)
    assert (out.error, out.producer_id, out.producer_epoch) == (ErrorCode.none, PID, 6)
    assert completed(out).status is TxnStatus.EMPTY


@pytest.mark.parametrize("status", [TxnStatus.EMPTY, *COMPLETES])
def test_kip360_retried_init_answers_the_current_identity_unchanged(status: TxnStatus) -> None:
    assert init(meta(status), producer_id=PID, producer_epoch=4) == Outcome(
        producer_id=PID, producer_epoch=5
    )


def test_kip360_retry_of_the_init_that_bumped_gets_the_same_answer() -> None:
    first = init(meta(), producer_id=PID, producer_epoch=5)
    again = init(completed(first), producer_id=PID, producer_epoch=5)
    assert again == Outcome(producer_id=PID, producer_epoch=6)


@pytest.mark.parametrize(
    "identity",
    [(PID, 3), (PID, 6), (PID + 1, 5), (PID + 1, 4), (99, -1)],
    ids=["older", "newer", "other-pid", "other-pid-last-epoch", "other-pid-no-epoch"],
)
@pytest.mark.parametrize("status", [TxnStatus.EMPTY, TxnStatus.ONGOING, *COMPLETES])
def test_kip360_init_with_another_identity_is_fenced(
    identity: tuple[int, int], status: TxnStatus
) -> None:
    out = init(meta(status), producer_id=identity[0], producer_epoch=identity[1])
    assert out == Outcome(ErrorCode.producer_fenced)


def test_kip360_init_with_the_current_id_and_no_epoch_bumps() -> None:
    out = init(meta(), producer_id=PID, producer_epoch=-1)
    assert (out.producer_id, out.producer_epoch) == (PID, 6)


def test_kip360_retried_init_while_a_transaction_is_ongoing_is_fenced() -> None:
    # The epoch it would be handed belongs to a live transaction.
    assert init(meta(TxnStatus.ONGOING), producer_id=PID, producer_epoch=4) == Outcome(
        ErrorCode.producer_fenced
    )


def test_plain_init_always_bumps_and_fences_the_holder_of_the_old_epoch() -> None:
    first = completed(init(meta()))
    second = completed(init(first))
    assert (first.producer_epoch, second.producer_epoch) == (6, 7)
    assert add(second, P0, epoch=6).error is ErrorCode.producer_fenced


def test_init_at_epoch_32765_still_bumps_within_the_id() -> None:
    out = init(meta(epoch=32765))
    assert (out.producer_id, out.producer_epoch) == (PID, 32766)


@pytest.mark.parametrize("status", [TxnStatus.EMPTY, *COMPLETES])
def test_init_at_an_exhausted_epoch_takes_a_new_producer_id(status: TxnStatus) -> None:
    out = init(meta(status, epoch=32766), producer_id=PID, producer_epoch=32766)
    rotated = completed(out)
    assert (out.producer_id, out.producer_epoch) == (NEW_PID, 0)
    assert (rotated.producer_id, rotated.producer_epoch) == (NEW_PID, 0)
    assert (rotated.last_producer_id, rotated.last_producer_epoch) == (PID, 32766)
    assert rotated.status is TxnStatus.EMPTY
    # The producer never saw the answer and retries: it gets the new identity.
    retry = init(rotated, producer_id=PID, producer_epoch=32766)
    assert retry == Outcome(producer_id=NEW_PID, producer_epoch=0)
    # Anyone else holding the old id is fenced; so is the old id at another epoch.
    assert init(rotated, producer_id=PID, producer_epoch=32765).error is ErrorCode.producer_fenced
    assert add(rotated, P0, pid=PID, epoch=32766).error is ErrorCode.invalid_producer_id_mapping


def test_init_aborting_at_an_exhausted_epoch_fences_with_32767_then_rotates() -> None:
    ongoing = meta(TxnStatus.ONGOING, epoch=32766)
    out = init(ongoing)
    assert out.prepare is not None and out.prepare.producer_epoch == MAX_EPOCH
    assert out.markers == Markers(PID, MAX_EPOCH, False, frozenset({P0}), frozenset())
    assert (out.producer_id, out.producer_epoch) == (NEW_PID, 0)
    assert completed(out).last_producer_id == PID


def test_a_producer_whose_transaction_timed_out_recovers_by_init_kip588() -> None:
    ongoing = meta(TxnStatus.ONGOING)
    timed_out = expire(ongoing, T0 + TIMEOUT + 1)
    assert timed_out is not None and timed_out.complete is not None
    aborted = timed_out.complete
    assert add(aborted, P0, epoch=5).error is ErrorCode.producer_fenced
    assert init(aborted, producer_id=PID, producer_epoch=5) == Outcome(
        producer_id=PID, producer_epoch=6
    )
    assert completed(add(aborted, P1, epoch=6)).status is TxnStatus.ONGOING


def test_a_timeout_at_an_exhausted_epoch_never_hands_out_32767() -> None:
    timed_out = expire(meta(TxnStatus.ONGOING, epoch=32766), T0 + TIMEOUT + 1)
    assert timed_out is not None and timed_out.complete is not None
    aborted = timed_out.complete
    assert aborted.producer_epoch == MAX_EPOCH
    out = init(aborted, producer_id=PID, producer_epoch=32766)
    assert (out.producer_id, out.producer_epoch) == (NEW_PID, 0)
    rotated = completed(out)
    assert (rotated.last_producer_id, rotated.last_producer_epoch) == (PID, 32766)
    assert init(rotated, producer_id=PID, producer_epoch=32766) == Outcome(
        producer_id=NEW_PID, producer_epoch=0
    )
    assert (init(aborted).producer_id, init(aborted).producer_epoch) == (NEW_PID, 0)


def test_needs_producer_id_says_when_init_may_use_the_new_id() -> None:
    assert needs_producer_id(None)
    assert needs_producer_id(meta(TxnStatus.DEAD))
    assert needs_producer_id(meta(epoch=32766))
    assert needs_producer_id(meta(epoch=MAX_EPOCH))
    assert not needs_producer_id(meta(epoch=32765))
    assert not needs_producer_id(meta(TxnStatus.ONGOING, epoch=0))


# --- AddPartitionsToTxn / AddOffsetsToTxn -------------------------------------------------

ADDERS = {
    "partitions": lambda m, epoch, pid: add(m, P1, epoch=epoch, pid=pid),
    "group": lambda m, epoch, pid: group(m, "g", epoch=epoch, pid=pid),
    "commit": lambda m, epoch, pid: end(m, True, epoch=epoch, pid=pid),
    "abort": lambda m, epoch, pid: end(m, False, epoch=epoch, pid=pid),
}


@pytest.mark.parametrize("call", ADDERS)
@pytest.mark.parametrize("current", [None, meta(TxnStatus.DEAD), meta(TxnStatus.ONGOING)])
def test_an_unknown_producer_id_is_invalid_mapping(call: str, current: TxnMeta | None) -> None:
    pid = PID + 1 if current is not None and current.status is TxnStatus.ONGOING else PID
    assert ADDERS[call](current, 5, pid) == Outcome(ErrorCode.invalid_producer_id_mapping)


@pytest.mark.parametrize("call", ADDERS)
@pytest.mark.parametrize("status", ALL[:-1])
def test_an_older_epoch_is_fenced_and_a_newer_one_invalid(call: str, status: TxnStatus) -> None:
    assert ADDERS[call](meta(status), 4, PID) == Outcome(ErrorCode.producer_fenced)
    assert ADDERS[call](meta(status), 6, PID) == Outcome(ErrorCode.invalid_producer_epoch)


@pytest.mark.parametrize("call", ["partitions", "group"])
@pytest.mark.parametrize("status", PREPARES)
def test_adding_during_prepare_is_concurrent(call: str, status: TxnStatus) -> None:
    assert ADDERS[call](meta(status), 5, PID) == Outcome(ErrorCode.concurrent_transactions)


@pytest.mark.parametrize("status", [TxnStatus.EMPTY, *COMPLETES])
def test_the_first_add_begins_the_transaction_and_its_timeout(status: TxnStatus) -> None:
    began = completed(add(meta(status), P0, Q0))
    assert began == replace(
        meta(status),
        status=TxnStatus.ONGOING,
        partitions=frozenset({P0, Q0}),
        txn_start_ms=T0 + 10,
        last_update_ms=T0 + 10,
    )
    assert deadline_ms(began) == T0 + 10 + TIMEOUT


def test_a_later_add_grows_the_transaction_and_keeps_its_start() -> None:
    ongoing = meta(TxnStatus.ONGOING)
    grown = completed(add(ongoing, P0, P1))
    assert grown.partitions == {P0, P1}
    assert (grown.txn_start_ms, grown.last_update_ms) == (T0, T0 + 10)


def test_adding_what_is_already_in_changes_nothing() -> None:
    ongoing = meta(TxnStatus.ONGOING, partitions=frozenset({P0, P1}), groups=frozenset({"g"}))
    assert add(ongoing, P1) == Outcome()
    assert group(ongoing, "g") == Outcome()


def test_an_empty_add_does_not_begin_a_transaction() -> None:
    assert add(meta()) == Outcome()


@pytest.mark.parametrize("status", [TxnStatus.EMPTY, *COMPLETES])
def test_add_offsets_begins_a_transaction_with_the_group(status: TxnStatus) -> None:
    began = completed(group(meta(status), "g1"))
    assert (began.status, began.partitions, began.groups) == (
        TxnStatus.ONGOING,
        frozenset(),
        frozenset({"g1"}),
    )
    assert began.txn_start_ms == T0 + 10
    grown = completed(group(began, "g2"))
    assert grown.groups == {"g1", "g2"} and grown.txn_start_ms == T0 + 10


# --- EndTxn -----------------------------------------------------------------------------


@pytest.mark.parametrize("commit", [True, False])
def test_end_of_an_ongoing_transaction_prepares_marks_and_completes(commit: bool) -> None:
    ongoing = meta(TxnStatus.ONGOING, partitions=frozenset({P0, Q0}), groups=frozenset({"g"}))
    out = end(ongoing, commit)
    prepare_status = TxnStatus.PREPARE_COMMIT if commit else TxnStatus.PREPARE_ABORT
    assert out.prepare == replace(
        ongoing, status=prepare_status, txn_start_ms=-1, last_update_ms=T0 + 10
    )
    assert out.markers == Markers(PID, 5, commit, frozenset({P0, Q0}), frozenset({"g"}))
    assert out.complete == replace(
        meta(TxnStatus.COMPLETE_COMMIT if commit else TxnStatus.COMPLETE_ABORT),
        last_update_ms=T0 + 10,
    )
    assert (out.producer_id, out.producer_epoch) == (-1, -1)


@pytest.mark.parametrize(("status", "commit"), [(COMPLETES[0], True), (COMPLETES[1], False)])
def test_a_retried_end_of_a_finished_transaction_is_a_no_op(
    status: TxnStatus, commit: bool
) -> None:
    assert end(meta(status), commit) == Outcome()


@pytest.mark.parametrize(
    ("status", "commit"),
    [
        (COMPLETES[0], False),
        (COMPLETES[1], True),
        (TxnStatus.EMPTY, True),
        (TxnStatus.EMPTY, False),
    ],
)
def test_end_in_the_opposite_direction_or_of_nothing_is_invalid(
    status: TxnStatus, commit: bool
) -> None:
    assert end(meta(status), commit) == Outcome(ErrorCode.invalid_txn_state)


@pytest.mark.parametrize("status", PREPARES)
def test_end_during_prepare_is_concurrent_or_invalid(status: TxnStatus) -> None:
    same = status is TxnStatus.PREPARE_COMMIT
    assert end(meta(status), same) == Outcome(ErrorCode.concurrent_transactions)
    assert end(meta(status), not same) == Outcome(ErrorCode.invalid_txn_state)


def test_two_transactional_ids_run_their_transactions_side_by_side() -> None:
    a = completed(init(None))
    b_out = init_producer(
        None,
        transactional_id="txn-b",
        timeout_ms=TIMEOUT,
        max_timeout_ms=MAX_TIMEOUT,
        producer_id=-1,
        producer_epoch=-1,
        new_producer_id=NEW_PID + 1,
        now_ms=T0,
    )
    b = completed(b_out)
    a = completed(
        add_partitions(
            a, producer_id=NEW_PID, producer_epoch=0, partitions=frozenset({P0}), now_ms=T0
        )
    )
    b = completed(
        add_partitions(
            b, producer_id=NEW_PID + 1, producer_epoch=0, partitions=frozenset({P0}), now_ms=T0
        )
    )
    a_end = end_txn(a, producer_id=NEW_PID, producer_epoch=0, commit=True, now_ms=T0 + 1)
    b_end = end_txn(b, producer_id=NEW_PID + 1, producer_epoch=0, commit=False, now_ms=T0 + 1)
    assert a_end.markers == Markers(NEW_PID, 0, True, frozenset({P0}), frozenset())
    assert b_end.markers == Markers(NEW_PID + 1, 0, False, frozenset({P0}), frozenset())
    # One id's producer cannot touch the other's transaction.
    assert add_partitions(
        b, producer_id=NEW_PID, producer_epoch=0, partitions=frozenset({P1}), now_ms=T0
    ).error is (ErrorCode.invalid_producer_id_mapping)


def test_a_whole_transaction_commits_and_the_next_begins() -> None:
    m = completed(init(None))
    m = completed(
        add_partitions(
            m, producer_id=NEW_PID, producer_epoch=0, partitions=frozenset({P0}), now_ms=T0
        )
    )
    m = completed(add_group(m, producer_id=NEW_PID, producer_epoch=0, group="g", now_ms=T0))
    out = end_txn(m, producer_id=NEW_PID, producer_epoch=0, commit=True, now_ms=T0 + 1)
    done = completed(out)
    assert done.status is TxnStatus.COMPLETE_COMMIT
    assert (
        end_txn(done, producer_id=NEW_PID, producer_epoch=0, commit=True, now_ms=T0 + 2)
        == Outcome()
    )
    again = completed(
        add_partitions(
            done, producer_id=NEW_PID, producer_epoch=0, partitions=frozenset({P1}), now_ms=T0 + 3
        )
    )
    assert (again.status, again.partitions, again.txn_start_ms) == (
        TxnStatus.ONGOING,
        frozenset({P1}),
        T0 + 3,
    )


# --- the timeout ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in ALL if s is not TxnStatus.ONGOING])
def test_only_ongoing_transactions_expire(status: TxnStatus) -> None:
    assert expire(meta(status), T0 + 10 * TIMEOUT) is None
    assert deadline_ms(meta(status)) is None


def test_a_transaction_expires_only_after_its_timeout() -> None:
    ongoing = meta(TxnStatus.ONGOING, groups=frozenset({"g"}))
    assert deadline_ms(ongoing) == T0 + TIMEOUT
    assert expire(ongoing, T0 + TIMEOUT) is None
    out = expire(ongoing, T0 + TIMEOUT + 1)
    assert out is not None
    assert out.prepare == replace(
        ongoing,
        producer_epoch=6,
        last_producer_epoch=5,
        status=TxnStatus.PREPARE_ABORT,
        txn_start_ms=-1,
        last_update_ms=T0 + TIMEOUT + 1,
    )
    assert out.markers == Markers(PID, 6, False, frozenset({P0}), frozenset({"g"}))
    assert out.complete == replace(
        meta(TxnStatus.COMPLETE_ABORT),
        producer_epoch=6,
        last_producer_epoch=5,
        last_update_ms=T0 + TIMEOUT + 1,
    )
    assert (out.producer_id, out.producer_epoch) == (-1, -1)


def test_an_expired_transactions_producer_is_fenced_everywhere() -> None:
    out = expire(meta(TxnStatus.ONGOING), T0 + TIMEOUT + 1)
    assert out is not None and out.prepare is not None and out.complete is not None
    for state in (out.prepare, out.complete):
        assert end(state, True).error is ErrorCode.producer_fenced
        assert add(state, P0).error is ErrorCode.producer_fenced
        assert verify(state, producer_id=PID, producer_epoch=5, partition=P0) is (
            ErrorCode.producer_fenced
        )


# --- recovery after a crash or a move ----------------------------------------------------


@pytest.mark.parametrize("commit", [True, False])
def test_recover_finishes_a_prepared_transaction_as_end_would_have(commit: bool) -> None:
    ongoing = meta(TxnStatus.ONGOING, groups=frozenset({"g"}))
    ended = end(ongoing, commit)
    assert ended.prepare is not None
    assert recover(ended.prepare) == Outcome(markers=ended.markers, complete=ended.complete)


@pytest.mark.parametrize("status", [s for s in ALL if s not in PREPARES])
def test_recover_leaves_other_states_alone(status: TxnStatus) -> None:
    assert recover(meta(status)) is None


# --- verify: partition leaders (KIP-890 part 1) and TxnOffsetCommit ------------------------

ONGOING_META = meta(TxnStatus.ONGOING, partitions=frozenset({P0}), groups=frozenset({"g"}))


def test_verify_accepts_the_current_producer_in_its_transaction() -> None:
    for kwargs in ({}, {"partition": P0}, {"group": "g"}, {"partition": P0, "group": "g"}):
        assert verify(ONGOING_META, producer_id=PID, producer_epoch=5, **kwargs) is ErrorCode.none


@pytest.mark.parametrize(
    "kwargs", [{"partition": P1}, {"group": "h"}, {"partition": P0, "group": "h"}]
)
def test_verify_refuses_what_is_not_in_the_transaction(kwargs: dict[str, Any]) -> None:
    assert verify(ONGOING_META, producer_id=PID, producer_epoch=5, **kwargs) is (
        ErrorCode.invalid_txn_state
    )


@pytest.mark.parametrize("status", ALL[:-1])
def test_verify_answers_an_older_epoch_fenced(status: TxnStatus) -> None:
    assert verify(meta(status), producer_id=PID, producer_epoch=4) is ErrorCode.producer_fenced


@pytest.mark.parametrize(
    ("current", "pid", "epoch"),
    [
        (None, PID, 5),
        (meta(TxnStatus.DEAD), PID, 5),
        (ONGOING_META, PID + 1, 5),
        (ONGOING_META, PID, 6),
        (meta(), PID, 5),
        *((meta(s), PID, 5) for s in PREPARES + COMPLETES),
    ],
)
def test_verify_refuses_anything_else_as_invalid_state(
    current: TxnMeta | None, pid: int, epoch: int
) -> None:
    assert verify(current, producer_id=pid, producer_epoch=epoch, partition=P0) is (
        ErrorCode.invalid_txn_state
    )


# --- purity: the state machine's modules import no clock, I/O, asyncio or storage ----------

TRANSACTIONS = Path(__file__).resolve().parents[2] / "broker" / "transactions"
DRIVER = "coordinator.py"  # the one module that will own locks, timers and persistence


def test_state_machine_modules_import_only_the_standard_datatypes_and_errors() -> None:
    modules = sorted(p for p in TRANSACTIONS.glob("*.py") if p.name != DRIVER)
    assert {p.name for p in modules} >= {"__init__.py", "model.py", "state.py"}
    allowed = {"__future__", "dataclasses", "enum", "typing"}
    project = ("tidelog.broker.transactions.", "tidelog.protocol.errors")
    imported = {
        (path.name, name)
        for path in modules
        for node in ast.walk(parse_file(path))
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.module
            else []
        )
    }
    assert ("state.py", "tidelog.protocol.errors") in imported
    offenders = sorted(
        f"{file} imports {name}"
        for file, name in imported
        if name not in allowed and not name.startswith(project)
    )
    assert offenders == []
