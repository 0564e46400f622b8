"""Producer ids for idempotent producers, unique across brokers and restarts.

Owns: this broker's block of producer ids, taken from the metadata log 1000 at a time
(an `alloc_pids` op), and handing them out one by one.

Guarantees: no two brokers, and no two incarnations of one, ever hand out the same id:
a block is ours only once the op that took it is in the metadata log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tidelog.storage.commit_log import CommitLog
from tidelog.storage.meta_state import MetaState

_BLOCK = 1000


class ProducerIds:
    def __init__(
        self,
        meta: CommitLog[MetaState],
        meta_ops: Callable[[Sequence[dict[str, Any]]], Awaitable[int]],
        node_id: int,
    ) -> None:
        self._meta = meta
        self._meta_ops = meta_ops
        self._node_id = node_id
        self._lock = asyncio.Lock()
        self._next = 0
        self._end = 0

    async def allocate(self) -> int:
        async with self._lock:
            if self._next >= self._end:
                await self._meta_ops([{"op": "alloc_pids", "node": self._node_id, "count": _BLOCK}])
                start, count = self._meta.state.pid_blocks[self._node_id]
                self._next, self._end = start, start + count
            pid = self._next
            self._next += 1
            return pid
