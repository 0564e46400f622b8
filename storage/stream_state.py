"""The state folded from one broker's stream: the partitions and groups it owns.

Owns: the meaning of stream ops and the stream snapshot document. Pure: no I/O, no
clock. A stream is written by one broker incarnation (docs/bucket-layout.md); the only
commit anyone else ever puts in it is a `seal`, which ends it.

Ops (docs/commit-format.md):
    {"op": "adopt", "tenure", "topic", "partition", "id", "start", "end", "chunks": [...],
     "producers": [...]}            this stream owns the partition for the assignment
                                    made at metadata seq `tenure`, with the index it
                                    had in the stream it came from
    {"op": "adopt_groups", "tenure", "slot", "groups": {group: [[topic, partition,
                                     offset, epoch, metadata, ts], ...]}}  a group slot

A key that moves away is not removed: the stream's state for it stays as it was when
it moved (the next owner reads it from here), and is never served again unless the key
is adopted anew, for a newer tenure.
    {"op": "offsets", "group", "ts", "offsets": [[topic, partition, offset, leader_epoch,
                                                  metadata], ...]}   committed offsets
    {"op": "delete_offsets", "group", "partitions": [[topic, partition], ...]}
    {"op": "delete_group", "group"}
    {"op": "seal", "by": stream}    written by a broker taking this stream's partitions
                                    over: nothing after it takes effect, ever
    {"op": "txn", "id", "meta": {...}}   a transactional id's coordinator state
                                    (broker/transactions/model.py; opaque here)
    {"op": "txn_offsets", "group", "pid", "epoch", "offsets": [[topic, partition, offset,
     leader_epoch, metadata], ...], "ts"}  offsets of an open transaction
                                    (TxnOffsetCommit), staged at wall time ts
    {"op": "txn_offsets_end", "pid", "epoch", "groups": [...], "commit", "ts"}  its
                                    marker: the pending offsets of that epoch become
                                    committed, or are dropped; an older epoch's are
                                    dropped ("epoch" absent in ops written before it:
                                    whatever is pending for the pid)
    {"op": "log_start", "topic", "partition", "offset"}  DeleteRecords or retention: the
                                    partition's log start offset moves up to offset (never
                                    down); chunks wholly below it leave the index
    {"op": "segment", "topic", "partition", "id", "base", "end", "chunks": [...]}  the
                                    chunks covering [base, end) now live in a segment
                                    object (storage/segments.py); taken only if the index
                                    still has chunk boundaries at base and end
    {"op": "cleaned", "topic", "partition", "id", "offset"}  the cleaner compacted the
                                    partition's segments below offset (storage/cleaner.py)
    {"op": "epoch_start", "topic", "partition", "tenure", "offset"}  the partition's
                                    epoch `tenure` begins at `offset`, not where it was
                                    adopted (WAL replay: storage/leader_epochs.py)
`adopt_groups` also carries the slot's "txns" and "txn_offsets"; `adopt` carries
"epochs" (storage/leader_epochs.py; absent before it: none) and adds its own tenure.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tidelog.storage.commit_format import Chunk, CommitHeader
from tidelog.storage.leader_epochs import EpochMap, move_epoch_start, record_epoch
from tidelog.storage.paths import stream_commit_key
from tidelog.storage.producer_state import ProducerStates
from tidelog.storage.txn_index import BEGIN, TxnIndex

PartitionKey = tuple[str, int]
GROUP_SLOTS_TOPIC = "__consumer_offsets"  # the key of a group slot: (this, slot)


class StateError(Exception):
    """A commit or snapshot contradicts the state it is applied to."""


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """Where one committed run of a partition's batches lives in the bucket."""

    base_offset: int
    end_offset: int
    max_timestamp: int
    stream: str  # the stream whose commit object holds the bytes, or a segment's key
    commit_seq: int  # -1: in the segment object named by `stream` (docs/segments.md)
    position: int  # absolute byte position inside the commit object
    length: int
    crc: int

    @property
    def in_segment(self) -> bool:
        return self.commit_seq < 0

    @property
    def object_key(self) -> str:
        """The key of the object holding the bytes."""
        if self.commit_seq < 0:
            return self.stream
        return stream_commit_key(self.stream, self.commit_seq)

    def to_json(self) -> list[Any]:
        return [
            self.base_offset,
            self.end_offset,
            self.max_timestamp,
            self.stream,
            self.commit_seq,
            self.position,
            self.length,
            self.crc,
        ]

    @classmethod
    def from_json(cls, raw: list[Any]) -> ChunkRef:
        base, end, ts, stream, seq, pos, length, crc = raw
        return cls(
            int(base), int(end), int(ts), str(stream), int(seq), int(pos), int(length), int(crc)
        )


@dataclass(slots=True)
class PartitionState:
    topic_id: str
    topic: str
    partition: int
    chunks: list[ChunkRef] = field(default_factory=list)
    committed_end: int = 0
    log_start: int = 0
    producers: ProducerStates = field(default_factory=ProducerStates)
    txns: TxnIndex = field(default_factory=TxnIndex)
    epochs: EpochMap = field(default_factory=list)  # leader epoch -> its start offset
    cleaned_end: int = 0  # compacted below this (docs/compaction.md)

    @property
    def key(self) -> PartitionKey:
        return (self.topic, self.partition)

    def add_chunk(self, ref: ChunkRef) -> None:
        if ref.base_offset < self.committed_end:
            return  # already folded (our own commit applied locally before)
        if ref.base_offset != self.committed_end:
            raise StateError(
                f"offset gap in partition topic={self.topic} partition={self.partition} "
                f"expected={self.committed_end} got={ref.base_offset}"
            )
        self.chunks.append(ref)
        self.committed_end = ref.end_offset

    def chunk_for(self, offset: int) -> ChunkRef | None:
        """The committed chunk holding `offset`, or else the first one after it (offsets
        compaction removed whole leave gaps between chunks), if any."""
        i = bisect_right(self.chunks, offset, key=lambda c: c.base_offset) - 1
        if i >= 0 and self.chunks[i].base_offset <= offset < self.chunks[i].end_offset:
            return self.chunks[i]
        return self.chunks[i + 1] if i + 1 < len(self.chunks) else None

    def move_log_start(self, offset: int) -> None:
        """Up only; chunks wholly below the new log start leave the index."""
        if offset > self.log_start:
            self.log_start = offset
            if self.chunks and self.chunks[0].end_offset <= offset:
                self.chunks = [c for c in self.chunks if c.end_offset > offset]

    def replace_chunks(self, base: int, end: int, new: list[ChunkRef]) -> bool:
        """The chunks covering [base, end) become `new` (a segment object's), if the
        index still has chunk boundaries at `base` (or the range starts below the log
        start) and at `end`; False (nothing changes) otherwise."""
        chunks = self.chunks
        i = bisect_right(chunks, base - 1, key=lambda c: c.base_offset)
        if i > 0 and chunks[i - 1].end_offset > base:
            return False  # a chunk straddles base
        j = i
        while j < len(chunks) and chunks[j].end_offset <= end:
            j += 1
        if j == i or chunks[j - 1].end_offset != end:
            return False
        if chunks[i].base_offset != base and base >= self.log_start:
            return False
        kept = [c for c in new if c.end_offset > self.log_start]
        self.chunks = chunks[:i] + kept + chunks[j:]
        return True

    def to_json(self, tenure: int = -1) -> dict[str, Any]:
        return {
            "op": "adopt",
            "tenure": tenure,
            "topic": self.topic,
            "partition": self.partition,
            "id": self.topic_id,
            "start": self.log_start,
            "end": self.committed_end,
            "chunks": [c.to_json() for c in self.chunks],
            "producers": self.producers.snapshot(),
            "txns": self.txns.to_json(),
            "epochs": [list(e) for e in self.epochs],
            "cleaned": self.cleaned_end,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PartitionState:
        part = cls(str(raw["id"]), str(raw["topic"]), int(raw["partition"]))
        part.chunks = [ChunkRef.from_json(c) for c in raw["chunks"]]
        part.committed_end = int(raw["end"])
        part.log_start = int(raw["start"])
        part.producers.restore(raw["producers"])
        part.txns = TxnIndex.from_json(raw.get("txns"))
        part.epochs = [(int(e), int(s)) for e, s in raw.get("epochs", ())]
        part.cleaned_end = int(raw.get("cleaned", 0))
        return part


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str | None
    commit_timestamp: int

    def to_json(self) -> list[Any]:
        return [self.offset, self.leader_epoch, self.metadata, self.commit_timestamp]


GroupOffsets = dict[PartitionKey, CommittedOffset]


def group_rows(offsets: GroupOffsets) -> list[list[Any]]:
    return [[t, p, *c.to_json()] for (t, p), c in offsets.items()]


def group_from_rows(rows: Iterable[list[Any]]) -> GroupOffsets:
    return {
        (str(t), int(p)): CommittedOffset(int(o), int(e), m, int(ts)) for t, p, o, e, m, ts in rows
    }


@dataclass(slots=True)
class StreamState:
    stream: str = ""
    seq: int = -1  # last folded commit
    head_id: str = ""  # id of the last commit that took effect
    orphans: int = 0
    sealed_by: str = ""  # the stream that sealed this one ("" while open)
    sealed_seq: int = -1
    partitions: dict[PartitionKey, PartitionState] = field(default_factory=dict)
    slots: set[int] = field(default_factory=set)  # group coordinator slots held
    tenures: dict[PartitionKey, int] = field(default_factory=dict)  # key -> adopted for
    group_offsets: dict[str, GroupOffsets] = field(default_factory=dict)
    txns: dict[str, dict[str, Any]] = field(default_factory=dict)  # transactional id ->
    # group -> producer id -> {"epoch": e, "offsets": rows}: offsets awaiting a marker
    txn_offsets: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    @property
    def sealed(self) -> bool:
        return bool(self.sealed_by)

    def apply(self, seq: int, header: CommitHeader, data_start: int) -> bool:
        """Fold commit `seq`; `data_start` is where its data section begins in the object.

        Chaining: a commit takes effect only if it names the last effective commit as
        its `prev`, and nothing takes effect after a seal. One that does not (an upload
        built on a view that lost a race, or a fenced broker's in-flight upload) is an
        orphan: its position is used up and it changes nothing.
        """
        if seq != self.seq + 1:
            raise StateError(f"commit out of order expected={self.seq + 1} got={seq}")
        self.seq = seq
        if header.prev_id != self.head_id or self.sealed:
            self.orphans += 1
            return False
        for op in header.ops:
            self._apply_op(seq, op)
        for chunk in header.chunks:
            self._apply_chunk(seq, chunk, data_start)
        self.head_id = header.commit_id
        return True

    def _apply_op(self, seq: int, op: dict[str, Any]) -> None:
        kind = op.get("op")
        if kind == "adopt":
            key = (str(op["topic"]), int(op["partition"]))
            if self.tenures.get(key) == int(op["tenure"]):
                return  # adopted for this tenure already: never reset what grew since
            part = PartitionState.from_json(op)
            part.epochs = record_epoch(part.epochs, int(op["tenure"]), part.committed_end)
            self.partitions[key] = part
            self.tenures[key] = int(op["tenure"])
        elif kind == "adopt_groups":
            slot = int(op["slot"])
            key = (GROUP_SLOTS_TOPIC, slot)
            if self.tenures.get(key) == int(op["tenure"]):
                return
            self.slots.add(slot)
            self.tenures[key] = int(op["tenure"])
            for group, rows in op["groups"].items():
                self.group_offsets[str(group)] = group_from_rows(rows)
            for txn_id, meta in op.get("txns", {}).items():
                self.txns[str(txn_id)] = dict(meta)
            for group, pending in op.get("txn_offsets", {}).items():
                self.txn_offsets[str(group)] = {int(p): dict(v) for p, v in pending.items()}
        elif kind == "txn":
            self.txns[str(op["id"])] = dict(op["meta"])
        elif kind == "txn_offsets":
            pending = self.txn_offsets.setdefault(str(op["group"]), {})
            pid, epoch = int(op["pid"]), int(op["epoch"])
            entry = pending.get(pid)
            if entry is not None and int(entry["epoch"]) > epoch:
                return  # a fenced epoch's late offsets: never the newer transaction's
            if entry is None or int(entry["epoch"]) != epoch:
                entry = pending[pid] = {"epoch": epoch, "offsets": []}
            rows = {(r[0], r[1]): r for r in entry["offsets"]}
            rows.update({(r[0], r[1]): list(r) for r in op["offsets"]})
            entry["offsets"] = list(rows.values())
            entry["ts"] = int(op.get("ts", 0))  # the last staging (absent in old ops)
        elif kind == "txn_offsets_end":
            marker_epoch = int(op["epoch"]) if "epoch" in op else None  # absent in old ops
            self._end_txn_offsets(
                int(op["pid"]), marker_epoch, op["groups"], bool(op["commit"]), int(op["ts"])
            )
        elif kind == "offsets":
            offsets = self.group_offsets.setdefault(str(op["group"]), {})
            ts = int(op["ts"])
            for topic, partition, offset, epoch, metadata in op["offsets"]:
                offsets[(str(topic), int(partition))] = CommittedOffset(
                    int(offset), int(epoch), metadata, ts
                )
        elif kind == "delete_offsets":
            offsets = self.group_offsets.get(str(op["group"]), {})
            for topic, partition in op["partitions"]:
                offsets.pop((str(topic), int(partition)), None)
            if not offsets:
                self.group_offsets.pop(str(op["group"]), None)
        elif kind == "delete_group":
            self.group_offsets.pop(str(op["group"]), None)
        elif kind == "log_start":
            target = self.partitions.get((str(op["topic"]), int(op["partition"])))
            if target is not None:
                target.move_log_start(int(op["offset"]))
        elif kind == "segment":
            target = self.partitions.get((str(op["topic"]), int(op["partition"])))
            if target is not None and target.topic_id == str(op["id"]):
                new = [ChunkRef.from_json(c) for c in op["chunks"]]
                target.replace_chunks(int(op["base"]), int(op["end"]), new)
        elif kind == "cleaned":
            target = self.partitions.get((str(op["topic"]), int(op["partition"])))
            if target is not None and target.topic_id == str(op["id"]):
                target.cleaned_end = max(target.cleaned_end, int(op["offset"]))
        elif kind == "epoch_start":
            key, tenure = (str(op["topic"]), int(op["partition"])), int(op["tenure"])
            target = self.partitions.get(key)
            if target is not None and self.tenures.get(key) == tenure:
                target.epochs = move_epoch_start(target.epochs, tenure, int(op["offset"]))
        elif kind == "seal":
            self.sealed_by, self.sealed_seq = str(op["by"]), seq
        else:
            raise StateError(f"unknown stream op op={kind!r} seq={seq}")

    def _end_txn_offsets(
        self, pid: int, epoch: int | None, groups: Iterable[str], commit: bool, ts: int
    ) -> None:
        """The marker of (pid, epoch): its staged offsets become committed or go. Offsets
        an older epoch staged are dropped either way (a late write of a transaction that
        was aborted); a newer epoch's stay for their own marker."""
        for group in groups:
            pending = self.txn_offsets.get(str(group))
            entry = pending.get(pid) if pending is not None else None
            if entry is None or pending is None:
                continue
            staged = int(entry["epoch"])
            if epoch is not None and staged > epoch:
                continue
            del pending[pid]
            if not pending:
                self.txn_offsets.pop(str(group), None)
            if not commit or (epoch is not None and staged < epoch):
                continue
            offsets = self.group_offsets.setdefault(str(group), {})
            for topic, partition, offset, leader_epoch, metadata in entry["offsets"]:
                offsets[(str(topic), int(partition))] = CommittedOffset(
                    int(offset), int(leader_epoch), metadata, ts
                )

    def _apply_chunk(self, seq: int, chunk: Chunk, data_start: int) -> None:
        part = self.partitions.get((chunk.topic, chunk.partition))
        if part is None or part.topic_id != chunk.topic_id:
            return  # not ours (any more), or the topic was re-created: dead data
        part.add_chunk(
            ChunkRef(
                chunk.base_offset,
                chunk.end_offset,
                chunk.max_timestamp,
                self.stream,
                seq,
                data_start + chunk.position,
                chunk.length,
                chunk.crc,
            )
        )
        for batch in chunk.producers:
            part.producers.record(batch)
        for event in chunk.txns:
            if part.txns.apply(event) and event[2] != BEGIN:
                part.producers.bump_epoch(event[0], event[1])

    # -- snapshots ---------------------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "v": 2,
            "stream": self.stream,
            "seq": self.seq,
            "head": self.head_id,
            "sealed": [self.sealed_by, self.sealed_seq],
            "partitions": [p.to_json() for p in self.partitions.values()],
            "slots": sorted(self.slots),
            "tenures": [[t, p, e] for (t, p), e in self.tenures.items()],
            "groups": {g: group_rows(o) for g, o in self.group_offsets.items()},
            "txns": self.txns,
            "txn_offsets": {
                g: {str(p): v for p, v in e.items()} for g, e in self.txn_offsets.items()
            },
        }

    @classmethod
    def from_snapshot(cls, raw: dict[str, Any]) -> StreamState:
        if raw.get("v") != 2:
            raise StateError(f"unknown stream snapshot version v={raw.get('v')!r}")
        state = cls(stream=str(raw["stream"]), seq=int(raw["seq"]), head_id=str(raw["head"]))
        state.sealed_by, state.sealed_seq = str(raw["sealed"][0]), int(raw["sealed"][1])
        for p in raw["partitions"]:
            part = PartitionState.from_json(p)
            state.partitions[part.key] = part
        state.slots = {int(s) for s in raw["slots"]}
        state.tenures = {(str(t), int(p)): int(e) for t, p, e in raw["tenures"]}
        for group, rows in raw.get("groups", {}).items():
            state.group_offsets[str(group)] = group_from_rows(rows)
        state.txns = {str(t): dict(m) for t, m in raw.get("txns", {}).items()}
        for group, pending in raw.get("txn_offsets", {}).items():
            state.txn_offsets[str(group)] = {int(p): dict(v) for p, v in pending.items()}
        return state
