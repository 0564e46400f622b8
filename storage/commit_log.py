"""The commit log in the bucket: the only way any broker changes shared state.

Owns: appending commit objects at `log/<seq>` with create-if-absent, folding other
brokers' commits, snapshots, and fencing.

Guarantees:
- commit `seq` is written at most once (put-if-absent), so two writers can never both
  believe they appended the same position; the loser folds the winner's commit first;
- a broker whose `guard` no longer holds after catching up (it was replaced: a newer
  claim exists) gets `Fenced` and writes nothing;
- `load` rebuilds the same state any other broker folded: latest snapshot + later commits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from storage import paths
from storage.cluster_state import ClusterState
from storage.commit_format import (
    Chunk,
    CommitHeader,
    CorruptCommit,
    decode_commit_header,
    encode_commit,
    header_span,
)
from storage.object_store import ObjectStore, PreconditionFailed

log = logging.getLogger(__name__)

_HEADER_PROBE = 64 << 10
_PARALLEL_READS = 16


class Fenced(Exception):
    """This broker was replaced: a newer claim is in the log. It must stop writing."""


@dataclass(frozen=True, slots=True)
class CommitContent:
    ops: tuple[dict[str, Any], ...] = ()
    chunks: tuple[Chunk, ...] = ()
    data: tuple[bytes | bytearray | memoryview, ...] = ()


@dataclass(frozen=True, slots=True)
class LoadStats:
    snapshot_seq: int
    commits_read: int
    bytes_read: int


class CommitLog:
    def __init__(
        self,
        store: ObjectStore,
        *,
        node_id: int,
        clock_ms: Callable[[], int],
        snapshot_every: int = 256,
    ) -> None:
        self.store = store
        self.state = ClusterState()
        self.node_id = node_id
        self.epoch = -1
        self._clock_ms = clock_ms
        self._snapshot_every = snapshot_every
        self._lock = asyncio.Lock()
        self.bytes_read = 0

    # -- loading -----------------------------------------------------------------------

    async def load(self) -> LoadStats:
        """Fold the newest snapshot and every commit after it."""
        snap_seq = -1
        snapshots = await self.store.list(paths.SNAPSHOT_PREFIX)
        for info in reversed(snapshots):
            try:
                seq = paths.parse_snapshot_key(info.key)
                raw = await self.store.get(info.key)
                self.bytes_read += len(raw)
                self.state = ClusterState.from_snapshot(json.loads(raw))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable snapshot key=%s error=%s", info.key, exc)
                continue
            snap_seq = seq
            break
        read = await self.catch_up()
        return LoadStats(snap_seq, read, self.bytes_read)

    async def catch_up(self) -> int:
        """Fold commits other writers appended since our last one; returns how many."""
        start_after = paths.commit_key(self.state.seq) if self.state.seq >= 0 else None
        infos = await self.store.list(paths.LOG_PREFIX, start_after=start_after)
        keys = [i.key for i in infos]
        for i in range(0, len(keys), _PARALLEL_READS):
            batch = keys[i : i + _PARALLEL_READS]
            headers = await asyncio.gather(*(self._read_header(k) for k in batch))
            for key, (header, data_start) in zip(batch, headers, strict=True):
                seq = paths.parse_commit_key(key)
                self.state.apply(seq, header, data_start)
        return len(keys)

    async def _read_header(self, key: str) -> tuple[CommitHeader, int]:
        head = await self.store.get_range(key, 0, _HEADER_PROBE)
        span = header_span(head)
        if span > len(head):
            head += await self.store.get_range(key, len(head), span - len(head))
        self.bytes_read += len(head)
        try:
            return decode_commit_header(head)
        except CorruptCommit as exc:
            raise CorruptCommit(f"{exc} key={key}") from None

    # -- appending ---------------------------------------------------------------------

    async def append(
        self,
        *,
        ops: Sequence[dict[str, Any]] = (),
        guard: Callable[[ClusterState], bool] | None = None,
    ) -> int:
        """Append a commit of metadata ops; returns its seq. Raises Fenced when `guard` fails."""
        content = CommitContent(tuple(ops))
        seq = await self.append_built(lambda: content, guard=guard)
        assert seq is not None
        return seq

    async def append_built(
        self,
        build: Callable[[], CommitContent | None],
        *,
        guard: Callable[[ClusterState], bool] | None = None,
    ) -> int | None:
        """Append the commit `build` describes; returns its seq, or None if nothing to do.

        `build` is called again after every catch-up, so its content always matches
        the state it lands on: data an earlier attempt did commit (an upload whose
        answer was lost) is not committed twice.
        """
        async with self._lock:
            while True:
                if guard is not None and not guard(self.state):
                    raise Fenced(
                        f"fenced by a newer claim owner_node={self.state.owner_node} "
                        f"owner_epoch={self.state.owner_epoch} my_epoch={self.epoch}"
                    )
                content = build()
                if content is None:
                    return None
                header = CommitHeader(
                    self.node_id,
                    self.epoch,
                    self._clock_ms(),
                    content.ops,
                    content.chunks,
                    uuid.uuid4().hex,
                )
                parts = encode_commit(header, content.data)
                data_start = len(parts[0]) + len(parts[1])
                seq = self.state.seq + 1
                try:
                    await self.store.put_if_absent(paths.commit_key(seq), parts)
                except PreconditionFailed:
                    log.info("commit position taken, catching up seq=%d", seq)
                    await self.catch_up()
                    continue
                self.state.apply(seq, header, data_start)
                if seq % self._snapshot_every == 0:
                    await self._write_snapshot()
                return seq

    async def claim(self) -> int:
        """Take ownership: every older owner is fenced from the seq this returns."""
        seq = await self.append(ops=[{"op": "claim", "node": self.node_id}])
        self.epoch = seq
        return seq

    def owns(self, state: ClusterState) -> bool:
        return state.owner_epoch == self.epoch and state.owner_node == self.node_id

    async def _write_snapshot(self) -> None:
        doc = json.dumps(self.state.to_snapshot(), separators=(",", ":")).encode()
        seq = self.state.seq
        await self.store.put(paths.snapshot_key(seq), doc)
        log.info("snapshot written seq=%d bytes=%d", seq, len(doc))
        older = await self.store.list(paths.SNAPSHOT_PREFIX)
        for info in older[:-2]:
            await self.store.delete(info.key)
