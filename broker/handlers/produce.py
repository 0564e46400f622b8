"""Produce (0) v3-9: append each partition's record batch, answer once all are durable.

Every partition is appended before anything is awaited, so the partitions of one
request (and the requests pipelined behind it) share one WAL fsync or one upload.
acks=0 requests get no response, as in Kafka.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import TYPE_CHECKING, Any

from broker.handlers.base import Handler, build, response_module
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader
from storage.log_store import AppendResult, PendingAppend, StoreError

if TYPE_CHECKING:
    from broker.server import Broker

log = logging.getLogger(__name__)


class ProduceHandler(Handler):
    api_key, min_version, max_version = 0, 3, 9

    def expects_response(self, request: Any) -> bool:
        return int(request.acks) != 0

    async def handle(self, broker: Broker, header: RequestHeader, request: Any) -> Any:
        if request.transactional_id is not None:
            return self._all_failed(
                header, request, ErrorCode.transactional_id_authorization_failed
            )
        pending: list[tuple[str, int, PendingAppend | StoreError]] = []
        for topic in request.topic_data:
            for part in topic.partition_data:
                try:
                    pend = broker.store.append_nowait(topic.name, part.index, part.records or b"")
                except StoreError as exc:
                    pending.append((topic.name, part.index, exc))
                else:
                    pending.append((topic.name, part.index, pend))
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

    def _all_failed(self, header: RequestHeader, request: Any, code: ErrorCode) -> Any:
        results: dict[str, list[tuple[int, ErrorCode, AppendResult | None, str | None]]] = {
            t.name: [
                (p.index, code, None, "transactions are not supported") for p in t.partition_data
            ]
            for t in request.topic_data
        }
        return self._response(header, results)
