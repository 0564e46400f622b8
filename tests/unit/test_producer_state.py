from tidelog.storage.commit_format import ProducerBatch
from tidelog.storage.producer_state import ProducerStates, Verdict


def _stored(states: ProducerStates, pid: int, epoch: int, first: int, last: int, base: int) -> None:
    states.record(ProducerBatch(pid, epoch, first, last, base, base + last - first))


def test_new_producer_must_start_at_sequence_zero() -> None:
    states = ProducerStates()
    assert states.check(7, 0, 0, 4).verdict is Verdict.APPEND
    assert states.check(7, 0, 5, 9).verdict is Verdict.OUT_OF_ORDER


def test_retry_of_a_recent_batch_is_a_duplicate_with_its_first_offset() -> None:
    states = ProducerStates()
    _stored(states, 7, 0, 0, 4, base=100)
    _stored(states, 7, 0, 5, 9, base=105)
    check = states.check(7, 0, 0, 4)
    assert check.verdict is Verdict.DUPLICATE
    assert check.duplicate_of is not None and check.duplicate_of.base_offset == 100


def test_gap_in_sequence_is_out_of_order() -> None:
    states = ProducerStates()
    _stored(states, 7, 0, 0, 4, base=0)
    assert states.check(7, 0, 6, 9).verdict is Verdict.OUT_OF_ORDER
    assert states.check(7, 0, 5, 9).verdict is Verdict.APPEND


def test_older_epoch_is_stale_and_newer_epoch_restarts_at_zero() -> None:
    states = ProducerStates()
    _stored(states, 7, 3, 0, 4, base=0)
    assert states.check(7, 2, 5, 5).verdict is Verdict.STALE_EPOCH
    assert states.check(7, 4, 0, 0).verdict is Verdict.APPEND
    assert states.check(7, 4, 5, 5).verdict is Verdict.OUT_OF_ORDER


def test_only_the_last_five_batches_are_remembered() -> None:
    states = ProducerStates()
    for i in range(7):
        _stored(states, 1, 0, i, i, base=i)
    assert states.check(1, 0, 0, 0).verdict is Verdict.OUT_OF_ORDER
    assert states.check(1, 0, 2, 2).verdict is Verdict.DUPLICATE


def test_state_survives_snapshot_and_restore() -> None:
    states = ProducerStates()
    _stored(states, 9, 1, 0, 2, base=40)
    restored = ProducerStates()
    restored.restore(states.snapshot())
    assert restored.check(9, 1, 0, 2).verdict is Verdict.DUPLICATE
    assert restored.check(9, 1, 3, 3).verdict is Verdict.APPEND


def test_non_idempotent_batches_are_never_checked() -> None:
    assert ProducerStates().check(-1, -1, -1, -1).verdict is Verdict.APPEND
