"""Idempotent-producer state of one partition: which sequences each producer id wrote.

Owns: the sequence/epoch checks Kafka makes before appending a batch from an idempotent
producer. Pure: no I/O, no clock. The state is rebuilt from the batches themselves
(their headers carry producer id, epoch and sequence), so it survives restart and
replacement along with the data.

Guarantees: a retried batch (same producer, epoch and sequence range as one of the last
five) is reported as a duplicate with the offset it was first stored at; a gap is
OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is INVALID_PRODUCER_EPOCH.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from tidelog.storage.commit_format import ProducerBatch

# Kafka keeps the last five batches per producer: a client has at most five in flight.
CACHED_BATCHES = 5
_SEQ_MODULUS = 2**31


class Verdict(Enum):
    APPEND = "append"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    STALE_EPOCH = "stale_epoch"


@dataclass(frozen=True, slots=True)
class Check:
    verdict: Verdict
    duplicate_of: ProducerBatch | None = None


_APPEND = Check(Verdict.APPEND)

# A producer's entry as it was: (epoch, its cached batches), or None if it had none.
SavedEntry = tuple[int, tuple[ProducerBatch, ...]] | None


@dataclass(slots=True)
class ProducerEntry:
    epoch: int
    batches: deque[ProducerBatch] = field(default_factory=lambda: deque(maxlen=CACHED_BATCHES))


class ProducerStates:
    """Per-producer-id sequence state of one partition."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, ProducerEntry] = {}

    def check(self, producer_id: int, epoch: int, first_seq: int, last_seq: int) -> Check:
        if producer_id < 0:
            return _APPEND
        entry = self._entries.get(producer_id)
        if entry is None or epoch > entry.epoch:
            # A producer new to this partition, or a bumped epoch: it must start at zero.
            return _APPEND if first_seq == 0 else Check(Verdict.OUT_OF_ORDER)
        if epoch < entry.epoch:
            return Check(Verdict.STALE_EPOCH)
        for batch in entry.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return Check(Verdict.DUPLICATE, batch)
        if not entry.batches:
            return _APPEND if first_seq == 0 else Check(Verdict.OUT_OF_ORDER)
        expected = (entry.batches[-1].last_seq + 1) % _SEQ_MODULUS
        return _APPEND if first_seq == expected else Check(Verdict.OUT_OF_ORDER)

    def record(self, batch: ProducerBatch) -> None:
        """Remember an appended batch (also used when replaying the log)."""
        if batch.producer_id < 0:
            return
        entry = self._entries.get(batch.producer_id)
        if entry is None or batch.producer_epoch > entry.epoch:
            entry = ProducerEntry(batch.producer_epoch)
            self._entries[batch.producer_id] = entry
        elif batch.producer_epoch < entry.epoch:
            return
        if entry.batches and entry.batches[-1].base_offset >= batch.base_offset:
            return  # already known: replaying something folded before
        entry.batches.append(batch)

    def bump_epoch(self, producer_id: int, epoch: int) -> None:
        """A transaction marker of `epoch` was written: older epochs are fenced from now
        on, and a newer epoch starts its sequences at zero."""
        entry = self._entries.get(producer_id)
        if entry is None or epoch > entry.epoch:
            self._entries[producer_id] = ProducerEntry(epoch)

    def epoch_of(self, producer_id: int) -> int | None:
        entry = self._entries.get(producer_id)
        return None if entry is None else entry.epoch

    def saved(self, producer_id: int) -> SavedEntry:
        """What `restore_saved` needs to put this producer back as it is now."""
        entry = self._entries.get(producer_id)
        return None if entry is None else (entry.epoch, tuple(entry.batches))

    def restore_saved(self, producer_id: int, saved: SavedEntry) -> None:
        """Undo what was recorded since `saved(producer_id)` (a batch given back)."""
        if saved is None:
            self._entries.pop(producer_id, None)
            return
        epoch, batches = saved
        self._entries[producer_id] = ProducerEntry(epoch, deque(batches, maxlen=CACHED_BATCHES))

    def latest(self, producer_id: int) -> ProducerBatch | None:
        entry = self._entries.get(producer_id)
        return entry.batches[-1] if entry and entry.batches else None

    def active(self) -> list[tuple[int, int, ProducerBatch | None]]:
        """(producer id, epoch, its latest cached batch or None) of every producer, by
        id: what DescribeProducers reports. Read-only."""
        return [
            (pid, e.epoch, e.batches[-1] if e.batches else None)
            for pid, e in sorted(self._entries.items())
        ]

    def snapshot(self) -> list[list[int]]:
        """Every cached batch; a producer with none (its epoch bumped by a transaction
        marker) as [producer_id, epoch, -1, -1, -1, -1]."""
        rows: list[list[int]] = []
        for pid, e in self._entries.items():
            if e.batches:
                rows.extend(b.to_json() for b in e.batches)
            else:
                rows.append([pid, e.epoch, -1, -1, -1, -1])
        return rows

    def restore(self, rows: list[list[int]]) -> None:
        for row in rows:
            if row[2] == -1:
                self.bump_epoch(int(row[0]), int(row[1]))
            else:
                self.record(ProducerBatch.from_json(row))

    def __len__(self) -> int:
        return len(self._entries)
