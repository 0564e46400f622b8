"""`tidelog inspect`: what lives in the bucket (and, given a data dir, only in the WAL).

Owns: the `inspect` sub-command's arguments, the read-only report built from the bucket
(metadata head, brokers, partitions, commit objects with their chunks, group offsets)
and from `<data-dir>/wal`, and rendering it as tables or as JSON (`--json`).

Guarantees: nothing is written, neither to the bucket nor to the WAL (a torn WAL tail is
reported, never cut; a `file://` store that does not exist is an error, not created).
The folded state comes from `CommitLog.load` (snapshot + later commits), exactly what a
starting broker folds. A commit "took effect" iff it is on the chain walked back from
the head through `prev` ids (docs/commit-format.md); a commit after a gap in the log is
"pending". Brokers are the writers of the inspected commits plus the owner: the bucket
knows who owns the cluster and when each broker last wrote, not whether a process is
alive. Exit 0 on success; an unreachable or empty store, a corrupt commit or an
unreadable WAL is one line on stderr and exit 1; a malformed URL exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tidelog.protocol.batch import iter_batches
from tidelog.protocol.errors import RecordBatchError
from tidelog.storage import paths, wal
from tidelog.storage.commit_format import CommitHeader, CorruptCommit
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.meta_state import GROUP_TOPIC, MetaState, Owner
from tidelog.storage.object_store import ObjectInfo, ObjectStore, ObjectStoreError
from tidelog.storage.ownership import group_slot, read_stream
from tidelog.storage.store_url import file_url_path, open_object_store
from tidelog.storage.stream_state import GroupOffsets, PartitionState, StreamState

OBJECT_STORE_ENV = "TIDELOG_OBJECT_STORE"
S3_ENDPOINT_ENV = "TIDELOG_S3_ENDPOINT"
DATA_DIR_ENV = "TIDELOG_DATA_DIR"
DEFAULT_OBJECT_STORE = "file://./tidelog-data/objects"
DEFAULT_COMMITS = 20


class InspectError(Exception):
    """The bucket or the WAL cannot be shown: empty, unreachable or unreadable."""


# -- the report ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkView:
    topic: str
    partition: int
    base_offset: int
    end_offset: int
    bytes: int


@dataclass(frozen=True)
class CommitView:
    log: str  # "meta" or the stream id
    seq: int
    key: str
    size: int
    node: int
    epoch: int
    timestamp_ms: int
    status: str  # "effective", "orphan" or "pending" (after a gap)
    ops: list[dict[str, Any]]
    chunks: list[ChunkView]


@dataclass(frozen=True)
class BrokerView:
    node: int
    epoch: int
    stream: str
    status: str  # "member" (in the cluster), "left" or "fenced"
    partitions: int  # partitions it owns now
    last_commit_seq: int
    last_commit_ms: int
    last_commit_age_ms: int


@dataclass(frozen=True)
class PartitionView:
    topic: str
    topic_id: str
    partition: int
    owner_node: int  # -1: between owners
    stream: str  # the stream holding its index
    log_start: int
    end_offset: int
    chunks: int
    bytes: int


@dataclass(frozen=True)
class GroupOffsetView:
    group: str
    topic: str
    partition: int
    offset: int
    metadata: str | None
    commit_ms: int


@dataclass(frozen=True)
class WalPartitionView:
    topic: str
    partition: int
    wal_base: int  # lowest offset in the WAL
    wal_end: int  # one past the highest offset in the WAL
    committed_end: int  # what the bucket holds: [0, committed_end)
    only_in_wal: int  # records at offsets >= committed_end
    status: str  # "committed", "only-in-wal" or "topic-gone" (dropped on replay)


@dataclass(frozen=True)
class WalView:
    directory: str
    files: list[str]
    torn: list[str]  # where a record is torn or corrupt; reading stopped there
    partitions: list[WalPartitionView]


@dataclass(frozen=True)
class Head:
    store: str
    seq: int  # of the metadata log
    head_id: str
    members: int
    streams: int
    orphans: int  # in the metadata log and every stream
    next_producer_id: int
    snapshot_seq: int
    commit_objects: int
    commit_bytes: int


@dataclass(frozen=True)
class Report:
    head: Head
    brokers: list[BrokerView]
    partitions: list[PartitionView]
    commits: list[CommitView]
    group_offsets: list[GroupOffsetView]
    wal: WalView | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- reading the bucket ----------------------------------------------------------------


async def collect_bucket(
    store: ObjectStore, *, commits: int, now_ms: int, data_dir: Path | None = None
) -> Report:
    """Everything the bucket says, with the last `commits` commit objects of each log in
    detail, and, given `data_dir`, its WAL judged against the bucket."""
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
    parts = _partitions(meta, {n: s.state for n, s in streams.items()})
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
    meta: MetaState, streams: Mapping[str, StreamState]
) -> dict[tuple[str, int], tuple[PartitionView, PartitionState | None]]:
    """Each partition with the index its owner has (or, before adoption, its source's)."""
    out: dict[tuple[str, int], tuple[PartitionView, PartitionState | None]] = {}
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
                topic.name,
                topic.topic_id,
                p,
                member.node if member else -1,
                stream,
                part.log_start if part else 0,
                part.committed_end if part else 0,
                len(part.chunks) if part else 0,
                sum(c.length for c in part.chunks) if part else 0,
            )
            out[key] = (view, part)
    return out


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


# -- reading the WAL, without cutting its tail -----------------------------------------


def read_wal_read_only(directory: Path) -> tuple[list[wal.WalEntry], list[str], list[str]]:
    """Every intact record (oldest first), the file names, and where reading stopped.

    Unlike `wal.read_wal` this never truncates: a torn or corrupt record ends that file
    and is reported instead.
    """
    entries: list[wal.WalEntry] = []
    names: list[str] = []
    torn: list[str] = []
    for _, path in wal.wal_files(directory):
        names.append(path.name)
        intact, stopped_at = wal.scan_wal_file(path.read_bytes())
        entries += intact
        if stopped_at is not None:
            torn.append(f"{path.name}@{stopped_at}")
    return entries, names, torn


def wal_view(directory: Path, state: Mapping[tuple[str, int], PartitionState | None]) -> WalView:
    """Per partition: offsets in the WAL, and how many the bucket does not hold yet."""
    if not directory.is_dir():
        raise InspectError(f"no wal directory path={directory}")
    try:
        entries, names, torn = read_wal_read_only(directory)
        ranges = _wal_ranges(entries)
    except (OSError, ValueError, RecordBatchError) as exc:
        raise InspectError(f"wal unreadable path={directory} error={exc}") from None
    parts = [
        _wal_partition(key, topic_id, base, end, state)
        for (key, topic_id), (base, end) in sorted(ranges.items())
    ]
    return WalView(str(directory), names, torn, parts)


_WalKey = tuple[tuple[str, int], str]


def _wal_ranges(entries: Sequence[wal.WalEntry]) -> dict[_WalKey, tuple[int, int]]:
    ranges: dict[_WalKey, tuple[int, int]] = {}
    for entry in entries:
        batches = [h for _, h in iter_batches(entry.body)] if entry.kind == wal.KIND_BATCH else []
        if not batches:
            continue
        key = ((entry.topic, entry.partition), entry.topic_id)
        base, end = batches[0].base_offset, batches[-1].next_offset
        old = ranges.get(key, (base, end))
        ranges[key] = (min(old[0], base), max(old[1], end))
    return ranges


def _wal_partition(
    key: tuple[str, int],
    topic_id: str,
    base: int,
    end: int,
    state: Mapping[tuple[str, int], PartitionState | None],
) -> WalPartitionView:
    topic, partition = key
    part = state.get(key)
    if part is None or part.topic_id != topic_id:
        return WalPartitionView(topic, partition, base, end, -1, 0, "topic-gone")
    only = max(0, end - max(base, part.committed_end))
    status = "only-in-wal" if only else "committed"
    return WalPartitionView(topic, partition, base, end, part.committed_end, only, status)


# -- rendering -------------------------------------------------------------------------


def render_report(report: Report) -> str:
    """The report as readable sections of aligned tables."""
    sections = [
        _render_head(report.head),
        _section("brokers", _broker_rows(report.brokers)),
        _section("partitions", _partition_rows(report.partitions)),
        _section(f"commits (last {len(report.commits)})", _commit_rows(report.commits)),
        _section("group offsets", _group_rows(report.group_offsets)),
    ]
    if report.wal is not None:
        sections.append(_render_wal(report.wal))
    return "\n\n".join(sections)


def _render_head(h: Head) -> str:
    lines = [
        f"store          {h.store}",
        f"metadata head  seq={h.seq} id={h.head_id or '-'} orphans={h.orphans}",
        f"brokers        {h.members} in the cluster, {h.streams} streams in the bucket",
        f"snapshot       {'seq=' + str(h.snapshot_seq) if h.snapshot_seq >= 0 else 'none'}",
        f"commit objects {h.commit_objects} ({_size(h.commit_bytes)}) in the metadata log "
        "and the streams",
        f"next pid       {h.next_producer_id}",
    ]
    return "\n".join(lines)


def _section(title: str, rows: list[list[str]]) -> str:
    if len(rows) <= 1:
        return f"{title.upper()}\n  (none)"
    return f"{title.upper()}\n{_table(rows)}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _broker_rows(brokers: Sequence[BrokerView]) -> list[list[str]]:
    rows = [["NODE", "EPOCH", "STATUS", "PARTITIONS", "LAST COMMIT", "LAST WRITE"]]
    for b in brokers:
        seen = b.last_commit_seq >= 0
        ago = f"{b.last_commit_age_ms / 1000:.1f}s ago" if seen else "-"
        rows.append(
            [
                str(b.node),
                str(b.epoch),
                b.status,
                str(b.partitions),
                str(b.last_commit_seq) if seen else "-",
                ago,
            ]
        )
    return rows


def _partition_rows(partitions: Sequence[PartitionView]) -> list[list[str]]:
    rows = [["TOPIC", "PARTITION", "OWNER", "START", "END", "CHUNKS", "BYTES"]]
    for p in partitions:
        rows.append(
            [
                p.topic,
                str(p.partition),
                str(p.owner_node) if p.owner_node >= 0 else "-",
                str(p.log_start),
                str(p.end_offset),
                str(p.chunks),
                _size(p.bytes),
            ]
        )
    return rows


def _commit_rows(commits: Sequence[CommitView]) -> list[list[str]]:
    rows = [["LOG", "SEQ", "NODE", "STATUS", "SIZE", "CONTENT"]]
    for c in commits:
        content = [_op_text(op) for op in c.ops] + [
            f"{ch.topic}-{ch.partition} [{ch.base_offset}, {ch.end_offset}) {_size(ch.bytes)}"
            for ch in c.chunks
        ]
        first, *rest = content or ["(empty)"]
        rows.append([c.log, str(c.seq), str(c.node), c.status, _size(c.size), first])
        rows.extend(["", "", "", "", "", line] for line in rest)
    return rows


def _op_text(op: dict[str, Any]) -> str:
    kind = str(op.get("op"))
    if kind == "offsets":
        return f"offsets group={op.get('group')} partitions={len(op.get('offsets', []))}"
    if kind == "adopt":
        return f"adopt {op.get('topic')}-{op.get('partition')} end={op.get('end')}"
    if kind == "adopt_groups":
        return f"adopt_groups slot={op.get('slot')} groups={len(op.get('groups', {}))}"
    if kind == "assign":
        return f"assign keys={len(op.get('owners', []))}"
    details = " ".join(f"{k}={v}" for k, v in op.items() if k not in ("op", "id", "configs"))
    return f"{kind} {details}".rstrip()


def _group_rows(offsets: Sequence[GroupOffsetView]) -> list[list[str]]:
    rows = [["GROUP", "TOPIC", "PARTITION", "OFFSET", "METADATA"]]
    for o in offsets:
        rows.append([o.group, o.topic, str(o.partition), str(o.offset), o.metadata or "-"])
    return rows


def _render_wal(view: WalView) -> str:
    rows = [["TOPIC", "PARTITION", "WAL OFFSETS", "BUCKET END", "ONLY IN WAL", "STATUS"]]
    for p in view.partitions:
        bucket_end = str(p.committed_end) if p.committed_end >= 0 else "-"
        wal_range = f"[{p.wal_base}, {p.wal_end})"
        rows.append(
            [p.topic, str(p.partition), wal_range, bucket_end, str(p.only_in_wal), p.status]
        )
    text = _section("wal", rows).replace(
        "WAL", f"WAL {view.directory} ({len(view.files)} files)", 1
    )
    if view.torn:
        text += "\n  torn tail (not cut, read-only): " + ", ".join(view.torn)
    return text


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


# -- the command -----------------------------------------------------------------------


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--object-store",
        metavar="URL",
        default=None,
        help=f"file://PATH or s3://BUCKET/PREFIX [env {OBJECT_STORE_ENV}; default "
        f"file://<data-dir>/objects with --data-dir, else {DEFAULT_OBJECT_STORE}]",
    )
    parser.add_argument(
        "--s3-endpoint", metavar="URL", default=None, help=f"S3 endpoint [env {S3_ENDPOINT_ENV}]"
    )
    parser.add_argument(
        "--data-dir",
        metavar="PATH",
        type=Path,
        default=None,
        help=f"also show what is only in <data-dir>/wal [env {DATA_DIR_ENV}]",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--commits",
        metavar="N",
        type=_non_negative,
        default=DEFAULT_COMMITS,
        help=f"show the last N commit objects (default {DEFAULT_COMMITS})",
    )


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer value={text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 value={value}")
    return value


def resolve_locations(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, Path | None]:
    """The object-store URL and the data dir: command line, then environment, then default."""
    data_dir: Path | None = args.data_dir
    if data_dir is None and env.get(DATA_DIR_ENV):
        data_dir = Path(env[DATA_DIR_ENV])
    url: str | None = args.object_store or env.get(OBJECT_STORE_ENV)
    if not url:
        url = f"file://{data_dir / 'objects'}" if data_dir is not None else DEFAULT_OBJECT_STORE
    return url, data_dir


def open_existing_store(url: str, s3_endpoint: str | None) -> ObjectStore:
    """The store `url` names; a file:// store must exist (opening one would create it)."""
    if url.startswith("file://") and not file_url_path(url).is_dir():
        raise InspectError(f"no object store directory url={url}")
    return open_object_store(url, s3_endpoint=s3_endpoint, default_root=Path(DEFAULT_OBJECT_STORE))


async def inspect(
    url: str, s3_endpoint: str | None, data_dir: Path | None, commits: int, now_ms: int
) -> Report:
    store = open_existing_store(url, s3_endpoint)
    try:
        return await collect_bucket(store, commits=commits, now_ms=now_ms, data_dir=data_dir)
    finally:
        await store.close()


def run_inspect(args: argparse.Namespace) -> int:
    """Run `tidelog inspect` and return the exit code."""
    prog = "tidelog inspect"
    url, data_dir = resolve_locations(args, os.environ)
    s3_endpoint = args.s3_endpoint or os.environ.get(S3_ENDPOINT_ENV)
    now_ms = int(time.time() * 1000)
    try:
        report = asyncio.run(inspect(url, s3_endpoint, data_dir, args.commits, now_ms))
    except ValueError as exc:  # a malformed URL
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (InspectError, ObjectStoreError, CorruptCommit, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_json(), indent=2) if args.json else render_report(report))
    return 0
