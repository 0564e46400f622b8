"""Start-up WAL replay: every WAL record beyond what the bucket holds goes back into
its partition before the broker serves anyone.

Owns: reading `<data-dir>/wal/` at start (storage/wal.py parses it) and rebuilding
batches from it, and the marks that let the new WAL writer delete the old files once
their records are committed.

Guarantees: a record is replayed only if it continues its partition exactly (a gap is
logged and skipped) and its topic still exists with the same id; what the bucket has
already is skipped; replayed batches are visible (high watermark) at once, as they
were acknowledged before the crash; they keep the leader epoch they were written
under, so the partition's new epoch starts after them (an `epoch_start` op rides with
the first commit: storage/leader_epochs.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tidelog.protocol.batch import iter_batches
from tidelog.storage.commit_format import ProducerBatch
from tidelog.storage.partition_log import Batch, PartitionLog
from tidelog.storage.stream_state import PartitionKey
from tidelog.storage.txn_index import batch_event
from tidelog.storage.wal import KIND_BATCH, read_wal

log = logging.getLogger(__name__)

WalMarks = dict[int, dict[PartitionKey, int]]  # wal file seq -> partition -> end offset


def replay_wal(
    wal_dir: Path,
    partitions: dict[PartitionKey, PartitionLog],
    queue_ops: Callable[[list[dict[str, Any]]], object] | None = None,
) -> tuple[int, WalMarks]:
    """Replay into `partitions`; returns how many batches, and the files' marks.
    `queue_ops` takes the stream ops that move each replayed partition's epoch start."""
    if not wal_dir.is_dir():
        return 0, {}
    replayed = 0
    marks: WalMarks = {}
    for file_seq, entry in read_wal(wal_dir):
        if entry.kind != KIND_BATCH:
            continue
        key = (entry.topic, entry.partition)
        part = partitions.get(key)
        if part is None or part.topic_id != entry.topic_id:
            continue  # the topic was deleted since
        batches = list(iter_batches(entry.body))
        if not batches:
            continue
        base = batches[0][1].base_offset
        end = batches[-1][1].next_offset
        marks.setdefault(file_seq, {})[key] = end
        if end <= part.next_offset:
            continue  # already committed to the bucket
        if base != part.next_offset:
            log.error(
                "wal replay gap; skipping topic=%s partition=%d expected=%d got=%d",
                entry.topic,
                entry.partition,
                part.next_offset,
                base,
            )
            continue
        part.add(_stored_batch(base, end, bytes(entry.body)))
        replayed += 1
    for part in partitions.values():
        part.advance_high_watermark(part.next_offset)
    ops = epoch_start_ops(partitions.values())
    if ops and queue_ops is not None:
        queue_ops(ops)
    return replayed, marks


def epoch_start_ops(partitions: Iterable[PartitionLog]) -> list[dict[str, Any]]:
    """For each partition holding records beyond what its stream committed (replayed):
    its current epoch begins after them."""
    return [
        {
            "op": "epoch_start",
            "topic": part.state.topic,
            "partition": part.state.partition,
            "tenure": part.state.epochs[-1][0],
            "offset": part.next_offset,
        }
        for part in partitions
        if part.state.epochs and part.next_offset > part.state.epochs[-1][1]
    ]


def _stored_batch(base: int, end: int, data: bytes) -> Batch:
    """A Batch rebuilt from stored bytes."""
    headers = [h for _, h in iter_batches(data)]
    first = headers[0]
    producer = None
    txn = batch_event(data, first, base)
    if first.is_control:
        pass  # a transaction marker: no sequence of its own
    elif first.producer_id >= 0:
        producer = ProducerBatch(
            first.producer_id,
            first.producer_epoch,
            first.base_sequence,
            first.base_sequence + (end - base) - 1,
            base,
            end - 1,
        )
    return Batch(base, end, max(h.max_timestamp for h in headers), data, producer, txn)
