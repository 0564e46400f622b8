"""The bucket side of `tidelog inspect`: everything the bucket says, gathered into a `Report`.

Owns: loading the metadata log and every stream named in it (`CommitLog.load`, snapshot +
later commits, exactly what a starting broker folds), the last N commit objects of each
log with their status, the brokers, the partitions with the index their owner has, and
the committed group offsets. The WAL part comes from wal_report.py.

Guarantees: read-only (nothing is written to the bucket). A commit "took effect" iff it
is on the chain walked back from the head through `prev` ids (docs/commit-format.md); a
commit after a gap in the log is "pending". Brokers are the writers of the inspected
commits plus the owner: the bucket knows who owns the cluster and when each broker last
wrote, not whether a process is alive. The time is `now_ms`, passed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tidelog.broker.admin.next_pass import partition_segments, predict_next_pass
from tidelog.broker.admin.report import (
    BrokerView,
    ChunkView,
    CommitView,
    GroupOffsetView,
    Head,
    InspectError,
    PartitionView,
    Report,
)
from tidelog.broker.admin.wal_report import wal_view
from tidelog.storage import paths
from tidelog.storage.cluster_defaults import defaults_in_force
from tidelog.storage.commit_format import CommitHeader
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.meta_state import GROUP_TOPIC, MetaState, Owner
from tidelog.storage.object_store import ObjectInfo, ObjectStore
from tidelog.storage.ownership import group_slot, read_stream
from tidelog.storage.segments import active_chunks
from tidelog.storage.store_config import DEFAULT_SEGMENT_OBJECT_BYTES
from tidelog.storage.stream_state import GroupOffsets, PartitionState, StreamState


async def collect_bucket(
    store: ObjectStore,
    *,
    commits: int,
    now_ms: int,
    data_dir: Path | None = None,
    segment_object_bytes: int = DEFAULT_SEGMENT_OBJECT_BYTES,
) -> Report:
    """Everything the bucket says, with the last `commits` commit objects of each log in
    detail, and, given `data_dir`, its WAL judged against the bucket. What the next
    lifecycle pass would do is judged at `now_ms`, with the brokers'
    `segment_object_bytes`."""
    meta_log: CommitLog[MetaState] = CommitLog(
        store, paths.META, MetaState, node_id=-1, clock_ms=lambda: now_ms
    )
    stats = await meta_log.load()
    meta = meta_log.state
    if meta.seq < 0:
        raise InspectError(f"no tidelog commits in the object store url={store.url}")
    names = set(meta.members) | set(meta.ended) | {o.stream for o in meta.owners.values()}
    streams = {
        name: await read_stream(store, name, node_id=-1, clock_ms=lambda: now_ms)
        for name in sorted(names)
    }
    views: list[CommitView] = []
    infos_all: list[ObjectInfo] = []
    logs: list[tuple[str, CommitLog[Any]]] = [("meta", meta_log), *streams.items()]
    for name, log in logs:
        infos = [i for i in await store.list(log.layout.log_prefix) if _is_commit(log, i.key)]
        infos_all += infos
        window = infos[-commits:] if commits > 0 else []
        headers = await asyncio.gather(*(_read_header(log, i.key) for i in window))
        views += _commit_views(name, log, list(zip(window, headers, strict=True)))
    states = {n: s.state for n, s in streams.items()}
    parts = _partitions(meta, states, now_ms=now_ms, segment_object_bytes=segment_object_bytes)
    head = Head(
        store.url,
        meta.seq,
        meta.head_id,
        len(meta.members),
        len(streams),
        meta.orphans + sum(s.state.orphans for s in streams.values()),
        meta.next_producer_id,
        stats.snapshot_seq,
        len(infos_all),
        sum(i.size for i in infos_all),
    )
    return Report(
        head,
        _broker_views(meta, streams, views, now_ms),
        [view for view, _ in parts.values()],
        views,
        _group_offset_views(meta, {n: s.state for n, s in streams.items()}),
        None
        if data_dir is None
        else wal_view(data_dir / "wal", {k: state for k, (_, state) in parts.items()}),
    )


def _is_commit(log: CommitLog[Any], key: str) -> bool:
    try:
        log.layout.parse_commit_key(key)
    except ValueError:
        return False
    return True


async def _read_header(log: CommitLog[Any], key: str) -> CommitHeader:
    header, _ = await log._read_header(key)
    return header


def _commit_views(
    name: str, log: CommitLog[Any], commits: Sequence[tuple[ObjectInfo, CommitHeader]]
) -> list[CommitView]:
    """Walk back from the head through `prev`: commits on that chain took effect."""
    statuses: dict[int, str] = {}
    chain_id = log.state.head_id
    for info, header in reversed(commits):
        seq = log.layout.parse_commit_key(info.key)
        if seq > log.state.seq:
            statuses[seq] = "pending"
        elif header.commit_id == chain_id:
            statuses[seq] = "effective"
            chain_id = header.prev_id
        else:
            statuses[seq] = "orphan"
    out = []
    for info, header in commits:
        seq = log.layout.parse_commit_key(info.key)
        chunks = [
            ChunkView(c.topic, c.partition, c.base_offset, c.end_offset, c.length)
            for c in header.chunks
        ]
        out.append(
            CommitView(
                name,
                seq,
                info.key,
                info.size,
                header.node_id,
                header.epoch,
                header.timestamp_ms,
                statuses[seq],
                list(header.ops),
                chunks,
            )
        )
    return out


def _broker_views(
    meta: MetaState,
    streams: Mapping[str, CommitLog[StreamState]],
    commits: Sequence[CommitView],
    now_ms: int,
) -> list[BrokerView]:
    latest: dict[str, CommitView] = {}
    for c in commits:
        if c.log != "meta" and (c.log not in latest or c.seq > latest[c.log].seq):
            latest[c.log] = c
    owned: dict[str, int] = {}
    for key, owner in meta.owners.items():
        if key[0] != GROUP_TOPIC:
            owned[owner.stream] = owned.get(owner.stream, 0) + 1
    views = []
    for name in streams:
        node, epoch = paths.parse_stream_id(name)
        if name in meta.members:
            status = "member"
        else:
            sealed_by = streams[name].state.sealed_by
            status = "left" if sealed_by in ("", name) else "fenced"
        last = latest.get(name)
        views.append(
            BrokerView(
                node,
                epoch,
                name,
                status,
                owned.get(name, 0),
                last.seq if last else -1,
                last.timestamp_ms if last else -1,
                now_ms - last.timestamp_ms if last else -1,
            )
        )
    return sorted(views, key=lambda b: (b.status != "member", b.node, b.epoch))


def _partitions(
    meta: MetaState, streams: Mapping[str, StreamState], *, now_ms: int, segment_object_bytes: int
) -> dict[tuple[str, int], tuple[PartitionView, PartitionState | None]]:
    """Each partition with the index its owner has (or, before adoption, its source's)."""
    out: dict[tuple[str, int], tuple[PartitionView, PartitionState | None]] = {}
    defaults = defaults_in_force(meta.cluster_configs)  # the cluster's, by topic config
    for topic in sorted(meta.topics.values(), key=lambda t: t.name):
        for p in range(topic.partitions):
            key = (topic.name, p)
            owner = meta.owners.get(key)
            member = meta.owner_of(key)
            found: tuple[str, PartitionState] | None = None
            for name, tenure in _tenures(owner):
                state = streams.get(name)
                part = state.partitions.get(key) if state else None
                if state is not None and state.tenures.get(key) == tenure and part is not None:
                    if part.topic_id == topic.topic_id:
                        found = (name, part)
                    break
            stream, part = found if found else ("-", None)
            view = PartitionView(
                topic.name, topic.topic_id, p, member.node if member else -1, stream, 0, 0, 0, 0
            )
            if part is not None:
                configs = (topic.configs, defaults)
                view = _partition_view(view, part, configs, now_ms, segment_object_bytes)
            out[key] = (view, part)
    return out


def _partition_view(
    empty: PartitionView,
    part: PartitionState,
    configs: tuple[Mapping[str, str], Mapping[str, str]],  # overrides, cluster defaults
    now_ms: int,
    segment_object_bytes: int,
) -> PartitionView:
    """`empty` filled from the partition's index."""
    segments = partition_segments(part)
    closed = [s for s in segments if s.key]
    active = active_chunks(part.chunks)
    return replace(
        empty,
        log_start=part.log_start,
        end_offset=part.committed_end,
        chunks=len(part.chunks),
        bytes=sum(c.length for c in part.chunks),
        segments=len(closed),
        segment_bytes=sum(s.bytes for s in closed),
        active_chunks=len(active),
        active_bytes=sum(c.length for c in active),
        cleaned_end=part.cleaned_end,
        next_pass=predict_next_pass(
            part,
            configs[0],
            defaults=configs[1],
            now_ms=now_ms,
            segment_object_bytes=segment_object_bytes,
        ),
        segment_list=segments,
    )


def _tenures(owner: Owner | None) -> list[tuple[str, int]]:
    """Where a key's state is, newest first: the owner (if it adopted it), then sources."""
    if owner is None:
        return []
    return [(owner.stream, owner.seq), *((s.stream, s.tenure) for s in owner.sources)]


def _group_offset_views(
    meta: MetaState, streams: Mapping[str, StreamState]
) -> list[GroupOffsetView]:
    rows: dict[str, GroupOffsets] = {}
    for (topic, slot), owner in meta.owners.items():
        if topic != GROUP_TOPIC:
            continue
        for name, tenure in _tenures(owner):
            state = streams.get(name)
            if state is not None and state.tenures.get((topic, slot)) == tenure:
                rows.update({g: o for g, o in state.group_offsets.items() if group_slot(g) == slot})
                break
    return [
        GroupOffsetView(group, topic, partition, o.offset, o.metadata, o.commit_timestamp)
        for group, offsets in sorted(rows.items())
        for (topic, partition), o in sorted(offsets.items())
    ]
