"""Produce (0) v3-9: append each partition's record batch, answer once all are durable.

Every partition is appended before anything is awaited, so the partitions of one
request (and the requests pipelined behind it) share one WAL fsync or one upload.
acks=0 requests get no response, as in Kafka.

A partition answered with an error stores nothing: every check runs before its batch
is added, and a partition that fails unexpectedly is answered UNKNOWN_SERVER_ERROR on
its own (as Kafka does), never by dropping the connection with the other partitions'
batches already appended and their clients told nothing.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler
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


class ProduceHandler(Handler):
    api_key, min_version, max_version = 0, 3, 9

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
        if request.transactional_id is not None or _has_transactional_batch(request):
            return self._all_failed(
                header,
                request,
                ErrorCode.transactional_id_authorization_failed,
                "transactions are not supported",
            )
        if int(request.acks) not in _VALID_ACKS:
            return self._all_failed(
                header,
                request,
                ErrorCode.invalid_required_acks,
                f"acks must be -1, 0 or 1 acks={int(request.acks)}",
            )
        pending: list[tuple[str, int, PendingAppend | StoreError]] = []
        for name, partitions in request.topics:
            for index, records in partitions:
                try:
                    if header.api_version < _FIRST_ZSTD_VERSION and _is_zstd(records):
                        raise StoreError(
                            ErrorCode.unsupported_compression_type,
                            f"zstd needs produce v{_FIRST_ZSTD_VERSION}+ "
                            f"api_version={header.api_version}",
                        )
                    pend = node.append_nowait(name, index, records or b"")
                except StoreError as exc:
                    pending.append((name, index, exc))
                except Exception as exc:  # a bug: this partition fails, not the request
                    log.exception("append failed topic=%s partition=%d", name, index)
                    failed = StoreError(ErrorCode.unknown_server_error, f"append failed {exc!r}")
                    pending.append((name, index, failed))
                else:
                    pending.append((name, index, pend))
        outcomes = await asyncio.gather(
            *(p.durable for _, _, p in pending if not isinstance(p, StoreError)),
            return_exceptions=True,
        )
        results: dict[str, list[tuple[int, ErrorCode, AppendResult | None, str | None]]] = {}
        it = iter(outcomes)
        for name, index, p in pending:
            rows = results.setdefault(name, [])
            if isinstance(p, StoreError):
                rows.append((index, p.code, None, str(p)))
                continue
            outcome = next(it)
            if isinstance(outcome, StoreError):
                rows.append((index, outcome.code, None, str(outcome)))
            elif isinstance(outcome, BaseException):
                log.error("append failed topic=%s partition=%d error=%r", name, index, outcome)
                rows.append((index, ErrorCode.unknown_server_error, None, str(outcome)))
            else:
                rows.append((index, ErrorCode.none, p.result, None))
        return self._response(header, results)

    def _response(
        self,
        header: RequestHeader,
        results: dict[str, list[tuple[int, ErrorCode, AppendResult | None, str | None]]],
    ) -> Any:
        mod = response_module(self.api_key, header.api_version)
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
                        record_errors=(),
                        error_message=message,
                    )
                    for index, code, res, message in rows
                ),
            )
            for name, rows in results.items()
        )
        return build(mod, "ProduceResponse", responses=topics, throttle_time=datetime.timedelta(0))

    def _all_failed(
        self, header: RequestHeader, request: Any, code: ErrorCode, message: str
    ) -> Any:
        results: dict[str, list[tuple[int, ErrorCode, AppendResult | None, str | None]]] = {
            name: [(index, code, None, message) for index, _ in parts]
            for name, parts in request.topics
        }
        return self._response(header, results)
