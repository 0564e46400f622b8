"""A commit log in the bucket: the metadata log, or one broker's stream.

Owns: appending commit objects at `<root>log/<seq>` with create-if-absent, folding
commits (ours and others'), snapshots, and the append-side of fencing. What the ops
mean belongs to the state class folded (storage/meta_state.py, storage/stream_state.py).

Guarantees:
- commit `seq` is written at most once (put-if-absent), so two writers can never both
  believe they appended the same position; the loser folds the winner's commit first;
- a writer whose `guard` no longer holds after catching up (it was fenced) gets
  `Fenced` and writes nothing;
- `load` rebuilds the same state any other broker folded: latest snapshot + later commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

from tidelog.storage.commit_format import (
    Chunk,
    CommitHeader,
    CorruptCommit,
    decode_commit_header,
    encode_commit,
    header_span,
)
from tidelog.storage.object_store import Buffer, ObjectStore, ObjectStoreError, PreconditionFailed
from tidelog.storage.paths import LogLayout

log = logging.getLogger(__name__)

_HEADER_PROBE = 64 << 10
_PARALLEL_READS = 16
_REMEMBERED_IDS = 1024


class Fenced(Exception):
    """This broker was fenced (its stream sealed, or it is no longer a member)."""


class FoldedState(Protocol):
    seq: int
    head_id: str

    def apply(self, seq: int, header: CommitHeader, data_start: int) -> bool: ...

    def to_snapshot(self) -> dict[str, Any]: ...

    @classmethod
    def from_snapshot(cls, raw: dict[str, Any]) -> Self: ...


S = TypeVar("S", bound=FoldedState)


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


class CommitLog(Generic[S]):
    def __init__(
        self,
        store: ObjectStore,
        layout: LogLayout,
        new_state: Callable[[], S],
        *,
        node_id: int,
        clock_ms: Callable[[], int],
        snapshot_every: int = 256,
    ) -> None:
        self.store = store
        self.layout = layout
        self.state: S = new_state()
        self.node_id = node_id
        self.epoch = -1
        self._clock_ms = clock_ms
        self._snapshot_every = snapshot_every
        self._lock = asyncio.Lock()
        self._catching_up = asyncio.Lock()
        self.bytes_read = 0
        self.applied_ids: OrderedDict[str, int] = OrderedDict()
        self._snapshot_seq = -1
        self._snapshotting = False
        self._background: set[asyncio.Task[None]] = set()

    # -- loading -----------------------------------------------------------------------

    async def load(self) -> LoadStats:
        """Fold the newest snapshot and every commit after it."""
        snap_seq = skipped = -1
        snapshots = await self.store.list(self.layout.snapshot_prefix)
        for info in reversed(snapshots):
            try:
                seq = self.layout.parse_snapshot_key(info.key)
                raw = await self.store.get(info.key)
                self.bytes_read += len(raw)
                self.state = type(self.state).from_snapshot(json.loads(raw))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable snapshot key=%s error=%s", info.key, exc)
                with contextlib.suppress(ValueError):  # a stray key is no snapshot
                    skipped = max(skipped, self.layout.parse_snapshot_key(info.key))
                continue
            snap_seq = seq
            break
        read = await self.catch_up()
        if self.state.seq < skipped:
            # The commits between the older snapshot and the skipped one were collected
            # (storage/janitor.py): folding on would give a state that lacks them.
            raise CorruptCommit(
                f"snapshot unreadable and the commits before it are gone "
                f"prefix={self.layout.snapshot_prefix} skipped_seq={skipped} "
                f"folded_to={self.state.seq}"
            )
        return LoadStats(snap_seq, read, self.bytes_read)

    async def catch_up(self) -> int:
        """Fold commits appended since our last one; returns how many were read.

        Stops at a gap (a position not written, or not yet visible): a commit after a
        gap cannot be judged until the gap is filled.
        """
        async with self._catching_up:  # one at a time: each folds what the last left
            layout = self.layout
            start_after = layout.commit_key(self.state.seq) if self.state.seq >= 0 else None
            infos = await self.store.list(layout.log_prefix, start_after=start_after)
            keys: list[str] = []
            for info in infos:
                if layout.parse_commit_key(info.key) != self.state.seq + 1 + len(keys):
                    break
                keys.append(info.key)
            for i in range(0, len(keys), _PARALLEL_READS):
                batch = keys[i : i + _PARALLEL_READS]
                headers = await asyncio.gather(*(self._read_header(k) for k in batch))
                for key, (header, data_start) in zip(batch, headers, strict=True):
                    self._fold(layout.parse_commit_key(key), header, data_start)
            return len(keys)

    def _fold(self, seq: int, header: CommitHeader, data_start: int) -> bool:
        if seq <= self.state.seq:
            # Folded already: our own commit, found by a catch-up while its upload was
            # being answered (or the other way round).
            return header.commit_id in self.applied_ids
        took_effect = self.state.apply(seq, header, data_start)
        if took_effect and header.commit_id:
            self.applied_ids[header.commit_id] = seq
            while len(self.applied_ids) > _REMEMBERED_IDS:
                self.applied_ids.popitem(last=False)
        return took_effect

    async def read_header(self, key: str) -> CommitHeader:
        """The header of the commit at `key` (one ranged GET, without its data)."""
        header, _ = await self._read_header(key)
        return header

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

    def encode(
        self, content: CommitContent, prev_id: str
    ) -> tuple[CommitHeader, list[Buffer], int]:
        """A commit following `prev_id`: its header, its parts, where its data starts."""
        header = CommitHeader(
            self.node_id,
            self.epoch,
            self._clock_ms(),
            content.ops,
            content.chunks,
            uuid.uuid4().hex,
            prev_id,
        )
        parts = encode_commit(header, content.data)
        return header, parts, len(parts[0]) + len(parts[1])

    async def put(self, seq: int, parts: list[Buffer]) -> None:
        """Upload a commit at `seq`, create-if-absent. Raises PreconditionFailed if taken."""
        await self.store.put_if_absent(self.layout.commit_key(seq), parts)

    def apply_own(self, seq: int, header: CommitHeader, data_start: int) -> bool:
        """Fold a commit this broker uploaded and saw land."""
        return self._fold(seq, header, data_start)

    async def append(
        self,
        *,
        ops: Sequence[dict[str, Any]] | Callable[[S], Sequence[dict[str, Any]]] = (),
        guard: Callable[[S], bool] | None = None,
    ) -> int:
        """Append one commit of ops, alone; returns its seq once it took effect.

        Retries at the next position after folding whoever took this one (`ops` may be
        a function of the state, rebuilt on each try); raises Fenced when `guard` no
        longer holds, or when the commit landed but did not take effect.
        """
        async with self._lock:
            while True:
                if guard is not None and not guard(self.state):
                    raise Fenced(f"fenced node={self.node_id} epoch={self.epoch}")
                rows = ops(self.state) if callable(ops) else ops
                header, parts, data_start = self.encode(
                    CommitContent(tuple(rows)), self.state.head_id
                )
                seq = self.state.seq + 1
                try:
                    await self.put(seq, parts)
                except PreconditionFailed:
                    log.debug(
                        "commit position taken, catching up key=%s", self.layout.commit_key(seq)
                    )
                    await self.catch_up()
                    continue
                if not self._fold(seq, header, data_start):
                    raise Fenced(f"commit did not take effect node={self.node_id} seq={seq}")
                self.maybe_snapshot()
                return seq

    def maybe_snapshot(self) -> None:
        """Every `snapshot_every` commits, write the folded state in the background."""
        seq = self.state.seq
        if seq - self._snapshot_seq < self._snapshot_every or self._snapshotting:
            return
        # Serialised now, so the document is exactly the state as of `seq`.
        doc = json.dumps(self.state.to_snapshot(), separators=(",", ":")).encode()
        self._snapshot_seq, self._snapshotting = seq, True
        task = asyncio.get_running_loop().create_task(self._write_snapshot(seq, doc))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_snapshot(self, seq: int, doc: bytes) -> None:
        try:
            await self.store.put(self.layout.snapshot_key(seq), doc)
            log.info("snapshot written key=%s bytes=%d", self.layout.snapshot_key(seq), len(doc))
            older = await self.store.list(self.layout.snapshot_prefix)
            for info in older[:-2]:
                await self.store.delete(info.key)
        except ObjectStoreError as exc:
            log.warning("snapshot not written; the log still has everything error=%s", exc)
        finally:
            self._snapshotting = False

    async def close(self, *, abandon: bool = False) -> None:
        """Wait for background snapshot writes; `abandon` cancels them instead."""
        if abandon:
            for task in self._background:
                task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
