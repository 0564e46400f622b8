"""The stream ops of transactional offsets (storage/stream_state.py): what a marker
makes of the offsets staged per (group, producer id, epoch)."""

from __future__ import annotations

from typing import Any

from tidelog.storage.commit_format import CommitHeader
from tidelog.storage.stream_state import StreamState

GROUP, PID = "g", 7


def fold(*ops: dict[str, Any]) -> StreamState:
    state = StreamState(stream="s")
    prev = ""
    for seq, op in enumerate(ops):
        header = CommitHeader(1, seq - 1, 0, ops=(op,), commit_id=f"c{seq}", prev_id=prev)
        assert state.apply(seq, header, 0)
        prev = f"c{seq}"
    return state


def stage(epoch: int, partition: int, offset: int) -> dict[str, Any]:
    rows = [["t", partition, offset, -1, ""]]
    return {"op": "txn_offsets", "group": GROUP, "pid": PID, "epoch": epoch, "offsets": rows}


def end(commit: bool, epoch: int | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"op": "txn_offsets_end", "pid": PID, "groups": [GROUP]}
    op.update(commit=commit, ts=1)
    if epoch is not None:
        op["epoch"] = epoch
    return op


def committed(state: StreamState) -> dict[int, int]:
    return {p: c.offset for (_, p), c in state.group_offsets.get(GROUP, {}).items()}


def test_the_commit_marker_of_the_staging_epoch_commits_its_offsets() -> None:
    state = fold(stage(3, 0, 10), stage(3, 1, 20), end(True, 3))
    assert committed(state) == {0: 10, 1: 20} and state.txn_offsets == {}


def test_an_abort_marker_drops_them() -> None:
    state = fold(stage(3, 0, 10), end(False, 3))
    assert committed(state) == {} and state.txn_offsets == {}


def test_a_fenced_epochs_late_offsets_never_join_the_newer_transaction() -> None:
    state = fold(stage(4, 0, 10), stage(3, 1, 99), end(True, 4))
    assert committed(state) == {0: 10}


def test_offsets_left_by_an_aborted_epoch_are_dropped_by_the_next_epochs_commit() -> None:
    # Staged after the timeout's ABORT marker (epoch 4) had passed: stale.
    state = fold(stage(3, 1, 99), end(True, 4))
    assert committed(state) == {} and state.txn_offsets == {}


def test_a_marker_of_an_older_epoch_leaves_a_newer_epochs_offsets_pending() -> None:
    state = fold(stage(5, 0, 10), end(False, 4))
    assert committed(state) == {} and state.txn_offsets[GROUP][PID]["epoch"] == 5
    assert committed(fold(stage(5, 0, 10), end(False, 4), end(True, 5))) == {0: 10}


def test_a_marker_written_before_markers_carried_an_epoch_ends_whatever_is_pending() -> None:
    assert committed(fold(stage(3, 0, 10), end(True))) == {0: 10}


def test_one_marker_commits_every_group_of_its_epoch() -> None:
    # The rows carry a leader epoch (0 here) that must not be taken for the marker's.
    rows = [["t", 0, 10, 0, ""]]
    ops = [
        {"op": "txn_offsets", "group": g, "pid": PID, "epoch": 5, "offsets": rows}
        for g in ("a", "b")
    ]
    done = {"op": "txn_offsets_end", "pid": PID, "epoch": 5, "groups": ["a", "b"]}
    done.update(commit=True, ts=1)
    state = fold(*ops, done)
    offsets = state.group_offsets
    assert {g: {p: c.offset for (_, p), c in o.items()} for g, o in offsets.items()} == {
        "a": {0: 10},
        "b": {0: 10},
    }
    assert state.txn_offsets == {}
