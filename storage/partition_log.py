"""One partition's live log: offsets, the in-memory tail and the committed index.

Owns: offset assignment (log end offset), the high watermark (what consumers may
see: durable under the durability mode), the in-memory batches not yet evicted, and
the waiters of long-polling fetches. Pure bookkeeping: no I/O; the store does I/O.

Guarantees: offsets are dense and assigned in append order; the high watermark only
moves forward and never past what is durable; every offset >= `tail_start` is served
from memory, every committed offset below it from the bucket via `PartitionState`.
Batches above the high watermark can be given back (`discard_from`: their WAL write
failed), which restores the offsets and the producer state they took.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass

from tidelog.storage.commit_format import ProducerBatch
from tidelog.storage.leader_epochs import as_leader_epoch
from tidelog.storage.producer_state import SavedEntry
from tidelog.storage.stream_state import PartitionState
from tidelog.storage.txn_index import BEGIN, SavedTxns, TxnEvent


@dataclass(frozen=True, slots=True)
class Batch:
    """A stored record batch: offsets [base_offset, end_offset), bytes as served."""

    base_offset: int
    end_offset: int
    max_timestamp: int
    data: bytes | bytearray | memoryview
    producer: ProducerBatch | None
    # What it means to the partition's transactions (storage/txn_index.py), if anything:
    # BEGIN only for the batch that opened its producer's transaction here.
    txn: TxnEvent | None = None


class PartitionLog:
    __slots__ = (
        "_producer_undo",
        "_txn_undo",
        "_waiters",
        "discards",
        "high_watermark",
        "launched_end",
        "leader_epoch",
        "next_offset",
        "state",
        "tail",
        "tail_bytes",
    )

    def __init__(self, state: PartitionState) -> None:
        self.state = state
        # The epoch this broker writes under: the tenure it adopted the partition for,
        # stamped into every batch appended here (storage/leader_epochs.py).
        self.leader_epoch = as_leader_epoch(state.epochs[-1][0]) if state.epochs else -1
        self.next_offset = state.committed_end
        self.high_watermark = state.committed_end
        self.launched_end = state.committed_end  # offsets below are in some upload
        self.tail: deque[Batch] = deque()
        self.tail_bytes = 0
        self._waiters: list[asyncio.Future[None]] = []
        # (base offset, producer id, its entry before that batch) for batches above the
        # high watermark: enough to give them back exactly.
        self._producer_undo: deque[tuple[int, int, SavedEntry]] = deque()
        self._txn_undo: deque[tuple[int, SavedTxns]] = deque()  # (base offset, before)
        self.discards = 0  # how many times batches were given back

    @property
    def key(self) -> tuple[str, int]:
        return (self.state.topic, self.state.partition)

    @property
    def topic_id(self) -> str:
        return self.state.topic_id

    @property
    def committed_end(self) -> int:
        return self.state.committed_end

    @property
    def log_start(self) -> int:
        return self.state.log_start

    @property
    def tail_start(self) -> int:
        return self.tail[0].base_offset if self.tail else self.next_offset

    @property
    def last_stable_offset(self) -> int:
        """Below it every transaction is decided (read_committed reads stop here).

        Decided means its marker is below the high watermark: a marker still above it
        may be given back (`discard_from`) or lost with the broker, so the transactions
        are taken as they stood at the high watermark, before the first event above it.
        """
        hw = self.high_watermark
        if not self._txn_undo:
            return self.state.txns.stable_offset(hw)
        open_at_hw = self._txn_undo[0][1][0]
        return min(hw, min(open_at_hw.values())) if open_at_hw else hw

    def opens_transaction(self, producer_id: int) -> bool:
        """Whether a transactional batch of this producer would open a transaction here."""
        return producer_id not in self.state.txns.open

    def add(self, batch: Batch) -> None:
        if batch.base_offset != self.next_offset:
            raise ValueError(
                f"non-contiguous append topic={self.state.topic} "
                f"partition={self.state.partition} expected={self.next_offset} "
                f"got={batch.base_offset}"
            )
        event = batch.txn
        if event is not None and event[2] == BEGIN and event[0] in self.state.txns.open:
            event = None  # its transaction is open here already: nothing to record
            batch = Batch(
                batch.base_offset, batch.end_offset, batch.max_timestamp, batch.data, batch.producer
            )
        self.tail.append(batch)
        self.tail_bytes += len(batch.data)
        self.next_offset = batch.end_offset
        producers = self.state.producers
        if batch.producer is not None:
            pid = batch.producer.producer_id
            self._producer_undo.append((batch.base_offset, pid, producers.saved(pid)))
            producers.record(batch.producer)
        if event is not None:
            self._txn_undo.append((batch.base_offset, self.state.txns.saved()))
            self.state.txns.apply(event)
            if event[2] != BEGIN:  # a marker: its epoch fences older ones
                pid = event[0]
                self._producer_undo.append((batch.base_offset, pid, producers.saved(pid)))
                producers.bump_epoch(pid, event[1])

    def advance_high_watermark(self, offset: int) -> None:
        if offset > self.high_watermark:
            self.high_watermark = min(offset, self.next_offset)
            undo = self._producer_undo
            while undo and undo[0][0] < self.high_watermark:
                undo.popleft()  # visible now: never given back
            txn_undo = self._txn_undo
            while txn_undo and txn_undo[0][0] < self.high_watermark:
                txn_undo.popleft()
            waiters, self._waiters = self._waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    def discard_from(self, offset: int) -> None:
        """Give back the batches from `offset` on (their WAL write failed): the log end,
        the bytes and every producer's sequence state are as before they came."""
        if offset >= self.next_offset:
            return
        if offset < self.high_watermark:
            raise ValueError(
                f"cannot discard visible batches topic={self.state.topic} "
                f"partition={self.state.partition} offset={offset} "
                f"high_watermark={self.high_watermark}"
            )
        while self.tail and self.tail[-1].base_offset >= offset:
            self.tail_bytes -= len(self.tail.pop().data)
        undo = self._producer_undo
        while undo and undo[-1][0] >= offset:
            _, pid, saved = undo.pop()
            self.state.producers.restore_saved(pid, saved)
        txn_undo = self._txn_undo
        while txn_undo and txn_undo[-1][0] >= offset:
            self.state.txns.restore(txn_undo.pop()[1])
        self.next_offset = offset
        self.launched_end = min(self.launched_end, offset)
        self.discards += 1
        self.wake_all()  # a retry waiting on a discarded batch must find out

    def take_unlaunched(self, limit: int, budget: int, at_least_one: bool) -> list[Batch]:
        """Batches not yet in any upload, ending at or below `limit` and together at most
        `budget` bytes (the first one regardless when `at_least_one`), marked launched."""
        start = self._unlaunched_start
        first = len(self.tail)
        while first > 0 and self.tail[first - 1].base_offset >= start:
            first -= 1
        out: list[Batch] = []
        size = 0
        for i in range(first, len(self.tail)):
            b = self.tail[i]
            if b.end_offset > limit:
                break
            if size + len(b.data) > budget and not (at_least_one and not out):
                break
            out.append(b)
            size += len(b.data)
        if out:
            self.launched_end = out[-1].end_offset
        return out

    def has_unlaunched(self, limit: int) -> bool:
        """Some batch ending at or below `limit` is in no upload yet."""
        return bool(self.tail) and self._unlaunched_start < min(limit, self.next_offset)

    @property
    def _unlaunched_start(self) -> int:
        """The first offset in no upload yet."""
        return max(self.launched_end, self.committed_end)

    def rewind_launched(self) -> None:
        """Uploads failed: what did not land must be launched again."""
        self.launched_end = self.committed_end

    @property
    def size_bytes(self) -> int:
        """The partition's bytes: its committed chunks in the bucket, plus the batches in
        memory that are not committed yet (DescribeLogDirs' partition size)."""
        return sum(c.length for c in self.state.chunks) + self.bytes_from(self.committed_end)

    def bytes_from(self, offset: int) -> int:
        """Bytes of the in-memory batches starting at or after `offset`."""
        total = 0
        for b in reversed(self.tail):
            if b.base_offset < offset:
                break
            total += len(b.data)
        return total

    def evict_committed(self, keep_bytes: int) -> int:
        """Drop committed batches from memory until at most `keep_bytes` remain."""
        freed = 0
        while (
            self.tail
            and self.tail_bytes > keep_bytes
            and self.tail[0].end_offset <= self.committed_end
        ):
            b = self.tail.popleft()
            self.tail_bytes -= len(b.data)
            freed += len(b.data)
        return freed

    def evict_below(self, offset: int) -> None:
        """Drop committed batches ending at or below `offset` from memory (the cleaner
        rewrote them in the bucket: reads must see what it kept, not these)."""
        limit = min(offset, self.committed_end)
        while self.tail and self.tail[0].end_offset <= limit:
            self.tail_bytes -= len(self.tail.popleft().data)

    def read_tail(
        self, offset: int, max_bytes: int, limit: int | None = None
    ) -> list[bytes | bytearray | memoryview]:
        """Visible batches from the one holding `offset`, ending at or below `limit`
        (the high watermark unless given); always at least one if any."""
        bound = self.high_watermark if limit is None else min(limit, self.high_watermark)
        i = bisect_right(self.tail, offset, key=lambda b: b.base_offset) - 1
        i = max(i, 0)
        out: list[bytes | bytearray | memoryview] = []
        size = 0
        for j in range(i, len(self.tail)):
            b = self.tail[j]
            if b.end_offset > bound:
                break
            if out and size + len(b.data) > max_bytes:
                break
            out.append(b.data)
            size += len(b.data)
        return out

    def waiter(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return fut

    def wake_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)
