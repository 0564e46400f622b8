"""The state every broker folds from the commit log: topics, partition indexes, owners.

Owns: the meaning of commit ops and the snapshot document. Pure: no I/O, no clock.
Folding the same commits in the same order always yields the same state, which is what
lets a brand-new broker rebuild everything from the bucket.

Ops (docs/commit-format.md):
    {"op": "claim", "node": N}                        N owns the cluster from this seq on;
                                                      its epoch is the seq of this commit
    {"op": "create_topic", "name", "id", "partitions", "configs"}
    {"op": "delete_topic", "name", "id"}
    {"op": "create_partitions", "name", "id", "count"}
    {"op": "alloc_pids", "node", "count"}            the next `count` producer ids go to
                                                      `node` (recorded in pid_blocks)
    {"op": "offsets", "group", "ts", "offsets": [[topic, partition, offset, leader_epoch,
                                                  metadata], ...]}   committed group offsets
    {"op": "delete_offsets", "group", "partitions": [[topic, partition], ...]}
    {"op": "delete_group", "group"}
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from storage.commit_format import Chunk, CommitHeader
from storage.producer_state import ProducerStates


class StateError(Exception):
    """A commit or snapshot contradicts the state it is applied to."""


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """Where one committed run of a partition's batches lives in the bucket."""

    base_offset: int
    end_offset: int
    max_timestamp: int
    commit_seq: int
    position: int  # absolute byte position inside the commit object
    length: int
    crc: int

    def to_json(self) -> list[int]:
        return [
            self.base_offset,
            self.end_offset,
            self.max_timestamp,
            self.commit_seq,
            self.position,
            self.length,
            self.crc,
        ]

    @classmethod
    def from_json(cls, raw: list[int]) -> ChunkRef:
        return cls(*(int(v) for v in raw))


@dataclass(slots=True)
class PartitionState:
    topic_id: str
    topic: str
    partition: int
    chunks: list[ChunkRef] = field(default_factory=list)
    committed_end: int = 0
    log_start: int = 0
    producers: ProducerStates = field(default_factory=ProducerStates)

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
        """The committed chunk holding `offset`, if any."""
        i = bisect_right(self.chunks, offset, key=lambda c: c.base_offset) - 1
        if i >= 0 and self.chunks[i].base_offset <= offset < self.chunks[i].end_offset:
            return self.chunks[i]
        return None


@dataclass(slots=True)
class TopicState:
    name: str
    topic_id: str
    partitions: int
    configs: dict[str, str]


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str | None
    commit_timestamp: int

    def to_json(self) -> list[Any]:
        return [self.offset, self.leader_epoch, self.metadata, self.commit_timestamp]


@dataclass(slots=True)
class ClusterState:
    seq: int = -1  # last folded commit
    topics: dict[str, TopicState] = field(default_factory=dict)
    partitions: dict[tuple[str, int], PartitionState] = field(default_factory=dict)
    next_producer_id: int = 1000
    owner_node: int = -1
    owner_epoch: int = -1
    pid_blocks: dict[int, tuple[int, int]] = field(default_factory=dict)
    head_id: str = ""  # id of the last commit that took effect
    orphans: int = 0
    group_offsets: dict[str, dict[tuple[str, int], CommittedOffset]] = field(default_factory=dict)

    def apply(self, seq: int, header: CommitHeader, data_start: int) -> bool:
        """Fold commit `seq`; `data_start` is where its data section begins in the object.

        Chaining: a commit takes effect only if it names the last effective commit as
        its `prev`. One that does not (an upload built on a view that lost a race, or a
        replaced broker's in-flight upload) is an orphan: its position is used up and
        it changes nothing. Returns whether it took effect.
        """
        if seq != self.seq + 1:
            raise StateError(f"commit out of order expected={self.seq + 1} got={seq}")
        self.seq = seq
        if header.prev_id != self.head_id:
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
        if kind == "claim":
            self.owner_node, self.owner_epoch = int(op["node"]), seq
        elif kind == "create_topic":
            self._create_topic(op)
        elif kind == "delete_topic":
            topic = self.topics.get(op["name"])
            if topic is not None and topic.topic_id == op["id"]:
                del self.topics[topic.name]
                for p in range(topic.partitions):
                    self.partitions.pop((topic.name, p), None)
        elif kind == "create_partitions":
            topic = self.topics.get(op["name"])
            if topic is not None and topic.topic_id == op["id"]:
                for p in range(topic.partitions, int(op["count"])):
                    self.partitions[(topic.name, p)] = PartitionState(topic.topic_id, topic.name, p)
                topic.partitions = max(topic.partitions, int(op["count"]))
        elif kind == "alloc_pids":
            count = int(op["count"])
            self.pid_blocks[int(op["node"])] = (self.next_producer_id, count)
            self.next_producer_id += count
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
        else:
            raise StateError(f"unknown commit op op={kind!r} seq={seq}")

    def _create_topic(self, op: dict[str, Any]) -> None:
        name = str(op["name"])
        if name in self.topics:
            return  # a lost race: the first create wins, later ones are no-ops
        topic = TopicState(name, str(op["id"]), int(op["partitions"]), dict(op.get("configs", {})))
        self.topics[name] = topic
        for p in range(topic.partitions):
            self.partitions[(name, p)] = PartitionState(topic.topic_id, name, p)

    def _apply_chunk(self, seq: int, chunk: Chunk, data_start: int) -> None:
        part = self.partitions.get((chunk.topic, chunk.partition))
        if part is None or part.topic_id != chunk.topic_id:
            return  # the topic was deleted (or re-created) since: its data is dead
        part.add_chunk(
            ChunkRef(
                chunk.base_offset,
                chunk.end_offset,
                chunk.max_timestamp,
                seq,
                data_start + chunk.position,
                chunk.length,
                chunk.crc,
            )
        )
        for batch in chunk.producers:
            part.producers.record(batch)

    # -- snapshots ---------------------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "v": 1,
            "seq": self.seq,
            "next_pid": self.next_producer_id,
            "owner": [self.owner_node, self.owner_epoch],
            "head": self.head_id,
            "topics": [
                {"name": t.name, "id": t.topic_id, "partitions": t.partitions, "configs": t.configs}
                for t in self.topics.values()
            ],
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "end": p.committed_end,
                    "start": p.log_start,
                    "chunks": [c.to_json() for c in p.chunks],
                    "producers": p.producers.snapshot(),
                }
                for p in self.partitions.values()
            ],
            "groups": {
                group: [[t, p, *c.to_json()] for (t, p), c in offsets.items()]
                for group, offsets in self.group_offsets.items()
            },
        }

    @classmethod
    def from_snapshot(cls, raw: dict[str, Any]) -> ClusterState:
        if raw.get("v") != 1:
            raise StateError(f"unknown snapshot version v={raw.get('v')!r}")
        state = cls(seq=int(raw["seq"]), next_producer_id=int(raw["next_pid"]))
        state.owner_node, state.owner_epoch = (int(v) for v in raw["owner"])
        state.head_id = str(raw["head"])
        for t in raw["topics"]:
            state._create_topic({**t, "op": "create_topic"})
        for p in raw["partitions"]:
            part = state.partitions[(p["topic"], int(p["partition"]))]
            part.chunks = [ChunkRef.from_json(c) for c in p["chunks"]]
            part.committed_end = int(p["end"])
            part.log_start = int(p["start"])
            part.producers.restore(p["producers"])
        for group, rows in raw.get("groups", {}).items():
            state.group_offsets[group] = {
                (str(t), int(p)): CommittedOffset(int(o), int(e), m, int(ts))
                for t, p, o, e, m, ts in rows
            }
        return state
