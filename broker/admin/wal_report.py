"""The WAL side of `tidelog inspect`: what a data dir's WAL holds that the bucket does not.

Owns: reading `<data-dir>/wal` without cutting its tail (`read_wal_read_only`), and, per
partition, the offsets in the WAL judged against what the bucket holds (`wal_view`).

Guarantees: read-only: a torn or corrupt record ends its file and is reported, never
truncated; a missing or unreadable WAL is an `InspectError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tidelog.broker.admin.report import InspectError, WalPartitionView, WalView
from tidelog.protocol.batch import iter_batches
from tidelog.protocol.errors import RecordBatchError
from tidelog.storage import wal
from tidelog.storage.stream_state import PartitionState


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
