"""Transaction coordinator state and transactional offsets, in the coordinator's stream.

Owns: the stream ops of transactions (storage/stream_state.py: `txn`, `txn_offsets`,
`txn_offsets_end`), which broker coordinates a transactional id (the owner of its
slot, the same 16 slots as consumer groups), and the coordinator epoch markers carry
(the slot's tenure). The coordinator state itself is JSON here: its meaning is
broker/transactions/model.py's.

Guarantees: every write returns only once a commit holding it has landed in the
bucket (both durability modes), so an answered AddPartitionsToTxn, EndTxn or
TxnOffsetCommit survives kill -9, restart and replacement, and moves with the slot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from tidelog.storage.clock import Clock
from tidelog.storage.group_offsets import OffsetRow
from tidelog.storage.meta_state import GROUP_TOPIC
from tidelog.storage.ownership import group_slot
from tidelog.storage.stream_state import StreamState


class TxnStore:
    def __init__(
        self,
        mine: Callable[[], StreamState],
        *,
        coordinates: Callable[[str], bool],
        stream_ops: Callable[[Sequence[dict[str, Any]]], Awaitable[int]],
        clock: Clock,
    ) -> None:
        self._mine = mine
        self._coordinates = coordinates  # the same rule as a group's: we own the slot
        self._stream_ops = stream_ops
        self._clock = clock

    def coordinator_epoch(self, transactional_id: str) -> int:
        """The tenure of the id's slot here: markers carry it as the coordinator epoch."""
        tenure = self._mine().tenures.get((GROUP_TOPIC, group_slot(transactional_id)), 0)
        return tenure & 0x7FFFFFFF

    def load(self, transactional_id: str) -> dict[str, Any] | None:
        return self._mine().txns.get(transactional_id)

    def served(self) -> dict[str, dict[str, Any]]:
        """The state of every transactional id this broker coordinates now."""
        return {t: m for t, m in self._mine().txns.items() if self._coordinates(t)}

    async def save(self, transactional_id: str, meta: dict[str, Any]) -> None:
        await self._stream_ops([{"op": "txn", "id": transactional_id, "meta": meta}])

    async def stage_offsets(
        self, group: str, producer_id: int, producer_epoch: int, offsets: Sequence[OffsetRow]
    ) -> None:
        rows = [list(o) for o in offsets]
        op = {
            "op": "txn_offsets",
            "group": group,
            "pid": producer_id,
            "epoch": producer_epoch,
            "offsets": rows,
            "ts": self._clock.wall_ms(),
        }
        await self._stream_ops([op])

    def pending_offsets(self, group: str) -> dict[int, dict[str, Any]]:
        return self._mine().txn_offsets.get(group, {})

    async def end_offsets(
        self, producer_id: int, producer_epoch: int, groups: Iterable[str], commit: bool
    ) -> None:
        """A transaction's marker for the groups it committed offsets to."""
        names = sorted(set(groups))
        if not names:
            return
        op = {
            "op": "txn_offsets_end",
            "pid": producer_id,
            "epoch": producer_epoch,
            "groups": names,
            "commit": commit,
            "ts": self._clock.wall_ms(),
        }
        await self._stream_ops([op])
