"""Start-up WAL replay: every WAL record beyond what the bucket holds goes back into
its partition before the broker serves anyone.

Owns: reading `<data-dir>/wal/` at start (storage/wal.py parses it) and rebuilding
batches from it, and the marks that let the new WAL writer delete the old files once
their records are committed.

Guarantees: a record is replayed only if it continues its partition exactly (a gap is
logged and skipped) and its topic still exists with the same id; what the bucket has
already is skipped; replayed batches are visible (high watermark) at once, as they
were acknowledged before the crash.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tidelog.protocol.batch import iter_batches
from tidelog.storage.commit_format import ProducerBatch
from tidelog.storage.partition_log import Batch, PartitionLog
from tidelog.storage.stream_state import PartitionKey
from tidelog.storage.txn_index import batch_event
from tidelog.storage.wal import KIND_BATCH, read_wal

log = logging.getLogger(__name__)

WalMarks = dict[int, dict[PartitionKey, int]]  # wal file seq -> partition -> end offset


def replay_wal(wal_dir: Path, partitions: dict[PartitionKey, PartitionLog]) -> tuple[int, WalMarks]:
    """Replay into `partitions`; returns how many batches, and the files' marks."""
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
    return replayed, marks


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
