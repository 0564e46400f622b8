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

from protocol.batch import iter_batches
from protocol.errors import RecordBatchError
from storage import paths, wal
from storage.cluster_state import ClusterState
from storage.commit_format import CommitHeader, CorruptCommit
from storage.commit_log import CommitLog
from storage.object_store import ObjectInfo, ObjectStore, ObjectStoreError
from storage.store_url import file_url_path, open_object_store

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
    status: str  # "owner" or "fenced"
    last_commit_seq: int
    last_commit_ms: int
    last_commit_age_ms: int


@dataclass(frozen=True)
class PartitionView:
    topic: str
    topic_id: str
    partition: int
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
    seq: int
    head_id: str
    owner_node: int
    owner_epoch: int
    orphans: int
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
    """Everything the bucket says, with the last `commits` commit objects in detail,
    and, given `data_dir`, its WAL judged against the bucket."""
    infos = [i for i in await store.list(paths.LOG_PREFIX) if _is_commit_key(i.key)]
    if not infos:
        raise InspectError(f"no tidelog commits in the object store url={store.url}")
    log = CommitLog(store, node_id=-1, clock_ms=lambda: now_ms)
    stats = await log.load()
    state = log.state
    window = infos[-commits:] if commits > 0 else []
    headers = await asyncio.gather(*(_read_header(log, i.key) for i in window))
    views = _commit_views(state, list(zip(window, headers, strict=True)))
    head = Head(
        store.url,
        state.seq,
        state.head_id,
        state.owner_node,
        state.owner_epoch,
        state.orphans,
        state.next_producer_id,
        stats.snapshot_seq,
        len(infos),
        sum(i.size for i in infos),
    )
    return Report(
        head,
        _broker_views(state, views, now_ms),
        _partition_views(state),
        views,
        _group_offset_views(state),
        None if data_dir is None else wal_view(data_dir / "wal", state),
    )


def _is_commit_key(key: str) -> bool:
    try:
        paths.parse_commit_key(key)
    except ValueError:
        return False
    return True


async def _read_header(log: CommitLog, key: str) -> CommitHeader:
    header, _ = await log._read_header(key)
    return header


def _commit_views(
    state: ClusterState, commits: Sequence[tuple[ObjectInfo, CommitHeader]]
) -> list[CommitView]:
    """Walk back from the head through `prev`: commits on that chain took effect."""
    statuses: dict[int, str] = {}
    chain_id = state.head_id
    for info, header in reversed(commits):
        seq = paths.parse_commit_key(info.key)
        if seq > state.seq:
            statuses[seq] = "pending"
        elif header.commit_id == chain_id:
            statuses[seq] = "effective"
            chain_id = header.prev_id
        else:
            statuses[seq] = "orphan"
    return [_commit_view(info, header, statuses) for info, header in commits]


def _commit_view(info: ObjectInfo, header: CommitHeader, statuses: dict[int, str]) -> CommitView:
    seq = paths.parse_commit_key(info.key)
    chunks = [
        ChunkView(c.topic, c.partition, c.base_offset, c.end_offset, c.length)
        for c in header.chunks
    ]
    return CommitView(
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


def _broker_views(
    state: ClusterState, commits: Sequence[CommitView], now_ms: int
) -> list[BrokerView]:
    latest: dict[int, CommitView] = {}
    for c in commits:
        if c.node not in latest or (c.epoch, c.seq) > (latest[c.node].epoch, latest[c.node].seq):
            latest[c.node] = c
    views = [
        BrokerView(
            node,
            c.epoch,
            _broker_status(state, node, c.epoch),
            c.seq,
            c.timestamp_ms,
            now_ms - c.timestamp_ms,
        )
        for node, c in latest.items()
    ]
    if state.owner_node >= 0 and state.owner_node not in latest:
        # the owner wrote nothing inside the window: its last write is older
        views.append(BrokerView(state.owner_node, state.owner_epoch, "owner", -1, -1, -1))
    return sorted(views, key=lambda b: b.node)


def _broker_status(state: ClusterState, node: int, epoch: int) -> str:
    owner = node == state.owner_node and epoch == state.owner_epoch
    return "owner" if owner else "fenced"


def _partition_views(state: ClusterState) -> list[PartitionView]:
    return [
        PartitionView(
            p.topic,
            p.topic_id,
            p.partition,
            p.log_start,
            p.committed_end,
            len(p.chunks),
            sum(c.length for c in p.chunks),
        )
        for _, p in sorted(state.partitions.items())
    ]


def _group_offset_views(state: ClusterState) -> list[GroupOffsetView]:
    return [
        GroupOffsetView(group, topic, partition, o.offset, o.metadata, o.commit_timestamp)
        for group, offsets in sorted(state.group_offsets.items())
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


def wal_view(directory: Path, state: ClusterState) -> WalView:
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
    key: tuple[str, int], topic_id: str, base: int, end: int, state: ClusterState
) -> WalPartitionView:
    topic, partition = key
    part = state.partitions.get(key)
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
        f"head           seq={h.seq} id={h.head_id or '-'} orphans={h.orphans}",
        f"owner          node={h.owner_node} epoch={h.owner_epoch}",
        f"snapshot       {'seq=' + str(h.snapshot_seq) if h.snapshot_seq >= 0 else 'none'}",
        f"commit objects {h.commit_objects} ({_size(h.commit_bytes)})",
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
    rows = [["NODE", "EPOCH", "STATUS", "LAST COMMIT", "LAST WRITE"]]
    for b in brokers:
        seen = b.last_commit_seq >= 0
        ago = f"{b.last_commit_age_ms / 1000:.1f}s ago" if seen else "before window"
        rows.append(
            [str(b.node), str(b.epoch), b.status, str(b.last_commit_seq) if seen else "-", ago]
        )
    return rows


def _partition_rows(partitions: Sequence[PartitionView]) -> list[list[str]]:
    rows = [["TOPIC", "PARTITION", "START", "END", "CHUNKS", "BYTES"]]
    for p in partitions:
        rows.append(
            [
                p.topic,
                str(p.partition),
                str(p.log_start),
                str(p.end_offset),
                str(p.chunks),
                _size(p.bytes),
            ]
        )
    return rows


def _commit_rows(commits: Sequence[CommitView]) -> list[list[str]]:
    rows = [["SEQ", "NODE", "EPOCH", "STATUS", "SIZE", "CONTENT"]]
    for c in commits:
        content = [_op_text(op) for op in c.ops] + [
            f"{ch.topic}-{ch.partition} [{ch.base_offset}, {ch.end_offset}) {_size(ch.bytes)}"
            for ch in c.chunks
        ]
        first, *rest = content or ["(empty)"]
        rows.append([str(c.seq), str(c.node), str(c.epoch), c.status, _size(c.size), first])
        rows.extend(["", "", "", "", "", line] for line in rest)
    return rows


def _op_text(op: dict[str, Any]) -> str:
    kind = str(op.get("op"))
    if kind == "offsets":
        return f"offsets group={op.get('group')} partitions={len(op.get('offsets', []))}"
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
