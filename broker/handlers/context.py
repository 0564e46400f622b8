"""What a handler may ask of the broker it runs in: the `Node` protocol.

Owns: the list of everything handlers use, by role (the cluster view, the topic
catalog, partition data, groups), each named for what it means to a Kafka API rather
than for where it is kept. `broker/node.py` `BrokerNode` is the implementation; tests
may pass anything that has these members. Handlers import this module, never the
node or the server, so the handler package depends on nothing that depends on it.

Guarantees (of any implementation): failures a client should hear as a Kafka error
code raise `StoreError` carrying that code; reads here never wait on the network
unless they are `async`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import uuid

    from tidelog.broker.config import ServeConfig
    from tidelog.broker.groups.events import Effect, Event
    from tidelog.broker.groups.model import Group
    from tidelog.broker.security.acl import AclBinding, AclFilter
    from tidelog.broker.transactions.coordinator import TxnCoordinator
    from tidelog.protocol.errors import ErrorCode
    from tidelog.storage.log_reader import ReadResult
    from tidelog.storage.log_store import PendingAppend
    from tidelog.storage.meta_state import Member, TopicState
    from tidelog.storage.partition_log import PartitionLog
    from tidelog.storage.stream_state import CommittedOffset
    from tidelog.storage.topic_config import ConfigBuild

PartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PartitionLeader:
    """Who leads a partition: a broker id, and its tenure as Kafka's leader epoch."""

    node_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class ActiveProducer:
    """A producer id a partition we lead holds state for, as DescribeProducers reports it.

    -1 means unknown: `last_sequence` before the producer's first cached batch (its epoch
    was only bumped by a marker), `txn_start_offset` when it has no open transaction here.
    """

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    txn_start_offset: int


class ClusterView(Protocol):
    """Who this broker is, who else is there, and who owns what."""

    @property
    def node_id(self) -> int: ...
    @property
    def cluster_id(self) -> str: ...
    @property
    def config(self) -> ServeConfig: ...
    @property
    def stopping(self) -> bool:
        """Shutdown has begun: long polls answer now."""
        ...

    def api_ranges(self) -> list[tuple[int, int, int]]:
        """(api_key, min_version, max_version) of every handler, as ApiVersions lists them."""
        ...

    def live_brokers(self) -> list[Member]: ...
    def controller_id(self) -> int: ...
    def partition_leader(self, topic: str, partition: int) -> PartitionLeader | None:
        """The live owner of the partition, or None while it is between owners."""
        ...

    def coordinates(self, group_id: str) -> bool:
        """Whether this broker is the group's coordinator now."""
        ...

    def coordinator_of(self, group_id: str) -> Member | None: ...
    async def fresh_metadata(self) -> None:
        """Fold the cluster's metadata log if the view is older than a moment."""
        ...


class TopicCatalog(Protocol):
    """Topics: which exist, and creating, growing and deleting them."""

    def topic(self, name: str) -> TopicState | None: ...
    def topics(self) -> Mapping[str, TopicState]: ...
    def topic_name(self, topic_id: uuid.UUID) -> str | None:
        """The name of the topic with this id, or None if there is none."""
        ...

    def partition_exists(self, key: PartitionKey) -> bool: ...
    def check_new_topic(
        self, name: str, partitions: int, configs: Mapping[str, str | None], *, planned: int
    ) -> dict[str, str]: ...
    async def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str | None]
    ) -> TopicState: ...
    async def ensure_topic(self, name: str) -> TopicState | None:
        """The topic, auto-created if the broker allows it; None if it does not exist."""
        ...

    async def delete_topic(self, name: str) -> None: ...
    def check_new_partitions(self, name: str, count: int, *, planned: int) -> TopicState: ...
    async def create_partitions(self, name: str, count: int) -> None: ...
    def check_topic_configs(self, name: str, build: ConfigBuild) -> dict[str, str]:
        """The topic's new override set, `build(overrides in force)` checked; nothing
        changes. Raises StoreError with Kafka's code."""
        ...

    async def alter_topic_configs(self, name: str, build: ConfigBuild) -> dict[str, str]:
        """Make `build(overrides in force)` the topic's override set, checked, in the
        metadata log (every broker of the cluster folds it); returns the set in force."""
        ...

    def cluster_defaults(self) -> dict[str, str]:
        """The cluster's dynamic defaults of topic configs in force, by topic config name."""
        ...

    def check_cluster_configs(self, build: ConfigBuild) -> dict[str, str]:
        """The cluster's new defaults (broker names), `build(defaults in force)` checked;
        nothing changes. Raises StoreError with Kafka's code."""
        ...

    async def alter_cluster_configs(self, build: ConfigBuild) -> dict[str, str]:
        """Make `build(defaults in force)` the cluster's defaults, checked, in the metadata
        log (every broker of the cluster folds it); returns the set in force."""
        ...

    def broker_dynamic_configs(self) -> dict[str, str]:
        """This broker's per-broker dynamic configs in force (storage/broker_configs.py)."""
        ...

    def check_broker_configs(self, build: ConfigBuild) -> dict[str, str]:
        """This broker's new per-broker configs, `build(set in force)` checked; nothing
        changes. Raises StoreError with Kafka's code."""
        ...

    async def alter_broker_configs(self, build: ConfigBuild) -> dict[str, str]:
        """Make `build(set in force)` this broker's per-broker configs, checked, in the
        metadata log; returns the set in force."""
        ...


class PartitionData(Protocol):
    """Records in the partitions this broker leads, and producer ids."""

    def partition(self, topic: str, partition: int) -> PartitionLog:
        """The partition's log if this broker leads it; raises StoreError otherwise."""
        ...

    def partition_log(self, topic: str, partition: int) -> PartitionLog | None:
        """The partition's log if this broker holds it, else None; never raises."""
        ...

    async def delete_records(self, topic: str, partition: int, offset: int) -> int:
        """Move the log start offset up to `offset` (-1: the high watermark); the new
        log start once it is in the bucket. Raises StoreError with Kafka's code."""
        ...

    def append_nowait(
        self,
        topic: str,
        partition: int,
        records: bytes | bytearray | memoryview,
        *,
        txn_verified: bool = False,
    ) -> PendingAppend: ...
    async def read(
        self, topic: str, partition: int, offset: int, max_bytes: int, *, committed: bool = False
    ) -> ReadResult:
        """`committed` (read_committed): only below the last stable offset, with the
        aborted transactions of what is returned."""
        ...

    def prefetch(self, topic: str, partition: int, offset: int) -> None: ...
    async def wait_for_data(self, keys: Sequence[PartitionKey], timeout: float) -> None: ...
    async def offset_for_timestamp(
        self, topic: str, partition: int, timestamp: int
    ) -> tuple[int, int]: ...
    async def max_timestamp_offset(self, topic: str, partition: int) -> tuple[int, int]: ...
    async def allocate_producer_id(self) -> int: ...
    def producers(self, topic: str, partition: int) -> list[ActiveProducer]:
        """The producers of a partition we lead, by producer id (read-only); raises
        StoreError (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION) otherwise."""
        ...


class GroupState(Protocol):
    """Consumer groups: the live ones (the coordinator) and their committed offsets."""

    async def group_call(self, group_id: str, make_event: Callable[[int], Event]) -> Effect:
        """Hand the coordinator an event built for a fresh token; await its answer."""
        ...

    def live_group(self, group_id: str) -> Group | None: ...
    def live_group_ids(self) -> Iterable[str]: ...
    def committed_offsets(self, group_id: str) -> Mapping[PartitionKey, CommittedOffset]: ...
    def groups_with_offsets(self) -> list[str]: ...
    def unstable_offsets(self, group_id: str) -> frozenset[PartitionKey]:
        """Partitions with offsets staged by a transaction whose marker has not ended
        them yet (OffsetFetch's require_stable answers UNSTABLE_OFFSET_COMMIT there)."""
        ...

    async def commit_offsets(
        self, group_id: str, offsets: Sequence[tuple[str, int, int, int, str | None]]
    ) -> None: ...
    async def delete_offsets(self, group_id: str, partitions: Sequence[PartitionKey]) -> None: ...
    async def delete_group_offsets(self, group_id: str) -> None: ...


class TransactionState(Protocol):
    """Transactions: the coordinator (when the id's slot is ours), verification for
    partition leaders, staged offsets and markers (docs/transactions.md)."""

    @property
    def txn_coordinator(self) -> TxnCoordinator: ...
    def coordinates_txn(self, transactional_id: str) -> bool: ...
    def now_ms(self) -> int:
        """The coordinator's clock: what transaction start times are measured on."""
        ...

    def txn_gate(self, producer_id: int) -> AbstractAsyncContextManager[None]:
        """Held while a producer's request waits for a remote verification: the
        producer's later requests queue behind it, so appends keep arrival order."""
        ...

    async def verify_txn(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Sequence[PartitionKey],
    ) -> dict[PartitionKey, ErrorCode]:
        """Per partition, whether it is in the producer's open transaction (none: yes).
        Answers without waiting when this broker is the coordinator."""
        ...

    def verify_txn_here(
        self, transactional_id: str, producer_id: int, producer_epoch: int, key: PartitionKey
    ) -> ErrorCode:
        """The coordinator's answer for one partition, `__consumer_offsets` N meaning the
        transaction's consumer groups of slot N (a group coordinator elsewhere asks so)."""
        ...

    async def stage_txn_offsets(
        self,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        offsets: Sequence[tuple[str, int, int, int, str | None]],
    ) -> None: ...
    async def write_txn_marker(
        self,
        topic: str,
        partition: int,
        *,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
    ) -> ErrorCode:
        """A marker into a partition we lead (`__consumer_offsets` N: the groups of slot
        N we coordinate), durable before it returns."""
        ...


class Traffic(Protocol):
    """Where handlers count the record bytes they move (broker/observability/metrics.py)."""

    def bytes_in(self, topic: str, size: int) -> None: ...
    def bytes_out(self, topic: str, size: int) -> None: ...


class SecurityView(Protocol):
    """Identity and permission (broker/security/state.py `BrokerSecurity`)."""

    @property
    def doc(self) -> dict[str, Any]:
        """The security document as this broker last read it (users, ACLs)."""
        ...

    async def refresh(self) -> bool:
        """Read the document again if it changed in the bucket."""
        ...

    async def change(self, edit: Callable[[dict[str, Any]], Any]) -> Any:
        """Apply `edit` to the newest document and store it (one conditional write)."""
        ...

    @property
    def enabled(self) -> bool:
        """Whether `--authorizer acl` is on (off: `authorize` always allows)."""
        ...

    async def acls(self) -> list[AclBinding]:
        """The ACLs in force on this broker (the security document's)."""
        ...

    async def create_acls(self, bindings: list[AclBinding]) -> None:
        """Add validated bindings to the document in the bucket."""
        ...

    async def delete_acls(self, filters: list[AclFilter]) -> list[list[AclBinding]]:
        """Remove every binding a filter matches; per filter, what it matched."""
        ...

    def authorize(
        self, principal: str, host: str, operation: int, resource_type: int, name: str
    ) -> bool:
        """Whether `principal` from `host` may do Kafka AclOperation `operation` on the
        resource (Kafka ResourceType `resource_type`, `name`)."""
        ...


class SaslSessionView(Protocol):
    """One connection's SASL state (broker/security/sasl.py `SaslSession`)."""

    @property
    def mechanisms(self) -> tuple[str, ...]: ...
    @property
    def raw_tokens(self) -> bool: ...
    def handshake(self, mechanism: str, version: int) -> ErrorCode:
        """Choose the mechanism: NONE, UNSUPPORTED_SASL_MECHANISM or ILLEGAL_SASL_STATE."""
        ...

    def authenticate(self, token: bytes) -> tuple[bytes, str | None]:
        """The server's next token, and why authentication failed (None: it did not;
        else the connection closes once the answer is sent)."""
        ...


class Node(ClusterView, TopicCatalog, PartitionData, GroupState, TransactionState, Protocol):
    """Everything handlers use; `BrokerNode` has all of it."""

    @property
    def traffic(self) -> Traffic: ...
    @property
    def security(self) -> SecurityView: ...
