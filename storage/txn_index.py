"""One partition's transactions: which are open, which were aborted, and the LSO.

Owns: the transaction facts a partition keeps beside its producer state. An open
transaction is known by the offset of its producer's first batch in this partition; a
COMMIT or ABORT marker (control batch) closes it; an aborted one is remembered as
(producer id, first offset, marker offset) so read_committed consumers can drop its
records (Kafka's aborted-transactions index). Pure: no I/O.

The index is rebuilt from the log itself: each committed chunk lists its transaction
events (`events`, docs/commit-format.md "txns"), and WAL replay and the produce path
feed the same events, so it survives restart, replacement and adoption with the data.

Guarantees: events apply in offset order and exactly once (an event at or below the
last one applied is ignored: folding our own commit after the produce path already
applied it changes nothing); the last stable offset never passes an open transaction's
first offset.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from tidelog.protocol.batch import BatchHeader
from tidelog.protocol.control import COMMIT as COMMIT_MARKER
from tidelog.protocol.control import control_type

BEGIN, COMMIT, ABORT = 0, 1, 2
# (producer id, producer epoch, BEGIN | COMMIT | ABORT, offset)
TxnEvent = tuple[int, int, int, int]
# What `restore` needs to put the index back: (open, aborted count, last event offset).
SavedTxns = tuple[dict[int, int], int, int]


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int  # the ABORT marker's offset


@dataclass(slots=True)
class TxnIndex:
    open: dict[int, int] = field(default_factory=dict)  # producer id -> first offset
    aborted: list[AbortedTxn] = field(default_factory=list)  # by last_offset
    last_event: int = -1

    def apply(self, event: TxnEvent) -> bool:
        """Apply one event; False if it was applied before (or is out of order)."""
        pid, _, kind, offset = event
        if offset <= self.last_event:
            return False
        self.last_event = offset
        if kind == BEGIN:
            self.open.setdefault(pid, offset)
        else:
            first = self.open.pop(pid, None)
            if kind == ABORT and first is not None:
                self.aborted.append(AbortedTxn(pid, first, offset))
        return True

    def first_open(self) -> int | None:
        """The first offset of the oldest open transaction, if any."""
        return min(self.open.values()) if self.open else None

    def stable_offset(self, high_watermark: int) -> int:
        """The last stable offset: below it every transaction is decided."""
        first = self.first_open()
        return high_watermark if first is None else min(first, high_watermark)

    def aborted_between(self, start: int, end: int) -> list[AbortedTxn]:
        """Aborted transactions with records in [start, end): a fetch of that range
        needs them to drop those records."""
        i = bisect_left(self.aborted, start, key=lambda a: a.last_offset)
        return [a for a in self.aborted[i:] if a.first_offset < end]

    def saved(self) -> SavedTxns:
        return dict(self.open), len(self.aborted), self.last_event

    def restore(self, saved: SavedTxns) -> None:
        """Undo what was applied since `saved()` (batches given back)."""
        self.open, count, self.last_event = dict(saved[0]), saved[1], saved[2]
        del self.aborted[count:]

    def to_json(self) -> dict[str, Any]:
        return {
            "open": [[p, o] for p, o in self.open.items()],
            "aborted": [[a.producer_id, a.first_offset, a.last_offset] for a in self.aborted],
            "last": self.last_event,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> TxnIndex:
        if not raw:
            return cls()
        return cls(
            {int(p): int(o) for p, o in raw["open"]},
            [AbortedTxn(int(p), int(f), int(last)) for p, f, last in raw["aborted"]],
            int(raw["last"]),
        )


def batch_event(
    data: bytes | bytearray | memoryview, header: BatchHeader, base_offset: int
) -> TxnEvent | None:
    """The event a stored batch is, if any: BEGIN for a transactional data batch (it
    opens its producer's transaction unless one is open), COMMIT or ABORT for a marker."""
    if not header.is_transactional or header.producer_id < 0:
        return None
    if not header.is_control:
        return (header.producer_id, header.producer_epoch, BEGIN, base_offset)
    kind = control_type(data, header)
    if kind is None:
        return None
    return (
        header.producer_id,
        header.producer_epoch,
        COMMIT if kind == COMMIT_MARKER else ABORT,
        base_offset,
    )
