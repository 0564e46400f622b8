"""The bucket's janitor: deletes per-flush commit objects no partition index names any
more, whole streams of brokers long gone, and the segment objects of deleted topics.

Owns: one pass (`run_once`), run by one broker of the cluster at a time (the owner of
group slot 0) after its lifecycle pass (docs/segments.md, "The janitor"). A pass:
1. folds the metadata log, then lists `streams/` and `segments/`;
2. reads the state of every stream that owns a key now (our own from memory), and
   gives up for this pass if some key is not yet adopted by its owner (a move in
   progress: the key's index may be in a stream not read);
3. collects what the current indexes name, and judges every listed object.

An object is collectable when nothing names it and:
- a commit `streams/S/log/N`: N is at or below both the second-newest snapshot of S
  (so S still loads from either snapshot it keeps) and what this pass folded of S;
- any object of a dead stream (ended in the metadata log, not a member, owns nothing
  and no owner's index names it). Owners still list it among their sources, but a
  source is read only for a key its owner never adopted, and every key is adopted
  (step 2);
- a segment object of a topic id the metadata no longer has.

Guarantees: an object is deleted only if it was collectable in two passes at least
`delete_delay_ms` apart (a reader that took a reference before it was dropped still
finds it; a topic created after one pass's view is known by the next). References to
an existing object only ever go away (new data goes to new objects; adoption copies an
index), so what a pass finds unnamed stays unnamed; the listings are taken before the
states are read, so nothing written after them is judged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from tidelog.storage import paths
from tidelog.storage.clock import Clock
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.meta_state import GROUP_TOPIC, MetaState
from tidelog.storage.object_store import ObjectStore, ObjectStoreError
from tidelog.storage.ownership import open_stream
from tidelog.storage.stream_state import StreamState

log = logging.getLogger(__name__)


@dataclass(slots=True)
class JanitorStats:
    ran: bool = False
    skipped: str = ""  # why the pass judged nothing
    listed: int = 0
    collectable: int = 0
    deleted: int = 0
    deleted_bytes: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Listing:
    commits: dict[str, dict[int, tuple[str, int]]]  # stream -> seq -> (key, size)
    snapshots: dict[str, list[int]]  # stream -> snapshot seqs, ascending
    other: dict[str, list[tuple[str, int]]]  # stream -> its other objects
    segments: list[tuple[str, int, str]]  # (key, size, topic id)


class Janitor:
    def __init__(
        self,
        store: ObjectStore,
        meta: CommitLog[MetaState],
        own_stream: Callable[[], CommitLog[StreamState]],
        *,
        is_janitor: Callable[[], bool],
        clock: Clock,
        delete_delay_ms: int,
        node_id: int,
    ) -> None:
        self._store = store
        self._meta = meta
        self._own = own_stream
        self._is_janitor = is_janitor
        self._clock = clock
        self.delete_delay_ms = delete_delay_ms
        self._node_id = node_id
        self._streams: dict[str, CommitLog[StreamState]] = {}
        self._first_seen: dict[str, int] = {}  # key -> wall ms it was first collectable
        self.last = JanitorStats()

    async def run_once(self) -> JanitorStats:
        stats = JanitorStats()
        if not self._is_janitor():
            self._first_seen.clear()
            self._streams.clear()
            self.last = stats
            return stats
        stats.ran = True
        try:
            await self._meta.catch_up()
            listing = await self._list()
            stats.listed = sum(len(c) for c in listing.commits.values()) + len(listing.segments)
            found = await self._collectable(listing, stats)
        except ObjectStoreError as exc:
            stats.skipped = f"object store error={exc}"
            log.warning("janitor pass skipped error=%s", exc)
            self.last = stats
            return stats
        if found is None:
            self.last = stats
            return stats
        stats.collectable = len(found)
        await self._delete(found, stats)
        self.last = stats
        if stats.deleted or stats.errors:
            log.info(
                "janitor pass collectable=%d deleted=%d deleted_bytes=%d errors=%d",
                stats.collectable,
                stats.deleted,
                stats.deleted_bytes,
                len(stats.errors),
            )
        return stats

    async def _list(self) -> _Listing:
        commits: dict[str, dict[int, tuple[str, int]]] = {}
        snapshots: dict[str, list[int]] = {}
        other: dict[str, list[tuple[str, int]]] = {}
        for info in await self._store.list(paths.STREAMS_PREFIX):
            stream = info.key[len(paths.STREAMS_PREFIX) :].split("/", 1)[0]
            try:
                layout = paths.stream_layout(stream)
            except ValueError:
                continue  # not a stream of ours: never touched
            other.setdefault(stream, [])
            if info.key.startswith(layout.log_prefix):
                with contextlib.suppress(ValueError):
                    seq = layout.parse_commit_key(info.key)
                    commits.setdefault(stream, {})[seq] = (info.key, info.size)
                continue  # a stray key under log/ is left alone
            with contextlib.suppress(ValueError):
                snapshots.setdefault(stream, []).append(layout.parse_snapshot_key(info.key))
            other[stream].append((info.key, info.size))  # snapshots and anything else
        segments: list[tuple[str, int, str]] = []
        for info in await self._store.list(paths.SEGMENTS_PREFIX):
            try:
                segments.append((info.key, info.size, paths.parse_segment_key(info.key).topic_id))
            except ValueError:
                continue
        for seqs in snapshots.values():
            seqs.sort()
        return _Listing(commits, snapshots, other, segments)

    async def _state(self, stream: str) -> StreamState:
        own = self._own()
        if own.state.stream == stream:
            return own.state
        log_ = self._streams.get(stream)
        if log_ is None:
            log_ = open_stream(
                self._store, stream, node_id=self._node_id, clock_ms=self._clock.wall_ms
            )
            await log_.load()
            self._streams[stream] = log_
        else:
            await log_.catch_up()
        return log_.state

    async def _collectable(self, listing: _Listing, stats: JanitorStats) -> dict[str, int] | None:
        """Collectable keys and their sizes, or None (stats.skipped says why)."""
        meta = self._meta.state
        owner_streams = {o.stream for o in meta.owners.values()}
        states = {s: await self._state(s) for s in owner_streams}
        named: set[tuple[str, int]] = set()
        for key, owner in meta.owners.items():
            state = states[owner.stream]
            if state.tenures.get(key) != owner.seq:
                stats.skipped = f"not adopted yet topic={key[0]} partition={key[1]}"
                return None
            part = state.partitions.get(key) if key[0] != GROUP_TOPIC else None
            if part is not None:
                named.update((c.stream, c.commit_seq) for c in part.chunks if not c.in_segment)
        for s in list(self._streams):
            if s not in owner_streams:
                del self._streams[s]  # no longer needed; read anew if it owns again
        members = {m.stream for m in meta.members.values()}
        found: dict[str, int] = {}
        for stream, commits in listing.commits.items():
            referenced = {seq for s, seq in named if s == stream}
            dead = stream in meta.ended and stream not in owner_streams and stream not in members
            if dead:
                floor = paths.MAX_SEQ
                if not referenced:
                    found.update(dict(listing.other.get(stream, [])))
            else:
                snaps = listing.snapshots.get(stream, [])
                if len(snaps) < 2:
                    continue  # it loads from its one snapshot, or from the first commit
                floor = snaps[-2]
                if stream in states:
                    floor = min(floor, states[stream].seq)
            for seq, (object_key, size) in commits.items():
                if seq <= floor and seq not in referenced:
                    found[object_key] = size
        topic_ids = {t.topic_id for t in meta.topics.values()}
        for object_key, size, topic_id in listing.segments:
            if topic_id not in topic_ids:
                found[object_key] = size
        return found

    async def _delete(self, found: dict[str, int], stats: JanitorStats) -> None:
        now = self._clock.wall_ms()
        self._first_seen = {k: self._first_seen.get(k, now) for k in found}
        for key, first in list(self._first_seen.items()):
            if now - first < self.delete_delay_ms:
                continue
            try:
                await self._store.delete(key)
            except ObjectStoreError as exc:
                stats.errors.append(f"key={key} error={exc}")
                continue
            del self._first_seen[key]
            stats.deleted += 1
            stats.deleted_bytes += found[key]
