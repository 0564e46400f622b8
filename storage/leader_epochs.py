"""Partition leader epochs (KIP-101, KIP-320): which epoch wrote which offsets.

Owns: the meaning of a partition's epoch map (Kafka's leader-epoch-checkpoint) and the
answer to "where does epoch E end" that OffsetForLeaderEpoch gives. Pure: no I/O.

A partition's leader epoch is its *tenure*: the metadata-log seq of the `assign` that
gave the current owner the partition (storage/meta_state.py `Owner.seq`). Every broker
folds the same metadata log, so every broker reports the same epoch, and a seq only
grows, so every ownership change gives a larger one (docs/leader-epochs.md).

The map is a list of (epoch, start offset), oldest first, both strictly increasing:
each adoption adds (tenure, log end offset at adoption); an epoch under which nothing
was written is replaced by the next one starting at the same offset, as Kafka's
LeaderEpochFileCache does. At most `MAX_EPOCHS` are kept (the oldest go): asked about
an epoch older than any kept, the answer is the first kept start, never an earlier
offset, so a client is never told its records were truncated when they were not.
"""

from __future__ import annotations

from collections.abc import Sequence

from tidelog.protocol.errors import ErrorCode

EpochMap = list[tuple[int, int]]  # (epoch, start offset), oldest first

MAX_EPOCHS = 64
UNDEFINED_EPOCH = -1  # Kafka's RecordBatch.NO_PARTITION_LEADER_EPOCH
UNDEFINED_OFFSET = -1
INT32_MAX = 2**31 - 1


def as_leader_epoch(tenure: int) -> int:
    """The tenure as Kafka's int32 leader epoch; -1 (no epoch: clients skip validation,
    as against a broker without epochs) if it does not fit."""
    return tenure if 0 <= tenure <= INT32_MAX else UNDEFINED_EPOCH


def record_epoch(epochs: Sequence[tuple[int, int]], epoch: int, start: int) -> EpochMap:
    """`epochs` with `epoch` starting at `start`: entries not below it in both epoch and
    start offset go (an older epoch that wrote nothing, or a stale one)."""
    kept = [(e, s) for e, s in epochs if e < epoch and s < start]
    kept.append((epoch, start))
    return kept[-MAX_EPOCHS:]


def move_epoch_start(epochs: EpochMap, epoch: int, start: int) -> EpochMap:
    """The latest epoch, if it is `epoch`, begins at `start` instead (never earlier): the
    records replayed from a WAL belong to the epoch that acknowledged them."""
    if not epochs or epochs[-1][0] != epoch or start <= epochs[-1][1]:
        return epochs
    return [*epochs[:-1], (epoch, start)]


def end_offset_for(
    epochs: Sequence[tuple[int, int]], requested: int, current: int, end_offset: int
) -> tuple[int, int]:
    """(largest epoch <= requested, the offset where it ends) as OffsetForLeaderEpoch
    answers it; `current` is the partition's epoch now, `end_offset` where it ends today
    (the high watermark). (-1, -1) for an undefined or a future epoch."""
    if requested < 0 or requested > current:
        return UNDEFINED_EPOCH, UNDEFINED_OFFSET
    if requested == current:
        return current, end_offset
    floor = UNDEFINED_EPOCH
    for epoch, start in epochs:
        if epoch > requested:
            # Older than every epoch we kept: Kafka answers the requested epoch itself.
            return (floor if floor >= 0 else requested), min(start, end_offset)
        floor = epoch
    # No later epoch wrote anything yet: the requested one runs to the end.
    return (floor if floor >= 0 else requested), end_offset


def check_current_epoch(current: int, requested: int) -> ErrorCode:
    """A request's `current_leader_epoch` against ours (KIP-320): -1 is not checked; an
    older one is FENCED_LEADER_EPOCH (the client's metadata is stale: it refreshes and
    retries), a newer one UNKNOWN_LEADER_EPOCH (ours is: it retries after a backoff)."""
    if requested < 0 or requested == current:
        return ErrorCode.none
    return ErrorCode.fenced_leader_epoch if requested < current else ErrorCode.unknown_leader_epoch


def epoch_at(epochs: Sequence[tuple[int, int]], offset: int) -> int:
    """The epoch that wrote `offset` (ListOffsets reports it): the last one starting at
    or below it; -1 below every epoch kept."""
    found = UNDEFINED_EPOCH
    for epoch, start in epochs:
        if start > offset:
            break
        found = epoch
    return as_leader_epoch(found)
