"""The state folded from the metadata log: topics, live brokers and who owns what.

Owns: the meaning of metadata ops and the metadata snapshot document. Pure: no I/O,
no clock. Every broker folds the same commits in the same order to the same state.

Ops (docs/commit-format.md):
    {"op": "join", "node", "host", "port", "durability", "session_timeout_ms",
     "listeners"?: [[name, host, port], ...]}
                                              a broker incarnation joins; its epoch is the
                                              seq of this commit, its stream
                                              `paths.stream_id(node, epoch)`
    {"op": "leave", "stream", "seal_seq"}     a clean shutdown: the broker sealed its own
                                              stream at `seal_seq`
    {"op": "fence", "stream", "seal_seq"}     the stream was sealed by the writer: its
                                              broker is out of the cluster for good
    {"op": "assign", "owners": [[topic, partition, to, from, from_seq], ...]}
                                              compare-and-set: each row takes effect
                                              only if `from` still owns the key
    {"op": "create_topic", "name", "id", "partitions", "configs"}
    {"op": "delete_topic", "name", "id"}
    {"op": "create_partitions", "name", "id", "count"}
    {"op": "alter_configs", "name", "id", "configs"}
                                              the topic's whole override set becomes
                                              `configs`, if `id` is still the topic's
    {"op": "cluster_configs", "configs"}      the cluster's whole set of dynamic topic
                                              config defaults (broker names such as
                                              `log.retention.ms`) becomes `configs`
    {"op": "broker_configs", "node", "configs"}
                                              broker `node`'s whole set of per-broker
                                              dynamic configs becomes `configs`
    {"op": "alloc_pids", "node", "count"}    the next `count` producer ids go to `node`
    {"op": "probe", "node"}                   a broker about to start as `node` asks any
                                              live incarnation of `node` to commit at once
                                              (docs/cluster.md, "One broker per node id")

Fencing: a commit whose writer (node, epoch) is not a member when it is folded takes
no effect (a fenced broker's late write), except a commit of `join` and `probe` ops
alone (they come from brokers that are not members yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tidelog.storage import paths
from tidelog.storage.commit_format import CommitHeader
from tidelog.storage.stream_state import GROUP_SLOTS_TOPIC, PartitionKey, StateError

# Group coordination is spread over this many slots, owned like partitions (Kafka's
# __consumer_offsets partitions): a group's coordinator is the owner of its slot. The
# name is never a user topic's (storage/log_store.py INTERNAL_TOPICS): its keys are these.
GROUP_TOPIC = GROUP_SLOTS_TOPIC
GROUP_SLOTS = 16


@dataclass(slots=True)
class TopicState:
    name: str
    topic_id: str
    partitions: int
    configs: dict[str, str]


@dataclass(frozen=True, slots=True)
class Member:
    node: int
    epoch: int
    host: str
    port: int
    durability: str = "wal"
    session_timeout_ms: int = 6000  # also its lease: how long it may ack without a commit
    # Its advertised listeners (name, host, port); empty for a broker that named only
    # host and port (it then has one listener, whatever a client connected to).
    listeners: tuple[tuple[str, str, int], ...] = ()

    @property
    def stream(self) -> str:
        return paths.stream_id(self.node, self.epoch)

    def address(self, listener: str) -> tuple[str, int] | None:
        """Where a client of listener `listener` reaches this broker; None if it has
        no listener of that name."""
        if not self.listeners:
            return self.host, self.port
        for name, host, port in self.listeners:
            if name == listener:
                return host, port
        return None


@dataclass(frozen=True, slots=True)
class Source:
    """Where a key's state was before: a stream, how far to read it, and which tenure
    (the owner `seq` of that assignment) the state there must have been adopted for."""

    stream: str
    read_to: int
    tenure: int


@dataclass(frozen=True, slots=True)
class Owner:
    stream: str
    seq: int  # the metadata seq of this assignment: the tenure (and the leader epoch)
    # Newest first. An owner that never adopted the key (it died first) never wrote to
    # it, so the adopter falls back to the next source. Empty for a brand-new key.
    sources: tuple[Source, ...] = ()


_MAX_SOURCES = 4
_OPEN_OPS = frozenset({"join", "probe"})  # taken from writers that are not members


@dataclass(slots=True)
class MetaState:
    seq: int = -1
    head_id: str = ""
    orphans: int = 0
    rejected: int = 0  # commits by writers that were no longer members
    topics: dict[str, TopicState] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    owners: dict[PartitionKey, Owner] = field(default_factory=dict)
    ended: dict[str, int] = field(default_factory=dict)  # stream -> its seal seq
    next_producer_id: int = 1000
    pid_blocks: dict[int, tuple[int, int]] = field(default_factory=dict)
    probes: dict[int, int] = field(default_factory=dict)  # node -> seq of its last probe
    # Kafka's `--entity-default` broker configs, as stored (storage/cluster_defaults.py).
    cluster_configs: dict[str, str] = field(default_factory=dict)
    # Per-broker dynamic configs by node id, as stored (storage/broker_configs.py).
    broker_configs: dict[int, dict[str, str]] = field(default_factory=dict)

    def apply(self, seq: int, header: CommitHeader, data_start: int) -> bool:
        """Fold commit `seq`; see storage/stream_state.py for chaining. Returns whether
        it took effect."""
        if seq != self.seq + 1:
            raise StateError(f"commit out of order expected={self.seq + 1} got={seq}")
        self.seq = seq
        if header.prev_id != self.head_id:
            self.orphans += 1
            return False
        from_outside = all(op.get("op") in _OPEN_OPS for op in header.ops)
        if not from_outside and not self.is_member(header.node_id, header.epoch):
            self.rejected += 1
            self.head_id = header.commit_id  # it chained: the position is used
            return False
        for op in header.ops:
            self._apply_op(seq, op)
        self.head_id = header.commit_id
        return True

    def is_member(self, node: int, epoch: int) -> bool:
        return epoch >= 0 and paths.stream_id(node, epoch) in self.members

    def _apply_op(self, seq: int, op: dict[str, Any]) -> None:
        kind = op.get("op")
        if kind == "join":
            member = Member(
                int(op["node"]),
                seq,
                str(op["host"]),
                int(op["port"]),
                str(op["durability"]),
                int(op["session_timeout_ms"]),
                _listeners(op.get("listeners", ())),
            )
            self.members[member.stream] = member
        elif kind in ("leave", "fence"):
            stream = str(op["stream"])
            self.members.pop(stream, None)
            self.ended[stream] = int(op["seal_seq"])
        elif kind == "assign":
            for topic, partition, to, frm, from_seq in op["owners"]:
                key = (str(topic), int(partition))
                current = self.owners.get(key)
                if (current.stream if current else "") != frm or not self._exists(key):
                    continue  # a lost race: someone moved it first
                sources: tuple[Source, ...] = ()
                if current is not None:
                    latest = Source(current.stream, int(from_seq), current.seq)
                    sources = (latest, *current.sources)[:_MAX_SOURCES]
                self.owners[key] = Owner(str(to), seq, sources)
        elif kind == "create_topic":
            self._create_topic(op)
        elif kind == "delete_topic":
            topic = self.topics.get(op["name"])
            if topic is not None and topic.topic_id == op["id"]:
                del self.topics[topic.name]
                for p in range(topic.partitions):
                    self.owners.pop((topic.name, p), None)
        elif kind == "create_partitions":
            topic = self.topics.get(op["name"])
            if topic is not None and topic.topic_id == op["id"]:
                topic.partitions = max(topic.partitions, int(op["count"]))
        elif kind == "alter_configs":
            topic = self.topics.get(op["name"])
            if topic is not None and topic.topic_id == op["id"]:
                topic.configs = dict(op["configs"])
        elif kind == "cluster_configs":
            self.cluster_configs = dict(op["configs"])
        elif kind == "broker_configs":
            configs = {str(k): str(v) for k, v in op["configs"].items()}
            if configs:
                self.broker_configs[int(op["node"])] = configs
            else:
                self.broker_configs.pop(int(op["node"]), None)
        elif kind == "alloc_pids":
            count = int(op["count"])
            self.pid_blocks[int(op["node"])] = (self.next_producer_id, count)
            self.next_producer_id += count
        elif kind == "probe":
            self.probes[int(op["node"])] = seq
        else:
            raise StateError(f"unknown metadata op op={kind!r} seq={seq}")

    def _exists(self, key: PartitionKey) -> bool:
        topic, partition = key
        if topic == GROUP_TOPIC:
            return 0 <= partition < GROUP_SLOTS
        state = self.topics.get(topic)
        return state is not None and 0 <= partition < state.partitions

    def _create_topic(self, op: dict[str, Any]) -> None:
        name = str(op["name"])
        if name in self.topics:
            return  # a lost race: the first create wins, later ones are no-ops
        self.topics[name] = TopicState(
            name, str(op["id"]), int(op["partitions"]), dict(op.get("configs", {}))
        )

    def all_keys(self) -> list[PartitionKey]:
        """Every ownable key: each topic partition and each group slot."""
        keys = [(t.name, p) for t in self.topics.values() for p in range(t.partitions)]
        keys += [(GROUP_TOPIC, s) for s in range(GROUP_SLOTS)]
        return keys

    def owner_of(self, key: PartitionKey) -> Member | None:
        """The live broker owning `key`, or None (unowned, or its owner is gone)."""
        owner = self.owners.get(key)
        return self.members.get(owner.stream) if owner is not None else None

    # -- snapshots ---------------------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        # v3 only with cluster defaults: a broker that knows v2 alone must not read such
        # a snapshot as if they were unset (it skips it and folds the log, where it
        # stops at the op it does not know). Without them, v2 is what it was.
        # Likewise v4 only with per-broker configs, which a v3 broker does not know.
        extra: dict[str, Any] = {}
        if self.cluster_configs:
            extra["cluster_configs"] = self.cluster_configs
        if self.broker_configs:
            extra["broker_configs"] = [[n, c] for n, c in self.broker_configs.items()]
        return {
            "v": 4 if self.broker_configs else 3 if extra else 2,
            **extra,
            "seq": self.seq,
            "head": self.head_id,
            "next_pid": self.next_producer_id,
            "pid_blocks": [[n, s, c] for n, (s, c) in self.pid_blocks.items()],
            "topics": [
                {"name": t.name, "id": t.topic_id, "partitions": t.partitions, "configs": t.configs}
                for t in self.topics.values()
            ],
            "members": [
                [
                    m.node,
                    m.epoch,
                    m.host,
                    m.port,
                    m.durability,
                    m.session_timeout_ms,
                    [list(x) for x in m.listeners],
                ]
                for m in self.members.values()
            ],
            "owners": [
                [t, p, o.stream, o.seq, [[x.stream, x.read_to, x.tenure] for x in o.sources]]
                for (t, p), o in self.owners.items()
            ],
            "ended": self.ended,
            "probes": [[n, s] for n, s in self.probes.items()],
        }

    @classmethod
    def from_snapshot(cls, raw: dict[str, Any]) -> MetaState:
        if raw.get("v") not in (2, 3, 4):
            raise StateError(f"unknown metadata snapshot version v={raw.get('v')!r}")
        state = cls(seq=int(raw["seq"]), head_id=str(raw["head"]))
        state.next_producer_id = int(raw["next_pid"])
        state.pid_blocks = {int(n): (int(s), int(c)) for n, s, c in raw["pid_blocks"]}
        for t in raw["topics"]:
            state._create_topic(t)
        for node, epoch, host, port, durability, timeout, *rest in raw["members"]:
            member = Member(
                int(node),
                int(epoch),
                str(host),
                int(port),
                str(durability),
                int(timeout),
                _listeners(rest[0] if rest else ()),
            )
            state.members[member.stream] = member
        for t, p, stream, seq, sources in raw["owners"]:
            state.owners[(str(t), int(p))] = Owner(
                str(stream), int(seq), tuple(Source(str(x), int(r), int(e)) for x, r, e in sources)
            )
        state.ended = {str(k): int(v) for k, v in raw["ended"].items()}
        state.probes = {int(n): int(s) for n, s in raw.get("probes", [])}
        state.cluster_configs = {str(k): str(v) for k, v in raw.get("cluster_configs", {}).items()}
        state.broker_configs = {
            int(n): {str(k): str(v) for k, v in c.items()} for n, c in raw.get("broker_configs", [])
        }
        return state


def _listeners(raw: Any) -> tuple[tuple[str, str, int], ...]:
    return tuple((str(name), str(host), int(port)) for name, host, port in raw)
