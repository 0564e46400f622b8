"""The admin client's transaction queries: who to ask, and what they answer.

Owns: `TxnAdminClient`, the admin client (broker/admin/client.py) grown by the
questions `tidelog transactions` asks, each returning plain frozen dataclasses:

    Metadata v12 (the brokers; a partition's leader), FindCoordinator v4 key_type 1,
    ListTransactions v1, DescribeTransactions v0, DescribeProducers v0

Guarantees: as the admin client's: an unreachable broker or a broken conversation
raises `AdminConnectionError`, a Kafka error code `AdminError` naming it and the
thing asked about. Which broker to ask is the caller's choice: these ask the broker
this client is connected to, and `address` gives the HOST:PORT of another to connect
to. DescribeTransactions' start time is -1 when no transaction is open (Kafka's none).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tidelog.broker.admin.client import AdminClient, AdminError
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.messages import build, request_module

__all__ = [
    "ActiveProducer",
    "Broker",
    "TxnAdminClient",
    "TxnDescription",
    "TxnListing",
    "address",
]

METADATA, FIND_COORDINATOR, DESCRIBE_PRODUCERS, DESCRIBE_TXNS, LIST_TXNS = 3, 10, 61, 65, 66
_VERSIONS = {METADATA: 12, FIND_COORDINATOR: 4, DESCRIBE_PRODUCERS: 0, DESCRIBE_TXNS: 0,
             LIST_TXNS: 1}  # fmt: skip
_TRANSACTION_KEY = 1  # FindCoordinator key_type


@dataclass(frozen=True)
class Broker:
    node_id: int
    host: str
    port: int


def address(broker: Broker) -> str:
    """HOST:PORT to connect to `broker` (an IPv6 host in brackets)."""
    host = f"[{broker.host}]" if ":" in broker.host else broker.host
    return f"{host}:{broker.port}"


@dataclass(frozen=True)
class TxnListing:
    transactional_id: str
    producer_id: int
    state: str


@dataclass(frozen=True)
class TxnDescription:
    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    start_ms: int  # -1: no transaction open
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ActiveProducer:
    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int  # -1: unknown
    coordinator_epoch: int
    txn_start_offset: int  # -1: no open transaction in this partition


def _request(api_key: int, class_name: str, **fields: Any) -> Any:
    return build(request_module(api_key, _VERSIONS[api_key]), class_name, **fields)


def _check(code: int, what: str) -> None:
    if code != ErrorCode.none:
        name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else "unknown"
        raise AdminError(f"{what} failed error={name} code={code}", code)


class TxnAdminClient(AdminClient):
    """One blocking connection to one broker; use as a context manager."""

    def __enter__(self) -> TxnAdminClient:
        return self

    def brokers(self) -> list[Broker]:
        """Every live broker, by node id (Metadata, no topics)."""
        response = self.call(_metadata(topics=()))
        return sorted(
            (Broker(b.node_id, b.host, b.port) for b in response.brokers),
            key=lambda b: b.node_id,
        )

    def partition_leader(self, topic: str, partition: int) -> Broker:
        """The broker leading (topic, partition), from Metadata."""
        what = f"metadata topic={topic} partition={partition}"
        response = self.call(_metadata(topics=(topic,)))
        (answer,) = response.topics
        _check(answer.error_code, what)
        found = [p for p in answer.partitions if p.partition_index == partition]
        if not found:
            _check(ErrorCode.unknown_topic_or_partition, what)
        _check(found[0].error_code, what)
        by_id = {b.node_id: Broker(b.node_id, b.host, b.port) for b in response.brokers}
        leader = by_id.get(found[0].leader_id)
        if leader is None:
            _check(ErrorCode.leader_not_available, what)
        assert leader is not None
        return leader

    def transaction_coordinator(self, transactional_id: str) -> Broker:
        request = _request(
            FIND_COORDINATOR,
            "FindCoordinatorRequest",
            key_type=_TRANSACTION_KEY,
            coordinator_keys=(transactional_id,),
        )
        (found,) = self.call(request).coordinators
        _check(found.error_code, f"find coordinator transactional_id={transactional_id}")
        return Broker(found.node_id, found.host, found.port)

    def list_transactions(
        self,
        states: Iterable[str] = (),
        producer_ids: Iterable[int] = (),
        duration_ms: int = -1,
    ) -> list[TxnListing]:
        """The transactions this broker coordinates that pass every filter given."""
        request = _request(
            LIST_TXNS,
            "ListTransactionsRequest",
            state_filters=tuple(states),
            producer_id_filters=tuple(producer_ids),
            duration_filter=duration_ms,
        )
        response = self.call(request)
        _check(response.error_code, "list transactions")
        if response.unknown_state_filters:
            unknown = ",".join(response.unknown_state_filters)
            raise AdminError(f"list transactions: unknown states={unknown}", 0)
        return sorted(
            (
                TxnListing(s.transactional_id, int(s.producer_id), s.transaction_state)
                for s in response.transaction_states
            ),
            key=lambda t: t.transactional_id,
        )

    def describe_transaction(self, transactional_id: str) -> TxnDescription:
        request = _request(
            DESCRIBE_TXNS, "DescribeTransactionsRequest", transactional_ids=(transactional_id,)
        )
        (s,) = self.call(request).transaction_states
        _check(s.error_code, f"describe transactional_id={transactional_id}")
        return TxnDescription(
            transactional_id=s.transactional_id,
            state=s.transaction_state,
            producer_id=int(s.producer_id),
            producer_epoch=int(s.producer_epoch),
            timeout_ms=round(s.transaction_timeout.total_seconds() * 1000),
            start_ms=int(s.transaction_start_time),
            partitions=tuple(sorted((t.topic, int(p)) for t in s.topics for p in t.partitions)),
        )

    def describe_producers(self, topic: str, partition: int) -> list[ActiveProducer]:
        mod = request_module(DESCRIBE_PRODUCERS, _VERSIONS[DESCRIBE_PRODUCERS])
        wanted = build(mod, "TopicRequest", name=topic, partition_indexes=(partition,))
        response = self.call(build(mod, "DescribeProducersRequest", topics=(wanted,)))
        (answer,) = response.topics[0].partitions
        _check(answer.error_code, f"describe producers topic={topic} partition={partition}")
        return [
            ActiveProducer(
                int(p.producer_id),
                int(p.producer_epoch),
                int(p.last_sequence),
                int(p.last_timestamp),
                int(p.coordinator_epoch),
                int(p.current_txn_start_offset),
            )
            for p in answer.active_producers
        ]


def _metadata(topics: tuple[str, ...]) -> Any:
    mod = request_module(METADATA, _VERSIONS[METADATA])
    return build(
        mod,
        "MetadataRequest",
        topics=tuple(build(mod, "MetadataRequestTopic", topic_id=None, name=t) for t in topics),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
