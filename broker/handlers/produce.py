"""Produce (0) v3-11: append each partition's record batch, answer once all are durable.

A transactional batch that would open its producer's transaction in a partition is
appended only once the transaction coordinator confirmed the partition is in that
transaction (KIP-890 part 1: a late or retried write of an ended transaction can
never open a new one; docs/transactions.md).

Every partition is appended before anything is awaited, so the partitions of one
request (and the requests pipelined behind it) share one WAL fsync or one upload.
acks=0 requests get no response, as in Kafka.

A partition answered with an error stores nothing: every check runs before its batch
is added, and a partition that fails unexpectedly is answered UNKNOWN_SERVER_ERROR on
its own (as Kafka does), never by dropping the connection with the other partitions'
batches already appended and their clients told nothing.

From v10 a partition answered NOT_LEADER_OR_FOLLOWER carries its current leader and the
response that leader's address (KIP-951, broker/handlers/leader_hints.py), so the
producer sends the retry straight to the new owner. v11 has the same shape; it tells
the broker the client understands TRANSACTION_ABORTABLE, which tidelog never answers
(a verification failure is answered as Kafka's older codes, `_produce_error`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import struct
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, topic_allowed, txn_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.leader_hints import PRODUCE_HINTED, LeaderHints
from tidelog.protocol.batch import Compression
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.protocol.produce_request import ProduceRequestView, decode_produce_request
from tidelog.storage.errors import StoreError
from tidelog.storage.log_store import AppendResult, PendingAppend

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

log = logging.getLogger(__name__)

# Kafka refuses zstd batches in Produce requests older than v7 (KIP-110).
_FIRST_ZSTD_VERSION = 7
_VALID_ACKS = (-1, 0, 1)
_FIRST_RECORD_ERRORS_VERSION = 8  # KIP-467
_FIRST_LEADER_HINT_VERSION = 10  # KIP-951
_ATTRIBUTES_AT = 21
_TRANSACTIONAL_BIT = 0x10  # in the low byte of the attributes


def _is_zstd(records: memoryview | None) -> bool:
    if not records or len(records) <= _ATTRIBUTES_AT + 1:
        return False
    return records[_ATTRIBUTES_AT + 1] & 0x07 == Compression.ZSTD


def _has_transactional_batch(request: ProduceRequestView) -> bool:
    """Whether a partition's first batch says it belongs to a transaction (Kafka looks
    at the first batch of each partition only; a second one is refused anyway)."""
    return any(
        records is not None
        and len(records) > _ATTRIBUTES_AT + 1
        and records[_ATTRIBUTES_AT + 1] & _TRANSACTIONAL_BIT
        for _, partitions in request.topics
        for _, records in partitions
    )


_PRODUCER = struct.Struct(">qh")
_PRODUCER_AT = 43  # producer id (int64) and epoch (int16) in a v2 batch header


def _producer_of(request: ProduceRequestView) -> tuple[int, int] | None:
    """(producer id, epoch) of the first batch that has them (one producer per request)."""
    for _, partitions in request.topics:
        for _, records in partitions:
            if records is not None and len(records) >= _PRODUCER_AT + _PRODUCER.size:
                pid, epoch = _PRODUCER.unpack_from(records, _PRODUCER_AT)
                return int(pid), int(epoch)
    return None


# (partition, error code, result, error message, record errors: (batch index, message))
_Row = tuple[int, ErrorCode, AppendResult | None, str | None, tuple[tuple[int, str], ...]]


def _produce_error(code: ErrorCode) -> ErrorCode:
    """A verification answer as Produce reports it."""
    if code == ErrorCode.producer_fenced:
        return ErrorCode.invalid_producer_epoch
    if code in (ErrorCode.not_coordinator, ErrorCode.coordinator_not_available):
        return ErrorCode.not_enough_replicas  # retriable, as Kafka answers it
    return code


class ProduceHandler(Handler):
    api_key, min_version, max_version = 0, 3, 11

    @property
    def advertised_min_version(self) -> int:
        # librdkafka before 2.10 (e.g. Debian's kcat) compresses with gzip, snappy or
        # lz4 only if Produce v0 is advertised (librdkafka#4956); Kafka 4 advertises
        # v0-2 for the same reason and refuses them on use (KAFKA-18659). So do we:
        # a v0-2 request has no schema and closes the connection.
        return 0

    def decode(self, frame: bytearray, body_offset: int, version: int) -> ProduceRequestView:
        # No copy: each partition's records is a writable view into the frame, so
        # offsets are patched in place and the same bytes go to the WAL and the bucket.
        return decode_produce_request(frame, body_offset, version)

    def expects_response(self, request: Any) -> bool:
        return int(request.acks) != 0

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        # Transactional records without a transactional id are refused as Kafka refuses
        # them (it checks them against the id's ACL first), not stored as if committed.
        txn_id = request.transactional_id
        transactional = _has_transactional_batch(request)
        denied: frozenset[str] = frozenset()
        if node.security.enabled:
            if txn_id is not None and not txn_allowed(node, Op.WRITE, txn_id):
                return self._all_failed(
                    node,
                    header,
                    request,
                    ErrorCode.transactional_id_authorization_failed,
                    f"no WRITE on transactional id {txn_id}",
                )
            denied = frozenset(n for n, _ in request.topics if not topic_allowed(node, Op.WRITE, n))
        if txn_id is None and transactional:
            return self._all_failed(
                node,
                header,
                request,
                ErrorCode.transactional_id_authorization_failed,
                "transactional records need a transactional id",
            )
        if txn_id is not None and transactional:
            producer = _producer_of(request)
            if producer is not None and not node.coordinates_txn(txn_id):
                # The coordinator is another broker: ask it, and keep this producer's
                # requests in arrival order while we wait (the gate).
                async with node.txn_gate(producer[0]):
                    return await self._append(node, header, request, txn_id, denied)
        return await self._append(node, header, request, txn_id, denied)

    async def _append(
        self,
        node: Node,
        header: RequestHeader,
        request: Any,
        txn_id: str | None,
        denied: frozenset[str],
    ) -> Any:
        """Append every partition; with a `txn_id`, a batch that would open its
        producer's transaction needs the coordinator's word first."""
        if int(request.acks) not in _VALID_ACKS:
            return self._all_failed(
                node,
                header,
                request,
                ErrorCode.invalid_required_acks,
                f"acks must be -1, 0 or 1 acks={int(request.acks)}",
            )
        verified = await self._verify(node, request, txn_id) if txn_id is not None else {}
        pending: list[tuple[str, int, PendingAppend | StoreError, int]] = []
        for name, partitions in request.topics:
            for index, records in partitions:
                try:
                    if name in denied:
                        raise StoreError(
                            ErrorCode.topic_authorization_failed, f"no WRITE on topic {name}"
                        )
                    if header.api_version < _FIRST_ZSTD_VERSION and _is_zstd(records):
                        raise StoreError(
                            ErrorCode.unsupported_compression_type,
                            f"zstd needs produce v{_FIRST_ZSTD_VERSION}+ "
                            f"api_version={header.api_version}",
                        )
                    refused = verified.get((name, index), ErrorCode.none)
                    if refused != ErrorCode.none:
                        raise StoreError(
                            refused,
                            f"transaction verification failed topic={name} partition={index}",
                        )
                    pend = node.append_nowait(
                        name, index, records or b"", txn_verified=(name, index) in verified
                    )
                except StoreError as exc:
                    pending.append((name, index, exc, 0))
                except Exception as exc:  # a bug: this partition fails, not the request
                    log.exception("append failed topic=%s partition=%d", name, index)
                    failed = StoreError(ErrorCode.unknown_server_error, f"append failed {exc!r}")
                    pending.append((name, index, failed, 0))
                else:
                    pending.append((name, index, pend, len(records or b"")))
        outcomes = await asyncio.gather(
            *(p.durable for _, _, p, _ in pending if not isinstance(p, StoreError)),
            return_exceptions=True,
        )
        results: dict[str, list[_Row]] = {}
        it = iter(outcomes)
        for name, index, p, size in pending:
            rows = results.setdefault(name, [])
            if isinstance(p, StoreError):
                rows.append((index, p.code, None, str(p), p.record_errors))
                continue
            outcome = next(it)
            if isinstance(outcome, StoreError):
                rows.append((index, outcome.code, None, str(outcome), outcome.record_errors))
            elif isinstance(outcome, BaseException):
                log.error("append failed topic=%s partition=%d error=%r", name, index, outcome)
                rows.append((index, ErrorCode.unknown_server_error, None, str(outcome), ()))
            else:
                rows.append((index, ErrorCode.none, p.result, None, ()))
                node.traffic.bytes_in(name, size)
        return self._response(node, header, results)

    async def _verify(
        self, node: Node, request: ProduceRequestView, txn_id: str
    ) -> dict[tuple[str, int], ErrorCode]:
        """Partitions whose batch would open its producer's transaction here, with the
        coordinator's verdict (KIP-890 part 1): none means it is in the transaction."""
        producer = _producer_of(request)
        if producer is None:
            return {}
        pid, epoch = producer
        keys = []
        for name, partitions in request.topics:
            for index, records in partitions:
                part = node.partition_log(name, index)
                if records and part is not None and part.opens_transaction(pid):
                    keys.append((name, index))
        if not keys:
            return {}
        codes = await node.verify_txn(txn_id, pid, epoch, keys)
        return {key: _produce_error(code) for key, code in codes.items()}

    def _response(
        self,
        node: Node,
        header: RequestHeader,
        results: dict[str, list[_Row]],
    ) -> Any:
        mod = response_module(self.api_key, header.api_version)
        hints = LeaderHints(node) if header.api_version >= _FIRST_LEADER_HINT_VERSION else None

        def current_leader(name: str, index: int, code: ErrorCode) -> Any:
            hint = (-1, -1)
            if hints is not None and code in PRODUCE_HINTED:
                hint = hints.current_leader(name, index)
            return build(mod, "LeaderIdAndEpoch", leader_id=hint[0], leader_epoch=hint[1])

        topics = tuple(
            build(
                mod,
                "TopicProduceResponse",
                name=name,
                partition_responses=tuple(
                    build(
                        mod,
                        "PartitionProduceResponse",
                        index=index,
                        error_code=code,
                        base_offset=res.base_offset if res else -1,
                        log_append_time=None,
                        log_start_offset=res.log_start_offset if res else -1,
                        record_errors=tuple(
                            build(
                                mod,
                                "BatchIndexAndErrorMessage",
                                batch_index=batch_index,
                                batch_index_error_message=why,
                            )
                            for batch_index, why in record_errors
                            if header.api_version >= _FIRST_RECORD_ERRORS_VERSION
                        ),
                        error_message=message,
                        current_leader=current_leader(name, index, code) if hints else None,
                    )
                    for index, code, res, message, record_errors in rows
                ),
            )
            for name, rows in results.items()
        )
        endpoints = tuple(
            build(mod, "NodeEndpoint", node_id=n, host=host, port=port, rack=None)
            for n, (host, port) in sorted(hints.endpoints.items() if hints else ())
        )
        return build(
            mod,
            "ProduceResponse",
            responses=topics,
            throttle_time=datetime.timedelta(0),
            node_endpoints=endpoints,
        )

    def _all_failed(
        self, node: Node, header: RequestHeader, request: Any, code: ErrorCode, message: str
    ) -> Any:
        results: dict[str, list[_Row]] = {
            name: [(index, code, None, message, ()) for index, _ in parts]
            for name, parts in request.topics
        }
        return self._response(node, header, results)
