"""One transactional id as a pure state machine: Kafka's TransactionCoordinator, minus I/O.

Owns: `Markers` and `Outcome` (what the driver must do), and the transitions
`init_producer` (InitProducerId), `add_partitions` (AddPartitionsToTxn),
`add_group` (AddOffsetsToTxn), `end_txn` (EndTxn), `expire` (the transaction timeout),
`recover` (a Prepare* found after a crash or a slot move), the read-only `verify`
(partition leaders, KIP-890 part 1, and TxnOffsetCommit), and two helpers for the
driver: `needs_producer_id` and `deadline_ms`.

Guarantees:
* No I/O, no clock, no logging: time is `now_ms`, new producer ids are passed in.
* Every function takes the current `TxnMeta` (None: the id is unknown) and returns
  values; nothing is mutated. The driver persists `Outcome.prepare` first, then writes
  `Outcome.markers` into every partition and group, then persists `Outcome.complete`;
  an empty `Outcome()` means "answer success, nothing to do" (a retry).
* Invariants of every meta returned: the epoch of a producer id never decreases;
  Ongoing has partitions or groups, Empty and Complete* have none, Prepare* keeps the
  transaction's; `txn_start_ms` is -1 unless Ongoing; markers carry the prepare's
  producer id and epoch; a producer is never handed `MAX_EPOCH` (kept for fencing).

Choices where notes/txn-spec.md is silent, following Apache Kafka:
* Exhaustion: a bump from epoch `EXHAUSTED_EPOCH` (32766) or more takes
  `new_producer_id` at epoch 0; `last_producer_id`/`last_producer_epoch` keep the old
  identity, so a retry of that InitProducerId still gets the new one (KIP-360). A
  fencing bump (expiry, or an init aborting an Ongoing txn) may reach 32767.
* `last_producer_epoch` is set by every bump, the timeout's too: a producer whose
  transaction timed out re-inits with its old (pid, epoch) and is handed the bumped
  epoch without another bump (KIP-588's recovery). If that epoch is 32767 it is not
  handed out: the id rotates instead, and the old identity is still remembered.
* A KIP-360 init giving a producer id with epoch -1 expects nothing of the epoch: it
  bumps if the id is the current one (Kafka does the same). A retried init (the old
  identity) while a transaction is Ongoing is fenced: the answer would hand the epoch
  of a live transaction to a second producer.
* `Dead` (an expired transactional id) is treated as no meta at all.
* AddPartitionsToTxn / AddOffsetsToTxn adding nothing new is `Outcome()`: an empty add
  does not begin a transaction (so Ongoing always has something to write markers to);
  a transaction's timeout runs from its first add, as in Kafka.
* Errors of init, in Kafka's order: timeout, then Prepare* (CONCURRENT_TRANSACTIONS, the
  client retries), then the KIP-360 identity (PRODUCER_FENCED). Add and EndTxn: producer
  id, then epoch, then state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tidelog.broker.transactions.model import (
    EXHAUSTED_EPOCH,
    MAX_EPOCH,
    NO_EPOCH,
    NO_PRODUCER_ID,
    TxnMeta,
    TxnStatus,
)
from tidelog.protocol.errors import ErrorCode

__all__ = [
    "Markers",
    "Outcome",
    "add_group",
    "add_partitions",
    "deadline_ms",
    "end_txn",
    "expire",
    "init_producer",
    "needs_producer_id",
    "recover",
    "verify",
]

EMPTY = TxnStatus.EMPTY
ONGOING = TxnStatus.ONGOING
DEAD = TxnStatus.DEAD
NO_PARTITIONS: frozenset[tuple[str, int]] = frozenset()
NO_GROUPS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Markers:
    """What must be written into every partition and group of a transaction."""

    producer_id: int
    producer_epoch: int
    commit: bool
    partitions: frozenset[tuple[str, int]]
    groups: frozenset[str]


@dataclass(frozen=True, slots=True)
class Outcome:
    error: ErrorCode = ErrorCode.none
    prepare: TxnMeta | None = None  # persist this first (None: nothing)
    markers: Markers | None = None  # then write these (after prepare landed)
    complete: TxnMeta | None = None  # then persist this
    producer_id: int = NO_PRODUCER_ID  # InitProducerId's answer
    producer_epoch: int = NO_EPOCH


def init_producer(
    meta: TxnMeta | None,
    *,
    transactional_id: str,
    timeout_ms: int,
    max_timeout_ms: int,
    producer_id: int,
    producer_epoch: int,
    new_producer_id: int,
    now_ms: int,
) -> Outcome:
    """InitProducerId for a transactional id; `producer_id`/`producer_epoch` are -1
    unless the client sent its current identity (KIP-360, v3+)."""
    if timeout_ms <= 0 or timeout_ms > max_timeout_ms:
        return Outcome(ErrorCode.invalid_transaction_timeout)
    if meta is None or meta.status is DEAD:
        fresh = TxnMeta(
            transactional_id=transactional_id,
            producer_id=new_producer_id,
            producer_epoch=0,
            last_producer_id=NO_PRODUCER_ID,
            last_producer_epoch=NO_EPOCH,
            timeout_ms=timeout_ms,
            status=EMPTY,
            partitions=NO_PARTITIONS,
            groups=NO_GROUPS,
            txn_start_ms=-1,
            last_update_ms=now_ms,
        )
        return _answer(None, None, fresh)
    if meta.status.is_prepare:
        return Outcome(ErrorCode.concurrent_transactions)
    if producer_id >= 0:
        if _is_last_identity(meta, producer_id, producer_epoch):
            if meta.status is ONGOING:
                return Outcome(ErrorCode.producer_fenced)
            if meta.producer_epoch < MAX_EPOCH:  # a retry: hand out what the bump gave
                return Outcome(producer_id=meta.producer_id, producer_epoch=meta.producer_epoch)
            rotated = _with_identity(meta, new_producer_id, 0, meta.producer_id, producer_epoch)
            return _answer(None, None, _empty(rotated, timeout_ms, now_ms))
        if producer_id != meta.producer_id or producer_epoch not in (meta.producer_epoch, NO_EPOCH):
            return Outcome(ErrorCode.producer_fenced)
    bumped = _bumped(meta, new_producer_id)
    if meta.status is not ONGOING:
        return _answer(None, None, _empty(bumped, timeout_ms, now_ms))
    fenced = _fenced(meta)
    prepare = _prepare(fenced, commit=False, now_ms=now_ms)
    return _answer(prepare, _markers(prepare), _empty(bumped, timeout_ms, now_ms))


def add_partitions(
    meta: TxnMeta | None,
    *,
    producer_id: int,
    producer_epoch: int,
    partitions: frozenset[tuple[str, int]],
    now_ms: int,
) -> Outcome:
    """AddPartitionsToTxn: begin the transaction, or grow it."""
    return _add(meta, producer_id, producer_epoch, frozenset(partitions), NO_GROUPS, now_ms)


def add_group(
    meta: TxnMeta | None, *, producer_id: int, producer_epoch: int, group: str, now_ms: int
) -> Outcome:
    """AddOffsetsToTxn: the group's TxnOffsetCommits become part of the transaction."""
    return _add(meta, producer_id, producer_epoch, NO_PARTITIONS, frozenset((group,)), now_ms)


def end_txn(
    meta: TxnMeta | None, *, producer_id: int, producer_epoch: int, commit: bool, now_ms: int
) -> Outcome:
    """EndTxn: commit or abort the Ongoing transaction; a retry of a finished one is a no-op."""
    error = _check_producer(meta, producer_id, producer_epoch)
    if error is not ErrorCode.none:
        return Outcome(error)
    assert meta is not None  # _check_producer refuses None
    match meta.status:
        case TxnStatus.ONGOING:
            prepare = _prepare(meta, commit=commit, now_ms=now_ms)
            return Outcome(prepare=prepare, markers=_markers(prepare), complete=_complete(prepare))
        case TxnStatus.COMPLETE_COMMIT | TxnStatus.COMPLETE_ABORT:
            same = commit == (meta.status is TxnStatus.COMPLETE_COMMIT)
            return Outcome() if same else Outcome(ErrorCode.invalid_txn_state)
        case TxnStatus.PREPARE_COMMIT | TxnStatus.PREPARE_ABORT:
            same = commit == (meta.status is TxnStatus.PREPARE_COMMIT)
            return Outcome(
                ErrorCode.concurrent_transactions if same else ErrorCode.invalid_txn_state
            )
        case _:  # Empty: nothing was begun
            return Outcome(ErrorCode.invalid_txn_state)


def expire(meta: TxnMeta, now_ms: int) -> Outcome | None:
    """Abort an Ongoing transaction older than its timeout, bumping the epoch to fence the
    producer; None if it is not due."""
    due = deadline_ms(meta)
    if due is None or now_ms <= due:
        return None
    prepare = _prepare(_fenced(meta), commit=False, now_ms=now_ms)
    return Outcome(prepare=prepare, markers=_markers(prepare), complete=_complete(prepare))


def recover(meta: TxnMeta) -> Outcome | None:
    """Finish a Prepare* transaction (after a crash or a move): its markers again, which
    partitions and groups apply idempotently, then its completion."""
    if not meta.status.is_prepare:
        return None
    return Outcome(markers=_markers(meta), complete=_complete(meta))


def verify(
    meta: TxnMeta | None,
    *,
    producer_id: int,
    producer_epoch: int,
    partition: tuple[str, int] | None = None,
    group: str | None = None,
) -> ErrorCode:
    """Is (pid, epoch) in an Ongoing transaction that holds `partition` and `group`?
    `producer_fenced` for an older epoch of the same id (the caller maps it to
    INVALID_PRODUCER_EPOCH), else `invalid_txn_state`."""
    if meta is None or meta.status is DEAD or meta.producer_id != producer_id:
        return ErrorCode.invalid_txn_state
    if producer_epoch < meta.producer_epoch:
        return ErrorCode.producer_fenced
    if producer_epoch != meta.producer_epoch or meta.status is not ONGOING:
        return ErrorCode.invalid_txn_state
    if partition is not None and partition not in meta.partitions:
        return ErrorCode.invalid_txn_state
    if group is not None and group not in meta.groups:
        return ErrorCode.invalid_txn_state
    return ErrorCode.none


def needs_producer_id(meta: TxnMeta | None) -> bool:
    """Whether `init_producer` may use `new_producer_id` (allocate one only then; pass -1
    otherwise)."""
    return meta is None or meta.status is DEAD or meta.producer_epoch >= EXHAUSTED_EPOCH


def deadline_ms(meta: TxnMeta) -> int | None:
    """When an Ongoing transaction times out: `expire` aborts it at any later instant."""
    if meta.status is not ONGOING:
        return None
    return meta.txn_start_ms + meta.timeout_ms


def _add(
    meta: TxnMeta | None,
    producer_id: int,
    producer_epoch: int,
    partitions: frozenset[tuple[str, int]],
    groups: frozenset[str],
    now_ms: int,
) -> Outcome:
    error = _check_producer(meta, producer_id, producer_epoch)
    if error is not ErrorCode.none:
        return Outcome(error)
    assert meta is not None  # _check_producer refuses None
    if meta.status.is_prepare:
        return Outcome(ErrorCode.concurrent_transactions)
    if partitions <= meta.partitions and groups <= meta.groups:
        return Outcome()  # nothing new (an Ongoing retry, or an empty add)
    ongoing = meta.status is ONGOING
    grown = replace(
        meta,
        status=ONGOING,
        partitions=meta.partitions | partitions,
        groups=meta.groups | groups,
        txn_start_ms=meta.txn_start_ms if ongoing else now_ms,
        last_update_ms=now_ms,
    )
    return Outcome(complete=grown)


def _check_producer(meta: TxnMeta | None, producer_id: int, producer_epoch: int) -> ErrorCode:
    """The checks AddPartitionsToTxn, AddOffsetsToTxn and EndTxn share."""
    if meta is None or meta.status is DEAD or meta.producer_id != producer_id:
        return ErrorCode.invalid_producer_id_mapping
    if producer_epoch < meta.producer_epoch:
        return ErrorCode.producer_fenced
    if producer_epoch > meta.producer_epoch:
        return ErrorCode.invalid_producer_epoch  # a producer ahead of us: should not happen
    return ErrorCode.none


def _is_last_identity(meta: TxnMeta, producer_id: int, producer_epoch: int) -> bool:
    """Whether (pid, epoch) is what the producer held before the last bump."""
    if meta.last_producer_epoch < 0 or producer_epoch != meta.last_producer_epoch:
        return False
    last_id = meta.producer_id if meta.last_producer_id < 0 else meta.last_producer_id
    return producer_id == last_id


def _with_identity(
    meta: TxnMeta, producer_id: int, epoch: int, last_id: int, last_epoch: int
) -> TxnMeta:
    return replace(
        meta,
        producer_id=producer_id,
        producer_epoch=epoch,
        last_producer_id=last_id,
        last_producer_epoch=last_epoch,
    )


def _bumped(meta: TxnMeta, new_producer_id: int) -> TxnMeta:
    """The identity a producer is handed next: epoch + 1, or a new id once exhausted."""
    if meta.producer_epoch >= EXHAUSTED_EPOCH:
        return _with_identity(meta, new_producer_id, 0, meta.producer_id, meta.producer_epoch)
    return _with_identity(
        meta, meta.producer_id, meta.producer_epoch + 1, NO_PRODUCER_ID, meta.producer_epoch
    )


def _fenced(meta: TxnMeta) -> TxnMeta:
    """Epoch + 1 to fence the current producer (up to MAX_EPOCH, which only fences)."""
    epoch = min(meta.producer_epoch + 1, MAX_EPOCH)
    return _with_identity(meta, meta.producer_id, epoch, NO_PRODUCER_ID, meta.producer_epoch)


def _empty(meta: TxnMeta, timeout_ms: int, now_ms: int) -> TxnMeta:
    return replace(
        meta,
        timeout_ms=timeout_ms,
        status=EMPTY,
        partitions=NO_PARTITIONS,
        groups=NO_GROUPS,
        txn_start_ms=-1,
        last_update_ms=now_ms,
    )


def _prepare(meta: TxnMeta, *, commit: bool, now_ms: int) -> TxnMeta:
    status = TxnStatus.PREPARE_COMMIT if commit else TxnStatus.PREPARE_ABORT
    return replace(meta, status=status, txn_start_ms=-1, last_update_ms=now_ms)


def _complete(prepare: TxnMeta) -> TxnMeta:
    commit = prepare.status is TxnStatus.PREPARE_COMMIT
    return replace(
        prepare,
        status=TxnStatus.COMPLETE_COMMIT if commit else TxnStatus.COMPLETE_ABORT,
        partitions=NO_PARTITIONS,
        groups=NO_GROUPS,
        txn_start_ms=-1,
    )


def _markers(prepare: TxnMeta) -> Markers:
    return Markers(
        producer_id=prepare.producer_id,
        producer_epoch=prepare.producer_epoch,
        commit=prepare.status is TxnStatus.PREPARE_COMMIT,
        partitions=prepare.partitions,
        groups=prepare.groups,
    )


def _answer(prepare: TxnMeta | None, markers: Markers | None, complete: TxnMeta) -> Outcome:
    return Outcome(
        prepare=prepare,
        markers=markers,
        complete=complete,
        producer_id=complete.producer_id,
        producer_epoch=complete.producer_epoch,
    )
