"""How `tidelog inspect` shows a `Report`: aligned tables by section, or JSON.

Owns: `render_report` (the head, then brokers, partitions, with `segments` each
partition's segments, commits, group offsets and, when a WAL was read, the WAL, each a
titled table), `render_json`, one line per commit op, human sizes (B, KiB, MiB, GiB)
and UTC times.

Guarantees: pure functions of the report: no I/O, no clock; an empty section says
"(none)" rather than disappearing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tidelog.broker.admin.report import (
    BrokerView,
    CommitView,
    GroupOffsetView,
    Head,
    NextPassView,
    PartitionView,
    Report,
    WalView,
)


def render_report(report: Report, *, segments: bool = False) -> str:
    """The report as readable sections of aligned tables; with `segments`, a table of
    every partition's segments after the partitions."""
    sections = [
        _render_head(report.head),
        _section("brokers", _broker_rows(report.brokers)),
        _section("partitions", _partition_rows(report.partitions)),
        *([_section("segments", _segment_rows(report.partitions))] if segments else []),
        _section(f"commits (last {len(report.commits)})", _commit_rows(report.commits)),
        _section("group offsets", _group_rows(report.group_offsets)),
    ]
    if report.wal is not None:
        sections.append(_render_wal(report.wal))
    return "\n\n".join(sections)


def render_json(report: Report) -> str:
    """The report as indented JSON: field names as keys, as `Report.to_json` gives them."""
    return json.dumps(report.to_json(), indent=2)


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
    rows = [
        [
            "TOPIC",
            "PARTITION",
            "OWNER",
            "START",
            "END",
            "CHUNKS",
            "BYTES",
            "SEGMENTS",
            "ACTIVE",
            "NEXT START",
            "ROLL",
            "COMPACT",
        ]
    ]
    for p in partitions:
        nxt = p.next_pass
        rows.append(
            [
                p.topic,
                str(p.partition),
                str(p.owner_node) if p.owner_node >= 0 else "-",
                str(p.log_start),
                str(p.end_offset),
                str(p.chunks),
                _size(p.bytes),
                _amount(p.segments, p.segment_bytes, always=True),
                _amount(p.active_chunks, p.active_bytes, always=True),
                _next_start(p.log_start, nxt),
                _amount(nxt.would_roll_chunks, nxt.would_roll_bytes),
                _amount(nxt.would_compact_segments, nxt.would_compact_bytes),
            ]
        )
    return rows


def _amount(count: int, size: int, *, always: bool = False) -> str:
    """`count (size)`; "-" for nothing unless `always`."""
    return f"{count} ({_size(size)})" if count or always else "-"


def _next_start(log_start: int, nxt: NextPassView) -> str:
    """Where retention would move the log start: "-" without the delete policy, the
    same offset if nothing goes, else the offset and how many records and bytes go."""
    if nxt.retention_log_start is None:
        return "-"
    if nxt.retention_log_start == log_start:
        return str(log_start)
    gone = f"-{nxt.retention_records} rec, {_size(nxt.retention_bytes)}"
    return f"{nxt.retention_log_start} ({gone})"


def _segment_rows(partitions: Sequence[PartitionView]) -> list[list[str]]:
    rows = [["TOPIC", "PARTITION", "SEGMENT", "BASE", "END", "CHUNKS", "BYTES", "NEWEST"]]
    for p in partitions:
        for s in p.segment_list:
            rows.append(
                [
                    p.topic,
                    str(p.partition),
                    s.key or "(active: per-flush commits)",
                    str(s.base_offset),
                    str(s.end_offset),
                    str(s.chunks),
                    _size(s.bytes),
                    _utc(s.max_timestamp),
                ]
            )
    return rows


def _utc(ms: int) -> str:
    if ms < 0:
        return "-"
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


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
