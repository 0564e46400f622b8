"""What `tidelog inspect` reports, as frozen dataclasses: the facts, not how they look.

Owns: `Report` and its parts (`Head`, `BrokerView`, `PartitionView` with its
`SegmentView`s and `NextPassView`, `CommitView` with its `ChunkView`s, `GroupOffsetView`,
`WalView` with its `WalPartitionView`s), and
`InspectError`, the one failure the gathering modules raise.

Guarantees: plain values with no behaviour beyond `Report.to_json` (`dataclasses.asdict`,
so the JSON keys are the field names). bucket_report.py and wal_report.py fill them,
report_text.py renders them, inspect.py is the command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class InspectError(Exception):
    """The bucket or the WAL cannot be shown: empty, unreachable or unreadable."""


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
class SegmentView:
    key: str  # the segment object, or "" for the active segment (per-flush commits)
    base_offset: int
    end_offset: int
    chunks: int
    bytes: int
    max_timestamp: int  # of its newest record


@dataclass(frozen=True)
class NextPassView:
    """What the next lifecycle pass would do, by the rules and configs in force at
    inspection time (broker/admin/next_pass.py)."""

    retention_log_start: int | None  # None: cleanup.policy has no delete
    retention_records: int  # offsets between the log start and that one
    retention_bytes: int  # of the whole segments that go
    would_roll_chunks: int  # from the active segment into new segment objects
    would_roll_bytes: int
    would_compact_segments: int  # 0 when cleanup.policy has no compact
    would_compact_bytes: int


NO_PASS = NextPassView(None, 0, 0, 0, 0, 0, 0)


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
    segments: int = 0  # closed segments: segment objects the index names
    segment_bytes: int = 0
    active_chunks: int = 0  # still in per-flush commit objects
    active_bytes: int = 0
    cleaned_end: int = 0  # compacted below this
    next_pass: NextPassView = NO_PASS
    segment_list: list[SegmentView] = field(default_factory=list)  # in offset order


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
