"""The read side of the partitions this broker serves (storage/log_reader.py does the
work): reads, timestamp lookups, read-ahead, and long-poll waits for new data.

Owns: which partition a read goes to (a moving partition is still served until its
new owner has it) and the wait of a long-polling fetch.

Guarantees: a read sees only offsets below the high watermark (the reader's rule); a
long-poll wait ends when any of its partitions' high watermarks moves, when
`wake_all` runs (shutdown), or after its timeout on the store's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from tidelog.storage.clock import Clock
from tidelog.storage.lease import Lease
from tidelog.storage.log_reader import LogReader, ReadResult
from tidelog.storage.partition_log import PartitionLog
from tidelog.storage.stream_state import PartitionKey


class PartitionReads:
    def __init__(
        self,
        reader: LogReader,
        partitions: dict[PartitionKey, PartitionLog],
        lease: Lease,
        clock: Clock,
        leader_of: Callable[[str, int], PartitionLog],
    ) -> None:
        self.reader = reader
        self._partitions = partitions
        self._lease = lease
        self._clock = clock
        self._leader_of = leader_of

    async def read(
        self, topic: str, partition: int, offset: int, max_bytes: int, *, committed: bool = False
    ) -> ReadResult:
        part = self._leader_of(topic, partition)
        return await self.reader.read(part, offset, max_bytes, committed=committed)

    def prefetch(self, topic: str, partition: int, offset: int) -> None:
        part = self._partitions.get((topic, partition))
        if part is not None and not self._lease.fenced:
            self.reader.prefetch(part, offset)

    async def offset_for_timestamp(
        self, topic: str, partition: int, timestamp: int
    ) -> tuple[int, int]:
        return await self.reader.offset_for_timestamp(self._leader_of(topic, partition), timestamp)

    async def max_timestamp_offset(self, topic: str, partition: int) -> tuple[int, int]:
        return await self.reader.max_timestamp_offset(self._leader_of(topic, partition))

    def wake_all(self) -> None:
        for part in self._partitions.values():
            part.wake_all()

    async def wait_for_data(self, keys: Sequence[PartitionKey], timeout: float) -> None:
        waiters = [self._partitions[k].waiter() for k in keys if k in self._partitions]
        if not waiters:
            await self._clock.sleep(timeout)
            return
        try:
            with contextlib.suppress(TimeoutError):
                async with self._clock.timeout(timeout):
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
