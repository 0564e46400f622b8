"""What waits to be uploaded: the flusher's source of batches (`FlushSource`).

Owns: the byte counts of the backlog (appended, not yet in a landed commit) and of what
no upload has taken yet, which partition the next commit starts taking from, and what
follows a landed or failed commit (high watermarks in object mode, WAL files released,
the memory tail trimmed).

Guarantees:
- a commit holds at most `max_bytes` (or one bigger batch), and the next one starts at
  the first partition this one left waiting, so no busy partition keeps the others out
  of every commit;
- in wal mode only batches below the high watermark (synced, and acked under a lease)
  are taken, so nothing a failed WAL write gives back is ever uploaded;
- a WAL file is released only once every record in it is in a landed commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import crc32c

from tidelog.storage.commit_format import Chunk, ProducerBatch
from tidelog.storage.lease import Lease
from tidelog.storage.object_store import Buffer
from tidelog.storage.partition_log import Batch, PartitionLog
from tidelog.storage.stream_state import PartitionKey
from tidelog.storage.wal import WalWriter


class UploadBacklog:
    def __init__(
        self,
        partitions: dict[PartitionKey, PartitionLog],
        lease: Lease,
        *,
        tail_cache_bytes: int,
        on_landed: Callable[[], None],
        on_sealed: Callable[[], None],
    ) -> None:
        self._partitions = partitions
        self._lease = lease
        self._tail_cache_bytes = tail_cache_bytes
        self._on_landed = on_landed
        self._on_sealed = on_sealed
        self.wal: WalWriter | None = None  # set at start in wal mode
        self.uncommitted_bytes = 0  # appended, not yet in a landed commit (the backlog)
        self._unlaunched_bytes = 0  # appended, not yet in any upload
        self._take_from = 0  # where the next commit starts taking partitions
        self.background: set[asyncio.Task[Any]] = set()

    def added(self, size: int) -> None:
        self.uncommitted_bytes += size
        self._unlaunched_bytes += size

    # FlushSource

    def unflushed_bytes(self) -> int:
        return self._unlaunched_bytes

    def take_chunks(self, max_bytes: int) -> tuple[list[Chunk], list[Buffer]]:
        chunks: list[Chunk] = []
        data: list[Buffer] = []
        position = 0
        parts = list(self._partitions.values())
        first = self._take_from % len(parts) if parts else 0
        waiting: int | None = None
        for i in range(len(parts)):
            part = parts[(first + i) % len(parts)]
            limit = part.high_watermark if self.wal is not None else part.next_offset
            batches = part.take_unlaunched(limit, max_bytes - position, not chunks)
            if waiting is None and i > 0 and part.has_unlaunched(limit):
                waiting = first + i
            if not batches:
                continue
            crc = 0
            length = 0
            for b in batches:
                crc = crc32c.crc32c(b.data, crc)
                length += len(b.data)
                data.append(b.data)
            chunks.append(
                Chunk(
                    topic_id=part.topic_id,
                    topic=part.state.topic,
                    partition=part.state.partition,
                    base_offset=batches[0].base_offset,
                    end_offset=batches[-1].end_offset,
                    max_timestamp=max(b.max_timestamp for b in batches),
                    position=position,
                    length=length,
                    crc=crc,
                    producers=_producer_summary(batches),
                    txns=tuple(b.txn for b in batches if b.txn is not None),
                )
            )
            position += length
        self._take_from = waiting if waiting is not None else first + 1
        self._unlaunched_bytes = max(0, self._unlaunched_bytes - position)
        return chunks, data

    def landed(self) -> None:
        self._on_landed()
        for part in self._partitions.values():
            if self.wal is None:
                part.advance_high_watermark(part.committed_end)
        self.recount()
        if self.wal is not None:
            task = asyncio.get_running_loop().create_task(self.wal.release(self.committed_end))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        self._evict_tail()

    def rewind(self) -> None:
        for part in self._partitions.values():
            part.rewind_launched()
        self.recount()

    def fenced_by_newer_owner(self) -> None:
        self._on_sealed()

    def lease_renewed(self, sent_at: float) -> None:
        self._lease.renewed(sent_at)

    # -- bookkeeping -------------------------------------------------------------------

    def recount(self) -> None:
        uncommitted = 0
        unlaunched = 0
        for part in self._partitions.values():
            uncommitted += part.bytes_from(part.committed_end)
            unlaunched += part.bytes_from(part.launched_end)
        self.uncommitted_bytes, self._unlaunched_bytes = uncommitted, unlaunched

    def committed_end(self, key: PartitionKey) -> int:
        part = self._partitions.get(key)
        # A deleted topic's WAL records will never be committed: treat them as done.
        return part.committed_end if part is not None else 2**63

    def _evict_tail(self) -> None:
        total = sum(p.tail_bytes for p in self._partitions.values())
        if total <= self._tail_cache_bytes:
            return
        keep = self._tail_cache_bytes // max(1, len(self._partitions))
        for part in self._partitions.values():
            part.evict_committed(keep)


def _producer_summary(batches: list[Batch]) -> tuple[ProducerBatch, ...]:
    """The last five batches of each producer id among `batches`."""
    per_pid: dict[int, list[ProducerBatch]] = {}
    for b in batches:
        if b.producer is not None:
            per_pid.setdefault(b.producer.producer_id, []).append(b.producer)
    return tuple(p for rows in per_pid.values() for p in rows[-5:])
