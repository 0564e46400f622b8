"""Adoption: taking up the keys assigned to this broker before serving them.

Owns: reading the streams of a key's previous owners (its sources) and copying into
our stream what they held of it: a partition's index, or a group slot's offsets.

Guarantees (docs/cluster.md):
- a key is served only after it was adopted into our stream for that very assignment
  (its tenure), so its index is complete before we answer for it;
- adoptions run one at a time, each seeing the ones before it, so a key is adopted
  once per tenure;
- a source not yet visible up to the seq the assignment names is waited for (next
  tick), never read short.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tidelog.storage.commit_log import CommitLog
from tidelog.storage.member_storage import MemberStorage
from tidelog.storage.meta_state import GROUP_TOPIC, Owner, Source
from tidelog.storage.ownership import group_slot, read_stream
from tidelog.storage.stream_state import PartitionKey, PartitionState, StreamState, group_rows

log = logging.getLogger(__name__)


class Adoption:
    def __init__(self, storage: MemberStorage) -> None:
        self._storage = storage
        self._sources: dict[str, CommitLog[StreamState]] = {}
        self._adopting = asyncio.Lock()
        self.commits_read = 0
        self.bytes_read = 0

    def remember_source(self, stream: str, source: CommitLog[StreamState]) -> None:
        if stream not in self._sources:
            self.commits_read += source.state.seq + 1
            self.bytes_read += source.bytes_read
        self._sources[stream] = source

    async def adopt_assigned(self, *, first: bool = False) -> None:
        """Copy into our stream the state of every key assigned to us, then serve it.

        One at a time (the tick and a topic creation may both call it): each sees the
        adoptions the one before it committed, so a key is adopted once per tenure."""
        async with self._adopting:
            await self._adopt_assigned(first)

    async def _adopt_assigned(self, first: bool) -> None:
        storage = self._storage
        meta, mine = storage.meta.state, storage.stream.state
        ops: list[dict[str, Any]] = []
        for key, owner in list(meta.owners.items()):
            if owner.stream != storage.stream_id or mine.tenures.get(key) == owner.seq:
                continue  # not ours, or adopted for this assignment already
            if key[0] == GROUP_TOPIC:
                op = await self._adopt_slot(key[1], owner)
                if op is not None:
                    ops.append(op)
                continue
            topic = meta.topics.get(key[0])
            if topic is None:
                continue
            part = await self._adopt_partition(key, topic.topic_id, owner)
            if part is not None:
                ops.append(part.to_json(owner.seq))
        if not ops and not first:
            return
        if first:
            # The pipeline is not running yet; the first commit also says we are alive.
            await storage.stream.append(ops=ops)
        else:
            await storage.stream_ops(ops)
        storage.sync_partitions()
        if ops:
            ends = [f"{o['topic']}-{o['partition']}:{o['end']}" for o in ops if o["op"] == "adopt"]
            log.info("adopted keys count=%d ends=%s", len(ops), ",".join(ends[:64]) or "-")

    async def _source(self, src: Source) -> StreamState | None:
        """`src.stream` folded at least to `src.read_to`, or None if not visible yet."""
        storage = self._storage
        source = self._sources.get(src.stream)
        if source is None:
            source = await read_stream(
                storage.store,
                src.stream,
                node_id=storage.config.node_id,
                clock_ms=storage.clock.wall_ms,
            )
            self.remember_source(src.stream, source)
        elif source.state.seq < src.read_to and not source.state.sealed:
            self.commits_read += await source.catch_up()
        state = source.state
        return state if state.seq >= src.read_to or state.sealed else None

    async def _adopt_partition(
        self, key: PartitionKey, topic_id: str, owner: Owner
    ) -> PartitionState | None:
        for src in owner.sources:
            state = await self._source(src)
            if state is None:
                return None  # not visible yet: try again next tick
            part = state.partitions.get(key)
            if state.tenures.get(key) == src.tenure and part is not None:
                return part if part.topic_id == topic_id else PartitionState(topic_id, *key)
            # That owner never adopted the key (it died first): it never wrote to it.
        return PartitionState(topic_id, key[0], key[1])

    async def _adopt_slot(self, slot: int, owner: Owner) -> dict[str, Any] | None:
        key = (GROUP_TOPIC, slot)
        groups: dict[str, Any] = {}
        txns: dict[str, Any] = {}
        pending: dict[str, Any] = {}
        for src in owner.sources:
            state = await self._source(src)
            if state is None:
                return None
            if state.tenures.get(key) == src.tenure:
                groups = {
                    g: group_rows(o)
                    for g, o in state.group_offsets.items()
                    if group_slot(g) == slot
                }
                txns = {t: m for t, m in state.txns.items() if group_slot(t) == slot}
                pending = {
                    g: {str(p): v for p, v in e.items()}
                    for g, e in state.txn_offsets.items()
                    if group_slot(g) == slot
                }
                break
        return {
            "op": "adopt_groups",
            "tenure": owner.seq,
            "slot": slot,
            "groups": groups,
            "txns": txns,
            "txn_offsets": pending,
        }
