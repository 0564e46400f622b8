"""Committed consumer-group offsets, kept in the stream of the group's coordinator.

Owns: which broker coordinates a group (the owner of its slot, `ownership.group_slot`)
and the ops that commit and delete offsets and groups.

Guarantees: an offset commit returns only once a commit holding it has landed in the
bucket (both durability modes), so an acknowledged OffsetCommit survives restart and
replacement; a broker coordinates a group only while it serves the group's slot and
the slot is not being handed over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tidelog.storage.clock import Clock
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.lease import Lease
from tidelog.storage.meta_state import GROUP_TOPIC, Member, MetaState
from tidelog.storage.ownership import group_slot
from tidelog.storage.stream_state import CommittedOffset, PartitionKey, StreamState

OffsetRow = tuple[str, int, int, int, str | None]  # topic, partition, offset, epoch, meta


class GroupOffsets:
    def __init__(
        self,
        meta: CommitLog[MetaState],
        mine: Callable[[], StreamState],
        *,
        lease: Lease,
        moving: set[PartitionKey],
        serves: Callable[[PartitionKey], bool],
        stream_ops: Callable[[Sequence[dict[str, Any]]], Awaitable[int]],
        clock: Clock,
    ) -> None:
        self._meta = meta
        self._mine = mine
        self._lease = lease
        self._moving = moving
        self._serves = serves
        self._stream_ops = stream_ops
        self._clock = clock

    def coordinates(self, group: str) -> bool:
        key = (GROUP_TOPIC, group_slot(group))
        return not self._lease.fenced and self._serves(key) and key not in self._moving

    def coordinator_of(self, group: str) -> Member | None:
        return self._meta.state.owner_of((GROUP_TOPIC, group_slot(group)))

    async def commit_offsets(self, group: str, offsets: Sequence[OffsetRow]) -> None:
        if offsets:
            rows = [list(o) for o in offsets]
            ts = self._clock.wall_ms()
            await self._stream_ops([{"op": "offsets", "group": group, "ts": ts, "offsets": rows}])

    def committed_offsets(self, group: str) -> dict[tuple[str, int], CommittedOffset]:
        return self._mine().group_offsets.get(group, {})

    def groups_with_offsets(self) -> list[str]:
        return sorted(g for g in self._mine().group_offsets if self.coordinates(g))

    async def delete_offsets(self, group: str, partitions: Sequence[tuple[str, int]]) -> None:
        op = {"op": "delete_offsets", "group": group, "partitions": [list(p) for p in partitions]}
        await self._stream_ops([op])

    async def delete_group(self, group: str) -> None:
        await self._stream_ops([{"op": "delete_group", "group": group}])
