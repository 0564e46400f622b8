"""The produce path: validate, deduplicate, assign offsets, make durable, then ack.

Owns: `append_nowait` (everything up to the assigned offsets, before it returns) and
the waits that follow it (WAL sync, then the lease; or, in object mode, the commit).

Guarantees (docs/durability.md):
- `wal` mode: an append completes only after its batch is fdatasync'ed to the WAL
  and while the lease holds; `object` mode: only after the commit holding it landed;
- the high watermark (what fetches can see) never passes what is durable;
- a produce whose WAL write fails is answered KAFKA_STORAGE_ERROR and leaves the
  partition as it was (offsets, bytes, producer sequences); while the WAL cannot write,
  produce is refused before anything is stored;
- a fenced broker stops acknowledging at once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from tidelog.protocol.batch import (
    BatchHeader,
    iter_batches,
    patch_base_offset,
    patch_partition_leader_epoch,
    set_base_offsets,
    validate_produce_records,
)
from tidelog.protocol.control import control_batch
from tidelog.protocol.errors import ErrorCode, RecordBatchError
from tidelog.protocol.records import decode_records
from tidelog.storage.commit_format import ProducerBatch
from tidelog.storage.errors import StoreError, fenced_error
from tidelog.storage.lease import Lease
from tidelog.storage.partition_log import Batch, PartitionLog
from tidelog.storage.producer_state import Verdict
from tidelog.storage.stream_state import PartitionKey
from tidelog.storage.topic_catalog import INTERNAL_TOPICS
from tidelog.storage.txn_index import TxnEvent, batch_event
from tidelog.storage.upload_backlog import UploadBacklog
from tidelog.storage.wal import KIND_BATCH, WalError, encode_payload


@dataclass(frozen=True, slots=True)
class AppendResult:
    base_offset: int
    log_start_offset: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """An append whose offsets are assigned; `durable` completes when it may be acked."""

    result: AppendResult
    durable: Coroutine[Any, Any, None]


class ProducePath:
    def __init__(
        self,
        *,
        partitions: dict[PartitionKey, PartitionLog],
        moving: set[PartitionKey],
        backlog: UploadBacklog,
        lease: Lease,
        max_backlog_bytes: int,
        leader_of: Callable[[str, int], PartitionLog],
        topic_config: Callable[[str, str], str],
        renew_lease: Callable[[], None],
        kick_flusher: Callable[[], None],
    ) -> None:
        self._partitions = partitions
        self._moving = moving
        self._backlog = backlog
        self._lease = lease
        self._max_backlog_bytes = max_backlog_bytes
        self._leader_of = leader_of
        self._topic_config = topic_config
        self._renew_lease = renew_lease
        self._kick_flusher = kick_flusher

    def append_nowait(
        self,
        topic: str,
        partition: int,
        records: bytes | bytearray | memoryview,
        *,
        txn_verified: bool = False,
    ) -> PendingAppend:
        """`txn_verified`: the transaction coordinator confirmed this partition is in the
        producer's open transaction (a transactional batch that would open one here is
        refused without it: docs/transactions.md, "Late writes")."""
        if topic in INTERNAL_TOPICS:
            raise StoreError(
                ErrorCode.invalid_topic_exception,
                f"cannot produce to kafka's internal topic topic={topic}",
            )
        part = self._writable(topic, partition)
        max_bytes = int(self._topic_config(topic, "max.message.bytes"))
        try:
            headers = validate_produce_records(records)
        except RecordBatchError as exc:
            raise StoreError(exc.error_code, str(exc)) from None
        if len(records) > max_bytes:
            raise StoreError(
                ErrorCode.message_too_large,
                f"batch larger than max.message.bytes size={len(records)} max={max_bytes}",
            )
        if "compact" in self._topic_config(topic, "cleanup.policy"):
            _check_keys(records, topic, partition)
        first = headers[0]
        count = sum(h.last_offset_delta + 1 for h in headers)
        if first.is_transactional:
            self._check_transactional(part, first, txn_verified)
        if first.producer_id >= 0:
            last_seq = first.base_sequence + count - 1
            check = part.state.producers.check(
                first.producer_id, first.producer_epoch, first.base_sequence, last_seq
            )
            if check.verdict is Verdict.DUPLICATE and check.duplicate_of is not None:
                dup = check.duplicate_of
                return PendingAppend(
                    AppendResult(dup.base_offset, part.log_start, duplicate=True),
                    self._wait_visible(part, dup.last_offset + 1, part.discards),
                )
            if check.verdict is Verdict.OUT_OF_ORDER:
                raise StoreError(
                    ErrorCode.out_of_order_sequence_number,
                    f"out of order sequence topic={topic} partition={partition} "
                    f"producer_id={first.producer_id} sequence={first.base_sequence}",
                )
            if check.verdict is Verdict.STALE_EPOCH:
                raise StoreError(
                    ErrorCode.invalid_producer_epoch,
                    f"stale producer epoch producer_id={first.producer_id} "
                    f"epoch={first.producer_epoch}",
                )
        self._check_room(topic, partition)
        base = part.next_offset
        data, end = _with_offsets(records, base, part.leader_epoch)
        producer = None
        if first.producer_id >= 0:
            producer = ProducerBatch(
                first.producer_id,
                first.producer_epoch,
                first.base_sequence,
                first.base_sequence + count - 1,
                base,
                end - 1,
            )
        max_ts = max(h.max_timestamp for h in headers)
        txn = batch_event(data, first, base) if first.is_transactional else None
        return self._store(part, Batch(base, end, max_ts, data, producer, txn))

    def append_marker(
        self,
        topic: str,
        partition: int,
        *,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        timestamp: int,
    ) -> PendingAppend:
        """Write a transaction's COMMIT or ABORT marker (a control batch) here."""
        part = self._writable(topic, partition)
        self._check_room(topic, partition)
        raw = control_batch(
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            commit=commit,
            coordinator_epoch=coordinator_epoch,
            timestamp=timestamp,
        )
        base = part.next_offset
        data, end = set_base_offsets(raw, base, partition_leader_epoch=part.leader_epoch)
        header = next(iter_batches(data))[1]
        event: TxnEvent | None = batch_event(data, header, base)
        return self._store(part, Batch(base, end, timestamp, data, None, event))

    def _writable(self, topic: str, partition: int) -> PartitionLog:
        """The partition, if we lead it and may write to it now."""
        if self._lease.fenced:
            raise fenced_error()
        part = self._leader_of(topic, partition)
        if part.key in self._moving:
            raise StoreError(
                ErrorCode.not_leader_or_follower,
                f"partition moving to another broker topic={topic} partition={partition}",
            )
        return part

    def _check_transactional(self, part: PartitionLog, first: BatchHeader, verified: bool) -> None:
        where = f"topic={part.state.topic} partition={part.state.partition}"
        if first.producer_id < 0:
            raise StoreError(
                ErrorCode.invalid_record,
                f"transactional batch without a producer id {where}",
            )
        if part.opens_transaction(first.producer_id) and not verified:
            raise StoreError(
                ErrorCode.invalid_txn_state,
                f"transactional batch for a partition not in the producer's open "
                f"transaction {where} producer_id={first.producer_id} "
                f"epoch={first.producer_epoch}",
            )

    def _check_room(self, topic: str, partition: int) -> None:
        backlog = self._backlog.uncommitted_bytes
        if backlog > self._max_backlog_bytes:
            raise StoreError(
                ErrorCode.kafka_storage_error,
                f"upload backlog full; object store slow or unavailable backlog_bytes={backlog}",
            )
        wal = self._backlog.wal
        if wal is not None and not wal.writable:
            # Refused before anything is stored, so the answer comes at once and the log
            # stays as it was (docs/wal-format.md, "A full disk").
            raise StoreError(
                ErrorCode.kafka_storage_error,
                f"wal cannot write (disk full?); retry later topic={topic} partition={partition}",
            )

    def _store(self, part: PartitionLog, batch: Batch) -> PendingAppend:
        """Add an accepted batch and make it durable (WAL, or the next upload)."""
        topic, partition = part.key
        base, end, data = batch.base_offset, batch.end_offset, batch.data
        part.add(batch)
        self._backlog.added(len(data))
        self._kick_flusher()
        result = AppendResult(base, part.log_start)
        wal = self._backlog.wal
        if wal is None:
            return PendingAppend(result, self._wait_visible(part, end))
        head = encode_payload(KIND_BATCH, part.topic_id, topic, partition)
        undo = functools.partial(self._give_back, part, base)
        try:
            synced = wal.append(head, data, ((topic, partition), end), undo)
        except WalError as exc:
            undo()
            raise StoreError(ErrorCode.kafka_storage_error, str(exc)) from None
        return PendingAppend(result, self._wait_wal(part, end, synced))

    def _give_back(self, part: PartitionLog, base: int) -> None:
        """A batch's WAL write failed: forget it and everything after it in its partition
        (those writes failed too), so a produce answered with an error stores nothing."""
        part.discard_from(base)
        self._backlog.recount()

    async def _wait_wal(self, part: PartitionLog, end: int, synced: asyncio.Future[None]) -> None:
        try:
            await synced
        except WalError as exc:
            raise StoreError(ErrorCode.kafka_storage_error, str(exc)) from None
        # The lease: ack only while a commit of ours landed within the session timeout,
        # so a broker fenced behind our back (its stream sealed) stops acking before its
        # successor serves (docs/durability.md, "Leases"). Idle for a while: one upload
        # renews it.
        if not await self._lease.wait_held(self._renew_lease):
            raise fenced_error()
        part.advance_high_watermark(end)

    async def _wait_visible(self, part: PartitionLog, end: int, discards: int = -1) -> None:
        """Until offsets below `end` are visible. With `discards` (a retry's wait for the
        batch it duplicates): fail if batches were given back since, which may be it."""
        while part.high_watermark < end:
            if self._lease.fenced:
                raise fenced_error()
            if self._partitions.get(part.key) is not part and part.high_watermark < end:
                raise StoreError(ErrorCode.unknown_topic_or_partition, "topic deleted")
            if discards >= 0 and part.discards != discards:
                raise StoreError(
                    ErrorCode.kafka_storage_error,
                    f"the batch this retry repeats was not written to the wal; retry "
                    f"topic={part.state.topic} partition={part.state.partition}",
                )
            await part.waiter()


def _check_keys(records: bytes | bytearray | memoryview, topic: str, partition: int) -> None:
    """A compacted topic takes only records with a key (KIP-467): each one without is
    named in the answer by its index in the batch, as Kafka's broker names it. The one
    place produce decodes records, and only for compacted topics."""
    try:
        keys = [record.key for record in decode_records(records)]
    except RecordBatchError as exc:
        raise StoreError(ErrorCode.corrupt_message, str(exc)) from None
    missing = tuple(
        (
            index,
            f"Compacted topic cannot accept message without key in topic partition "
            f"{topic}-{partition}.",
        )
        for index, key in enumerate(keys)
        if key is None
    )
    if missing:
        raise StoreError(
            ErrorCode.invalid_record,
            f"One or more records have been rejected: compacted topic cannot accept a "
            f"record without a key topic={topic} partition={partition} "
            f"records={len(missing)}",
            missing,
        )


def _with_offsets(
    records: bytes | bytearray | memoryview, base: int, epoch: int
) -> tuple[bytearray | memoryview, int]:
    """The batches with offsets from `base` and our leader epoch (Kafka's leader stamps
    both; neither is under the CRC): patched in place when the buffer is ours to write
    (a view into the request frame), otherwise in a copy."""
    if isinstance(records, memoryview) and not records.readonly:
        offset = base
        for position, header in iter_batches(records):
            patch_base_offset(records, position, offset)
            patch_partition_leader_epoch(records, position, epoch)
            offset += header.last_offset_delta + 1
        return records, offset
    return set_base_offsets(records, base, partition_leader_epoch=epoch)
